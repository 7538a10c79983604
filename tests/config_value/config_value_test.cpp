#include "divert/config_value.hpp"
#include "divert/error.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace std::chrono_literals;

TEST_CASE("flow syntax: scalars, lists, maps") {
  auto v = ConfigValue::parse("10.0.0.1:3128");
  REQUIRE(v.is_scalar());
  CHECK(v.scalar() == "10.0.0.1:3128");

  v = ConfigValue::parse("[a:1, {addr: b, weight: 2.5}, \"c, d\"]");
  REQUIRE(v.is_list());
  REQUIRE(v.list().size() == 3);
  CHECK(v.list()[0].scalar() == "a:1");
  REQUIRE(v.list()[1].is_map());
  CHECK(v.list()[1].map()[0].first == "addr");
  CHECK(v.list()[1].map()[1].second.scalar() == "2.5");
  CHECK(v.list()[2].scalar() == "c, d");

  v = ConfigValue::parse("{max_retry: 2, each_timeout: 30s}");
  REQUIRE(v.is_map());
  CHECK(v.map().size() == 2);
  CHECK(v.to_string() == "{max_retry: 2, each_timeout: 30s}");
  CHECK(ConfigValue::parse("[]").list().empty());
  CHECK(ConfigValue::parse("{}").map().empty());
}

TEST_CASE("flow syntax: a one-element list holding ip:port is a list, not an IPv6 literal") {
  auto v = ConfigValue::parse("[127.0.0.1:3128]", "proxy_addr");
  REQUIRE(v.is_list());
  REQUIRE(v.list().size() == 1);
  CHECK(v.list()[0].scalar() == "127.0.0.1:3128");
  v = ConfigValue::parse("[np1.test:3128]");
  REQUIRE(v.is_list());
  CHECK(v.list()[0].scalar() == "np1.test:3128");
  // An IPv6 literal, with or without a port, stays one scalar.
  CHECK(ConfigValue::parse("[::1]:3128").scalar() == "[::1]:3128");
  CHECK(ConfigValue::parse("[::1]").scalar() == "[::1]");
  CHECK(ConfigValue::parse("[::ffff:127.0.0.1]").scalar() == "[::ffff:127.0.0.1]");
  // A bad literal before ":port" stays a scalar, for the address parser's message.
  CHECK(ConfigValue::parse("[2001:db8::zz]:443").scalar() == "[2001:db8::zz]:443");
  v = ConfigValue::parse("[127.0.0.1:3128, [::1]:3129]");
  REQUIRE(v.is_list());
  CHECK(v.list()[0].scalar() == "127.0.0.1:3128");
  CHECK(v.list()[1].scalar() == "[::1]:3129");
}

TEST_CASE("flow syntax: bracketed IPv6 is a scalar, also inside lists") {
  CHECK(ConfigValue::parse("[2001:db8::1]:443").scalar() == "[2001:db8::1]:443");
  auto v = ConfigValue::parse("[[::1]:3128, {addr: [::1]:3129, weight: 2}]");
  REQUIRE(v.is_list());
  CHECK(v.list()[0].scalar() == "[::1]:3128");
  CHECK(v.list()[1].map()[0].second.scalar() == "[::1]:3129");
}

TEST_CASE("flow syntax errors name the key and the offset") {
  auto bad = [](const char* text, const char* what) {
    try {
      ConfigValue::parse(text, "proxy_addr");
      FAIL("no error for " << text);
    } catch (const config_error& e) {
      CHECK(e.key() == "proxy_addr");
      CHECK(e.value() == text);
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  bad("[a, b", "expected ',' or ']'");
  bad("{a: 1", "expected ',' or '}'");
  bad("{a 1}", "expected ':' after field 'a 1'");
  bad("\"open", "unterminated quoted string");
  bad("[a] b", "unexpected 'b'");
  bad("[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]", "nesting deeper than 16");
}

TEST_CASE("durations") {
  CHECK(parse_duration("k", "250ms") == 250ms);
  CHECK(parse_duration("k", "2s") == 2000ms);
  CHECK(parse_duration("k", "1.5") == 1500ms);
  CHECK(parse_duration("k", "30") == 30000ms);
  CHECK(parse_duration("k", "1m") == 60000ms);
  CHECK(parse_duration("k", "1h") == 3600000ms);
  CHECK(parse_duration("k", " 100 ms ") == 100ms);
  CHECK_THROWS_WITH(parse_duration("tcp_connect.each_timeout", "fast"),
                    "divert config: tcp_connect.each_timeout = \"fast\": not a duration (a number "
                    "of seconds, or numbers with units ns, us, ms, s, m, h, d such as 1h30m)");
  CHECK_THROWS_AS(parse_duration("k", "-1s"), config_error);
  CHECK_THROWS_AS(parse_duration("k", "1..2s"), config_error);
}

TEST_CASE("durations: g3's humanised forms are accepted") {
  // g3 (lib/g3-yaml humanize/time.rs, the humanize_rs crate): numbers each with
  // a unit ns, us, ms, s, m, h, d, in any order, spaces allowed between parts
  // and before a unit; a bare number is seconds. divert keeps milliseconds and
  // rounds a sub-millisecond rest up, so a non-zero duration never becomes 0.
  struct Row {
    const char* text;
    std::chrono::milliseconds want;
  };
  const Row rows[] = {
      {"1h2m", 3'720'000ms},
      {"1d", 86'400'000ms},
      {"1d12h", 129'600'000ms},
      {"1h 30m 71s", 5'471'000ms},
      {"3m20s", 200'000ms},
      {"1h 50m 35ms", 6'600'035ms},
      {"500us", 1ms},
      {"1500us", 2ms},
      {"2000us", 2ms},
      {"1ns", 1ms},
      {"0", 0ms},
      {"0s", 0ms},
      {"0ms", 0ms},
      {"0d", 0ms},
      {"1000", 1'000'000ms},
      {"1.5s", 1500ms},
      {"0.25", 250ms},
      {"5 s", 5000ms},
      {"1s 1s", 2000ms},
      {"  2m  ", 120'000ms},
      {"100ms", 100ms},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    CHECK(parse_duration("k", r.text) == r.want);
  }
}

TEST_CASE("durations: garbage and units g3 does not know are refused") {
  const char* rows[] = {
      "5sec",
      "5 min",
      "1ss",
      "2S",
      "1H",
      "10 seconds",
      "1h30",
      "h",
      "ms",
      "",
      "  ",
      "-1",
      "-1000h",
      "1000Ah",
      "abc",
      "1.01.1",
      "1e3s",
      "+5s",
      "1h-2m",
      "1 中文",
      "1.s",
      ".5s",
      "1,5s",
      "100000000000000ms",
      "99999999999999999999d",
  };
  for (const char* text : rows) {
    INFO(text);
    CHECK_THROWS_AS(parse_duration("k", text), config_error);
  }
  CHECK_THROWS_WITH(parse_duration("k", "5sec"),
                    Catch::Contains("unknown duration unit 'sec' (use ns, us, ms, s, m, h or d)"));
  CHECK_THROWS_WITH(parse_duration("k", "5 min"), Catch::Contains("unknown duration unit 'min'"));
  CHECK_THROWS_WITH(parse_duration("k", "1h30"), Catch::Contains("30 has no unit"));
}

TEST_CASE("sizes") {
  CHECK(parse_size("k", "100") == 100);
  CHECK(parse_size("k", "10M") == 10'000'000);
  CHECK(parse_size("k", "10K") == 10'000);
  CHECK(parse_size("k", "1G") == 1'000'000'000);
  CHECK(parse_size("k", "64Ki") == 65536);
  CHECK(parse_size("k", "64KiB") == 65536);
  CHECK(parse_size("k", "1Mi") == 1048576);
  CHECK(parse_size("k", "2Gi") == 2147483648ULL);
  CHECK(parse_size("k", "1.5K") == 1500);
  CHECK_THROWS_WITH(parse_size("k", "10X"), Catch::Contains("unknown size unit 'X'"));
  CHECK_THROWS_WITH(parse_size("k", "0.5"), Catch::Contains("not a whole number of bytes"));
  CHECK_THROWS_AS(parse_size("k", ""), config_error);
}

TEST_CASE("booleans, integers, numbers") {
  CHECK(parse_bool("k", "TRUE"));
  CHECK(parse_bool("k", "on"));
  CHECK_FALSE(parse_bool("k", "no"));
  CHECK_FALSE(parse_bool("k", "0"));
  CHECK_THROWS_WITH(parse_bool("no_ipv4", "maybe"),
                    "divert config: no_ipv4 = \"maybe\": not a boolean (true/false, yes/no, "
                    "on/off, 1/0)");
  CHECK(parse_int("k", "42", 0, 100) == 42);
  CHECK_THROWS_WITH(parse_int("k", "101", 0, 100), Catch::Contains("out of range [0, 100]"));
  CHECK_THROWS_WITH(parse_int("k", "4x", 0, 100), Catch::Contains("not an integer"));
  CHECK(parse_number("k", "2.5") == 2.5);
  CHECK_THROWS_AS(parse_number("k", "inf"), config_error);
  CHECK_THROWS_AS(parse_number("k", "nan"), config_error);
}

TEST_CASE("keys are normalised: case-insensitive and '-' equals '_'") {
  CHECK(normalize_key("Tcp-Connect.Max_Retry") == "tcp_connect.max_retry");
}

TEST_CASE("expect_scalar refuses lists and maps") {
  CHECK_THROWS_WITH(expect_scalar("no_ipv4", ConfigValue::parse("[a]")),
                    "divert config: no_ipv4 = \"[a]\": expected a single value");
}

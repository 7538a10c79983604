// HealthCheckConfig: its defaults, validate(), and the builder's `health_check`
// key (g3's duration syntax; each bad value refused naming the key).
#include "divert/connector.hpp"
#include "divert/health_check.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace std::chrono_literals;

TEST_CASE("health_check: off by default, with HAProxy-like defaults") {
  HealthCheckConfig c;
  CHECK_FALSE(c.enabled);
  CHECK(c.interval == 5000ms);
  CHECK(c.timeout == 2000ms);
  CHECK(c.rise == 2);
  CHECK(c.fall == 3);
  CHECK_NOTHROW(c.validate());
  auto b = DivertTcpConnector::builder();
  CHECK_FALSE(b.config().health_check.enabled);
}

TEST_CASE("health_check key: a map turns it on; fields in g3's duration syntax") {
  auto b = DivertTcpConnector::builder();
  b.proxy_addr("127.0.0.1:3128");
  b.set("health_check", "{interval: 1500ms, timeout: 1s, rise: 4, fall: 1}");
  auto c = b.config().health_check;
  CHECK(c.enabled);
  CHECK(c.interval == 1500ms);
  CHECK(c.timeout == 1000ms);
  CHECK(c.rise == 4);
  CHECK(c.fall == 1);
  CHECK(b.build().config().health_check.interval == 1500ms);

  SECTION("fields left out keep the defaults") {
    auto d = DivertTcpConnector::builder();
    d.set("health_check", "{interval: 1m 30s}");
    CHECK(d.config().health_check.enabled);
    CHECK(d.config().health_check.interval == 90'000ms);
    CHECK(d.config().health_check.timeout == 2000ms);
    CHECK(d.config().health_check.rise == 2);
    CHECK(d.config().health_check.fall == 3);
  }
  SECTION("an empty map turns it on with the defaults") {
    auto d = DivertTcpConnector::builder();
    d.set("health_check", "{}");
    CHECK(d.config().health_check.enabled);
    CHECK(d.config().health_check.interval == 5000ms);
  }
  SECTION("enable: false inside the map turns it off, in any position") {
    auto d = DivertTcpConnector::builder();
    d.set("health_check", "{enable: false, interval: 2s}");
    CHECK_FALSE(d.config().health_check.enabled);
    CHECK(d.config().health_check.interval == 2000ms);
    d.set("health_check", "{interval: 3s, enabled: no}");
    CHECK_FALSE(d.config().health_check.enabled);
  }
  SECTION("a scalar boolean only switches it") {
    auto d = DivertTcpConnector::builder();
    d.set("health_check", "{interval: 2s}");
    d.set("health_check", "off");
    CHECK_FALSE(d.config().health_check.enabled);
    CHECK(d.config().health_check.interval == 2000ms);
    d.set("health_check", "true");
    CHECK(d.config().health_check.enabled);
  }
  SECTION("dotted keys and '-' spelling") {
    auto d = DivertTcpConnector::builder();
    d.set("Health-Check.Interval", "250ms");
    CHECK(d.config().health_check.enabled);
    CHECK(d.config().health_check.interval == 250ms);
    d.set("health_check.rise", "7");
    CHECK(d.config().health_check.rise == 7);
    CHECK(d.config().health_check.interval == 250ms);  // kept
  }
  SECTION("a lone number is seconds, as in g3") {
    auto d = DivertTcpConnector::builder();
    d.set("health_check", "{interval: 10, timeout: 0.5}");
    CHECK(d.config().health_check.interval == 10'000ms);
    CHECK(d.config().health_check.timeout == 500ms);
  }
  SECTION("the typed setter") {
    auto d = DivertTcpConnector::builder();
    d.proxy_addr("127.0.0.1:3128");
    d.health_check({.enabled = true, .interval = 100ms, .timeout = 50ms, .rise = 1, .fall = 2});
    auto built = d.build();
    CHECK(built.config().health_check.enabled);
    CHECK(built.config().health_check.interval == 100ms);
    CHECK(built.config().health_check.fall == 2);
  }
}

TEST_CASE("health_check key: each bad value is refused naming the key and the value") {
  struct Row {
    const char* value;
    const char* expect;  // substring of what()
  };
  const Row rows[] = {
      {"{interval: 0s}", "health_check.interval = \"0s\": must be positive"},
      {"{interval: 0}", "health_check.interval = \"0\": must be positive"},
      {"{interval: soon}", "health_check.interval = \"soon\": not a duration"},
      {"{interval: -1s}", "health_check.interval = \"-1s\""},
      {"{interval: 5 min}", "health_check.interval = \"5 min\""},
      {"{timeout: 0ms}", "health_check.timeout = \"0ms\": must be positive"},
      {"{timeout: [1s]}", "health_check.timeout = \"[1s]\": expected a single value"},
      {"{rise: 0}", "health_check.rise = \"0\": out of range [1, 1000]"},
      {"{fall: 0}", "health_check.fall = \"0\": out of range [1, 1000]"},
      {"{fall: 1001}", "health_check.fall = \"1001\": out of range [1, 1000]"},
      {"{rise: two}", "health_check.rise = \"two\""},
      {"{fall: -3}", "health_check.fall = \"-3\""},
      {"{enable: maybe}", "health_check.enable = \"maybe\": not a boolean"},
      {"{inter: 2s}",
       "health_check.inter = \"2s\": unknown field (known: interval, timeout, rise, fall, "
       "enable)"},
      {"[1s, 2s]", "health_check = \"[1s, 2s]\": expected a map {interval, timeout, rise, fall}"},
      {"sometimes", "health_check = \"sometimes\": not a boolean"},
  };
  for (const auto& row : rows) {
    INFO(row.value);
    CHECK_THROWS_WITH(DivertTcpConnector::builder().set("health_check", row.value),
                      Catch::StartsWith("divert config: ") && Catch::Contains(row.expect));
  }
}

TEST_CASE("build() refuses a typed health_check out of range, naming the field") {
  struct Row {
    HealthCheckConfig c;
    const char* expect;
  };
  const Row rows[] = {
      {{.enabled = true, .interval = 0ms}, "health_check.interval = \"0ms\": must be positive"},
      {{.enabled = true, .interval = -5ms}, "health_check.interval = \"-5ms\": must be positive"},
      {{.enabled = true, .timeout = 0ms}, "health_check.timeout = \"0ms\": must be positive"},
      {{.enabled = true, .rise = 0}, "health_check.rise = \"0\": must be at least 1"},
      {{.enabled = true, .fall = 0}, "health_check.fall = \"0\": must be at least 1"},
      // Checked even while off: turning it on later cannot meet a bad value.
      {{.enabled = false, .fall = 0}, "health_check.fall = \"0\": must be at least 1"},
  };
  for (const auto& row : rows) {
    INFO(row.expect);
    CHECK_THROWS_WITH(
        DivertTcpConnector::builder().proxy_addr("127.0.0.1:3128").health_check(row.c).build(),
        Catch::StartsWith("divert config: ") && Catch::Contains(row.expect));
  }
}

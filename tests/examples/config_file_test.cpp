// --config FILE (examples/common/config_file.*): YAML -> ConfigValue, g3proxy
// divert_tcp escaper blocks as a g3 user pastes them, errors naming the line,
// flag precedence and the reload's change line. Pure: no sockets, no sleeps.
#include "common/config_file.hpp"

#include "common/cli.hpp"
#include "support/catch.hpp"
#include "support/live.hpp"

using namespace divert;
using namespace divert::examples;

namespace {

// The error's what() when `f` throws a config_file_error ("" otherwise).
template <class F>
std::string file_error(F&& f) {
  try {
    f();
  } catch (const config_file_error& e) {
    return e.what();
  }
  return "";
}

ConnectorConfig built_from(const EscaperConfig& e) {
  auto b = DivertTcpConnector::builder();
  e.apply(b);
  return b.config();
}

// The fields the blocks below set, compared one by one.
void check_same(const ConnectorConfig& a, const ConnectorConfig& b) {
  CHECK(a.name == b.name);
  CHECK(a.proxy_addr == b.proxy_addr);
  CHECK(a.proxy_addr_pick_policy == b.proxy_addr_pick_policy);
  CHECK(a.connect.happy_eyeballs.resolution_delay == b.connect.happy_eyeballs.resolution_delay);
  CHECK(a.connect.happy_eyeballs.connection_attempt_delay ==
        b.connect.happy_eyeballs.connection_attempt_delay);
  CHECK(a.connect.happy_eyeballs.first_address_family_count ==
        b.connect.happy_eyeballs.first_address_family_count);
  CHECK(a.connect.tcp_connect.max_retry == b.connect.tcp_connect.max_retry);
  CHECK(a.connect.tcp_connect.each_timeout == b.connect.tcp_connect.each_timeout);
  CHECK(a.connect.no_ipv6 == b.connect.no_ipv6);
  CHECK(a.connect.tcp_keepalive.enable == b.connect.tcp_keepalive.enable);
  CHECK(a.connect.tcp_keepalive.idle_time == b.connect.tcp_keepalive.idle_time);
  CHECK(a.connect.bind_ipv4 == b.connect.bind_ipv4);
  CHECK(a.connect.resolve_strategy.query == b.connect.resolve_strategy.query);
  CHECK(a.connect.tcp_misc_opts.no_delay == b.connect.tcp_misc_opts.no_delay);
  CHECK(a.tcp_sock_speed_limit.shift_millis == b.tcp_sock_speed_limit.shift_millis);
  CHECK(a.tcp_sock_speed_limit.upload == b.tcp_sock_speed_limit.upload);
  CHECK(a.tcp_sock_speed_limit.download == b.tcp_sock_speed_limit.download);
  CHECK(a.extra_metrics_tags == b.extra_metrics_tags);
}

// A g3proxy divert_tcp escaper as a g3 user writes it: every key of
// g3proxy's divert_tcp documentation, in its value syntax (block style).
const char* const kG3Block = R"(name: divert
type: divert_tcp
proxy_addr:
  - 127.0.0.1:13128
  - addr: 127.0.0.2:13128
    weight: 2
  - 127.0.0.3
proxy_addr_pick_policy: rendezvous
resolve_strategy: IPv4First
no_ipv6: true
tcp_connect:
  max_retry: 1
  each_timeout: 5s
happy_eyeballs:
  resolution_delay: 100ms
  connection_attempt_delay: 300ms
  first_address_family_count: 2
tcp_sock_speed_limit:
  shift_millis: 8
  upload: 10M
  download: 20M
tcp_keepalive: 60s
tcp_misc_opts:
  no_delay: true
bind_ipv4: 127.0.0.1
extra_metrics_tags:
  region: eu-west
  pool: divert
)";

// The same configuration through Builder::set() with g3's flow syntax.
ConnectorConfig kG3BlockBySet() {
  auto b = DivertTcpConnector::builder();
  b.set("name", "divert")
      .set("proxy_addr", "[127.0.0.1:13128, {addr: 127.0.0.2:13128, weight: 2}, 127.0.0.3]")
      .set("proxy_addr_pick_policy", "rendezvous")
      .set("resolve_strategy", "IPv4First")
      .set("no_ipv6", "true")
      .set("tcp_connect", "{max_retry: 1, each_timeout: 5s}")
      .set("happy_eyeballs",
           "{resolution_delay: 100ms, connection_attempt_delay: 300ms, "
           "first_address_family_count: 2}")
      .set("tcp_sock_speed_limit", "{shift_millis: 8, upload: 10M, download: 20M}")
      .set("tcp_keepalive", "60s")
      .set("tcp_misc_opts.no_delay", "true")
      .set("bind_ipv4", "127.0.0.1")
      .set("extra_metrics_tags", "{region: eu-west, pool: divert}");
  return b.config();
}

}  // namespace

TEST_CASE("YAML to ConfigValue: scalars as text, lists, maps in written order", "[config_file]") {
  auto v = yaml_to_config_value(R"(
a: 10.0.0.1:3128
b: "quoted, with commas"
c: [x, 'y', {addr: z, weight: 2}]
d:
  second: 2
  first: 1
e:
f: ~
g: 250ms
)");
  REQUIRE(v.is_map());
  const auto& m = v.map();
  REQUIRE(m.size() == 7);
  CHECK(m[0].first == "a");
  CHECK(m[0].second.scalar() == "10.0.0.1:3128");
  CHECK(m[1].second.scalar() == "quoted, with commas");
  REQUIRE(m[2].second.is_list());
  CHECK(m[2].second.list()[1].scalar() == "y");
  CHECK(m[2].second.list()[2].to_string() ==
        ConfigValue::parse("{addr: z, weight: 2}").to_string());
  REQUIRE(m[3].second.is_map());
  CHECK(m[3].second.map()[0].first == "second");  // order kept, not sorted
  CHECK(m[3].second.map()[1].first == "first");
  CHECK(m[4].second.is_scalar());
  CHECK(m[4].second.scalar().empty());  // a null is the empty scalar
  CHECK(m[5].second.scalar().empty());
  CHECK(m[6].second.scalar() == "250ms");
  // The same tree as the flow syntax ConfigValue::parse reads.
  CHECK(yaml_to_config_value("[a, {b: [c, d]}]").to_string() ==
        ConfigValue::parse("[a, {b: [c, d]}]").to_string());
  CHECK(yaml_to_config_value("").scalar().empty());
}

TEST_CASE("YAML to ConfigValue: errors name the file, line and column", "[config_file]") {
  CHECK(file_error([] {
          yaml_to_config_value("a: 1\nb: [1, 2\n", "f.yaml");
        }).rfind("f.yaml:", 0) == 0);
  CHECK_THAT(
      file_error([] { yaml_to_config_value("a: 1\nb: 2\nA: 3\n", "f.yaml"); }),
      Catch::Matchers::StartsWith("f.yaml:3:1: ") && Catch::Matchers::Contains("duplicate key"));
  CHECK_THAT(file_error([] { yaml_to_config_value("a:\n  ? [x]\n  : 1\n", "f.yaml"); }),
             Catch::Matchers::Contains("a map key must be a plain name"));
  CHECK_THAT(file_error([] { yaml_to_config_value("a: 1\n---\nb: 2\n", "f.yaml"); }),
             Catch::Matchers::Contains("more than one YAML document"));
  std::string deep = "v: ";
  for (int i = 0; i < 70; ++i) deep += "[";
  for (int i = 0; i < 70; ++i) deep += "]";
  CHECK_THAT(file_error([&] { yaml_to_config_value(deep, "f.yaml"); }),
             Catch::Matchers::Contains("nested deeper than 64 levels"));
}

TEST_CASE("a pasted g3proxy divert_tcp block gives the configuration of the set() calls",
          "[config_file]") {
  auto e = parse_escaper_config(kG3Block, "divert.yaml");
  CHECK(e.name == "divert");
  auto cfg = built_from(e);
  check_same(cfg, kG3BlockBySet());
  // And the values themselves, so the comparison above cannot pass on two defaults.
  REQUIRE(cfg.proxy_addr.size() == 3);
  CHECK(cfg.proxy_addr[1].addr.to_string() == "127.0.0.2:13128");
  CHECK(cfg.proxy_addr[1].weight == 2.0);
  CHECK(cfg.proxy_addr[2].addr.to_string() == "127.0.0.3:3128");  // g3's default port
  CHECK(cfg.proxy_addr_pick_policy == PickPolicy::rendezvous);
  CHECK(cfg.connect.tcp_connect.each_timeout == std::chrono::seconds(5));
  CHECK(cfg.connect.happy_eyeballs.connection_attempt_delay == std::chrono::milliseconds(300));
  CHECK(cfg.tcp_sock_speed_limit.upload == 10'000'000);
  CHECK(cfg.extra_metrics_tags.at("region") == "eu-west");
  CHECK(cfg.connect.tcp_keepalive.enable);
  // It builds (validation passes).
  auto b = DivertTcpConnector::builder();
  e.apply(b);
  CHECK_NOTHROW(b.build());
}

TEST_CASE("g3's single-address proxy_addr and flow style load too", "[config_file]") {
  auto cfg = built_from(parse_escaper_config(
      "{name: d, type: divert_tcp, proxy_addr: 127.0.0.9, tcp_connect: {max_retry: 0}}", "f"));
  REQUIRE(cfg.proxy_addr.size() == 1);
  CHECK(cfg.proxy_addr[0].addr.to_string() == "127.0.0.9:3128");
  CHECK(cfg.connect.tcp_connect.max_retry == 0);
}

TEST_CASE("a g3 configuration: the divert_tcp escaper of the escaper list", "[config_file]") {
  const std::string g3 = R"(runtime:
  thread_number: 2
resolver:
  - name: default
    type: c-ares
escaper:
  - name: direct
    type: direct_fixed
    resolver: default
  - name: np
    type: divert_tcp
    resolver: default
    proxy_addr:
      - 127.0.0.5:13128
server:
  - name: http
    type: http_proxy
    escaper: np
)";
  auto e = parse_escaper_config(g3, "g3proxy.yaml");
  CHECK(e.name == "np");
  auto b = DivertTcpConnector::builder();
  e.apply(b);  // resolver: default is the system resolver under g3's name
  CHECK(b.config().resolver != nullptr);
  CHECK(b.config().proxy_addr.at(0).addr.to_string() == "127.0.0.5:13128");

  // Two divert_tcp escapers: --escaper chooses, and nothing is guessed without it.
  const std::string list = R"(escaper:
  - name: np
    type: divert_tcp
    proxy_addr: 127.0.0.5
  - name: np2
    type: divert_tcp
    proxy_addr: 127.0.0.6
)";
  CHECK_THAT(file_error([&] { parse_escaper_config(list, "g.yaml"); }),
             Catch::Matchers::Contains("several escapers fit") &&
                 Catch::Matchers::Contains("--escaper NAME"));
  CHECK(built_from(parse_escaper_config(list, "g.yaml", "np2")).proxy_addr.at(0).addr.to_string() ==
        "127.0.0.6:3128");
  CHECK_THAT(file_error([&] { parse_escaper_config(list, "g.yaml", "nope"); }),
             Catch::Matchers::Contains("no escaper named 'nope'") &&
                 Catch::Matchers::Contains("np (divert_tcp), np2 (divert_tcp)"));
  // A list file (g3's escaper.d) is read the same way.
  CHECK(parse_escaper_config("- name: a\n  type: direct_fixed\n- name: b\n  type: divert_tcp\n"
                             "  proxy_addr: 127.0.0.7\n",
                             "l.yaml")
            .name == "b");
  // No divert_tcp escaper among several; a lone one of another type, at its type's line.
  CHECK_THAT(
      file_error([] {
        parse_escaper_config(
            "escaper:\n  - name: a\n    type: direct_fixed\n  - name: b\n    type: proxy_http\n",
            "n.yaml");
      }),
      Catch::Matchers::Contains("no divert_tcp escaper here (found: a (direct_fixed), b "
                                "(proxy_http))"));
  CHECK_THAT(file_error([] {
               parse_escaper_config("escaper:\n  - name: a\n    type: direct_fixed\n", "n.yaml");
             }),
             Catch::Matchers::StartsWith("n.yaml:3:5: ") &&
                 Catch::Matchers::Contains("(type: divert_tcp)"));
  // g3's include form is refused with what to do instead.
  CHECK_THAT(file_error([] { parse_escaper_config("escaper: escaper.d\n", "i.yaml"); }),
             Catch::Matchers::StartsWith("i.yaml:1:10: ") &&
                 Catch::Matchers::Contains("paste the divert_tcp escaper block"));
}

TEST_CASE("a wrong type, an unknown key or a bad value is refused naming its line",
          "[config_file]") {
  CHECK_THAT(
      file_error([] {
        parse_escaper_config("name: a\ntype: proxy_http\nproxy_addr: 1.2.3.4\n", "t.yaml");
      }),
      Catch::Matchers::StartsWith("t.yaml:2:1: ") && Catch::Matchers::Contains("divert_tcp"));
  auto unknown = parse_escaper_config(
      "type: divert_tcp\nproxy_addr: 127.0.0.1\nproxy_adr_pick_policy: random\n", "u.yaml");
  CHECK_THAT(file_error([&] { built_from(unknown); }),
             Catch::Matchers::StartsWith("u.yaml:3:1: ") &&
                 Catch::Matchers::Contains("proxy_adr_pick_policy") &&
                 Catch::Matchers::Contains("unknown key"));
  // A nested field: the error points at the field's own line and column.
  auto nested = parse_escaper_config(
      "type: divert_tcp\nproxy_addr: 127.0.0.1\ntcp_connect:\n  max_retry: 1\n  each_timout: 5s\n",
      "n.yaml");
  CHECK_THAT(file_error([&] { built_from(nested); }),
             Catch::Matchers::StartsWith("n.yaml:5:3: ") &&
                 Catch::Matchers::Contains("tcp_connect.each_timout"));
  auto bad_weight = parse_escaper_config(
      "type: divert_tcp\nproxy_addr:\n  - 127.0.0.1\n  - addr: 127.0.0.2\n    weight: heavy\n",
      "w.yaml");
  CHECK_THAT(file_error([&] { built_from(bad_weight); }),
             Catch::Matchers::StartsWith("w.yaml:5:5: ") && Catch::Matchers::Contains("heavy"));
  auto bad_duration = parse_escaper_config(
      "type: divert_tcp\nproxy_addr: 127.0.0.1\nhappy_eyeballs: {connection_attempt_delay: 5 "
      "min}\n",
      "d.yaml");
  CHECK_THAT(file_error([&] { built_from(bad_duration); }),
             Catch::Matchers::StartsWith("d.yaml:3:") && Catch::Matchers::Contains("5 min"));
  // The error is still a config_error with the key and the value.
  try {
    built_from(bad_weight);
    FAIL("no error");
  } catch (const config_error& e) {
    CHECK(e.key() == "proxy_addr[1].weight");
    CHECK(e.value() == "heavy");
  }
}

TEST_CASE("load_escaper_config reads a file; a missing one is a clear error", "[config_file]") {
  test::TempDir dir;
  auto path = dir.write("divert.yaml", kG3Block).string();
  check_same(built_from(load_escaper_config(path)), kG3BlockBySet());
  CHECK_THAT(
      file_error([&] { load_escaper_config((dir / "none.yaml").string()); }),
      Catch::Matchers::Contains("none.yaml") && Catch::Matchers::Contains("cannot open the file"));
}

TEST_CASE("flags override the file; the file overrides the program's defaults", "[config_file]") {
  test::TempDir dir;
  auto path = dir.write("c.yaml",
                        "name: from-file\ntype: divert_tcp\nproxy_addr: [127.0.0.1:1, "
                        "127.0.0.2:2]\nproxy_addr_pick_policy: ketama\n"
                        "tcp_connect: {max_retry: 2, each_timeout: 7s}\n")
                  .string();
  auto make_cli = [&](std::vector<std::string> args) {
    auto cli = std::make_unique<Cli>("prog", "s");
    cli->option("next-proxy", "A", "", true)
        .option("pick-policy", "P", "")
        .option("set", "KV", "", true);
    config_cli_options(*cli);
    args.insert(args.begin(), "prog");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    REQUIRE(cli->parse(static_cast<int>(argv.size()), argv.data()));
    return cli;
  };
  auto defaults = [](DivertTcpConnector::Builder& b) { b.name("program").proxy_failover(3); };

  auto only_file = make_cli({"--config", path});
  auto f = ConnectorSettings(*only_file, defaults).read();
  CHECK(f.builder.config().name == "from-file");  // the file over the default
  CHECK(f.builder.config().proxy_failover == 3);  // a default the file leaves alone
  CHECK(f.builder.config().proxy_addr.size() == 2);
  REQUIRE(f.file);
  CHECK(f.file->name == "from-file");

  auto flags = make_cli({"--config", path, "--next-proxy", "127.0.0.9:9,4", "--pick-policy",
                         "serial", "--set", "tcp_connect.max_retry=0"});
  auto s = ConnectorSettings(*flags, defaults).read();
  const auto& c = s.builder.config();
  REQUIRE(c.proxy_addr.size() == 1);  // --next-proxy replaces proxy_addr
  CHECK(c.proxy_addr[0].addr.to_string() == "127.0.0.9:9");
  CHECK(c.proxy_addr[0].weight == 4.0);
  CHECK(c.proxy_addr_pick_policy == PickPolicy::serial);
  CHECK(c.connect.tcp_connect.max_retry == 0);                           // --set wins
  CHECK(c.connect.tcp_connect.each_timeout == std::chrono::seconds(7));  // the file's field stays

  // Without --config, --next-proxy is required; --escaper needs --config.
  auto none = make_cli({});
  CHECK_THROWS_AS(ConnectorSettings(*none, defaults).read(), usage_error);
  auto esc = make_cli({"--escaper", "x"});
  CHECK_THROWS_AS(ConnectorSettings(*esc, defaults), usage_error);
}

TEST_CASE("describe_changes: next proxies added, removed, reweighted; other keys",
          "[config_file]") {
  auto before_file = parse_escaper_config(
      "type: divert_tcp\nproxy_addr: [127.0.0.1:1, {addr: 127.0.0.2:2, weight: 1}, 127.0.0.3:3]\n"
      "tcp_connect: {max_retry: 1}\nno_ipv6: true\n",
      "f");
  auto after_file = parse_escaper_config(
      "type: divert_tcp\nproxy_addr: [127.0.0.1:1, {addr: 127.0.0.2:2, weight: 3}, 127.0.0.4:4]\n"
      "tcp_connect: {max_retry: 2}\nhappy_eyeballs: {connection_attempt_delay: 300ms}\n"
      "proxy_addr_pick_policy: serial\n",
      "f");
  auto before = built_from(before_file), after = built_from(after_file);
  CHECK(describe_changes(before, &before_file, after, &after_file) ==
        "next proxies 127.0.0.2:2 weight 1 -> 3, +127.0.0.4:4 (weight 1), -127.0.0.3:3; "
        "keys proxy_addr_pick_policy random -> serial, "
        "+happy_eyeballs {connection_attempt_delay: 300ms}, "
        "tcp_connect {max_retry: 1} -> {max_retry: 2}, -no_ipv6");
  CHECK(describe_changes(before, &before_file, before, &before_file) == "no change");
  CHECK(describe_changes(before, nullptr, after, nullptr) ==
        "next proxies 127.0.0.2:2 weight 1 -> 3, +127.0.0.4:4 (weight 1), -127.0.0.3:3; "
        "keys proxy_addr_pick_policy random -> serial");
}

TEST_CASE("the README's pasted g3 block loads and builds", "[config_file]") {
  const auto readme =
      test::read_file(std::filesystem::path(DIVERT_TEST_SOURCE_DIR) / ".." / "README.md");
  const auto section = readme.find("### Configuration file");
  REQUIRE(section != std::string::npos);
  const auto begin = readme.find("```yaml\n", section);
  REQUIRE(begin != std::string::npos);
  const auto end = readme.find("```", begin + 8);
  REQUIRE(end != std::string::npos);
  auto e = parse_escaper_config(readme.substr(begin + 8, end - begin - 8), "README.md");
  auto b = DivertTcpConnector::builder();
  e.apply(b);
  CHECK(b.config().proxy_addr.size() == 2);
  CHECK(b.config().connect.tcp_connect.each_timeout == std::chrono::seconds(5));
  CHECK_NOTHROW(b.build());
}

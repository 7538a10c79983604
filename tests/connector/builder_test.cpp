// The builder's config error table (every row) and the string keys' mapping.
#include "divert/connector.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace std::chrono_literals;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("build() error table: each row names the key and the value") {
  struct Row {
    const char* what;
    std::function<void(DivertTcpConnector::Builder&)> setup;
    const char* expect;  // substring of what()
  };
  std::vector<Row> rows = {
      {"no proxy_addr", [](auto&) {}, "proxy_addr = \"\": required"},
      {"domain proxy without resolver", [](auto& b) { b.proxy_addr("np1.example.test"); },
       "resolver = \"\": required because proxy_addr 'np1.example.test:3128' is a domain name"},
      {"both no_ipv4 and no_ipv6",
       [](auto& b) { b.proxy_addr("10.0.0.1").no_ipv4(true).no_ipv6(true); }, "no_ipv"},
      {"IPv4 proxy with no_ipv4", [](auto& b) { b.proxy_addr("10.0.0.1").no_ipv4(true); },
       "proxy_addr = \"10.0.0.1:3128\": is an IPv4 address but IPv4 is disabled"},
      {"IPv6 proxy with no_ipv6", [](auto& b) { b.proxy_addr("[2001:db8::1]:3128").no_ipv6(true); },
       "proxy_addr = \"[2001:db8::1]:3128\": is an IPv6 address but IPv6 is disabled"},
      {"IPv4 proxy with Ipv6Only",
       [](auto& b) {
         b.proxy_addr("10.0.0.1")
             .resolve_strategy({.query = net::ResolveStrategy::Query::Ipv6Only});
       },
       "is an IPv4 address but IPv4 is disabled"},
      {"strategy contradicts no_ipv4",
       [](auto& b) {
         b.proxy_addr("[::1]").no_ipv4(true).resolve_strategy(
             {.query = net::ResolveStrategy::Query::Ipv4Only});
       },
       "resolve_strategy"},
      {"speed limit shift above 12",
       [](auto& b) {
         b.proxy_addr("10.0.0.1")
             .tcp_sock_speed_limit({.shift_millis = 13, .upload = 1, .download = 1});
       },
       "tcp_sock_speed_limit.shift_millis"},
      {"speed limit zero",
       [](auto& b) {
         b.proxy_addr("10.0.0.1")
             .tcp_sock_speed_limit({.shift_millis = 10, .upload = 0, .download = 1});
       },
       "tcp_sock_speed_limit.upload"},
      {"unknown key", [](auto& b) { b.set("proxy_adr", "10.0.0.1"); },
       "proxy_adr = \"10.0.0.1\": unknown key"},
      {"unknown field", [](auto& b) { b.set("tcp_connect.max_retries", "2"); },
       "tcp_connect.max_retries = \"2\": unknown field (known: max_retry, each_timeout)"},
      {"bad weight", [](auto& b) { b.set("proxy_addr", "[{addr: 10.0.0.1, weight: 0}]"); },
       "weight"},
      {"bad policy", [](auto& b) { b.set("proxy_addr_pick_policy", "fastest"); },
       "proxy_addr_pick_policy = \"fastest\""},
      {"bad duration", [](auto& b) { b.set("tcp_connect.each_timeout", "soon"); },
       "tcp_connect.each_timeout = \"soon\": not a duration"},
      {"bad bool", [](auto& b) { b.set("no_ipv4", "maybe"); },
       "no_ipv4 = \"maybe\": not a boolean"},
      {"bad bind family", [](auto& b) { b.set("bind_ipv4", "::1"); },
       "bind_ipv4 = \"::1\": not an IPv4 address"},
      {"v4-mapped bind6", [](auto& b) { b.set("bind_ipv6", "::ffff:10.0.0.1"); },
       "bind_ipv6 = \"::ffff:10.0.0.1\": not an IPv6 address (IPv4-mapped refused)"},
      {"bad tag", [](auto& b) { b.set("extra_metrics_tags", "{pool: \"a b\"}"); },
       "extra_metrics_tags.pool"},
      {"unknown resolver", [](auto& b) { b.set("resolver", "cares"); },
       "resolver = \"cares\": unknown resolver"},
      {"bad upstream", [](auto& b) { b.set("proxy_addr", "0.0.0.0:3128"); }, "proxy_addr"},
      // The selector's errors, with the key added by the builder.
      {"same proxy twice",
       [](auto& b) {
         b.proxy_addr({{"10.0.0.1:1"}, {"[::ffff:10.0.0.1]:1"}});
       },
       "divert config: proxy_addr = \"10.0.0.1:1\": address listed twice"},
      {"ketama ring too large",
       [](auto& b) {
         b.proxy_addr({{"10.0.0.1:1", 1.0}, {"10.0.0.2:1", 30000.0}})
             .proxy_addr_pick_policy(PickPolicy::ketama);
       },
       "divert config: proxy_addr = \"10.0.0.2:1\": ketama ring would exceed 4194304 points "
       "(weight × 160 per node); lower the weights"},
      {"jump hash too large",
       [](auto& b) {
         b.proxy_addr({{"10.0.0.1:1", 2e6}}).proxy_addr_pick_policy(PickPolicy::jump_hash);
       },
       "divert config: proxy_addr = \"10.0.0.1:1\": jump hash would exceed 16777216 "
       "buckets (weight × 10 per node); lower the weights"},
      {"port out of range", [](auto& b) { b.set("proxy_addr", "10.0.0.1:70000"); }, "proxy_addr"},
      {"ttl out of range", [](auto& b) { b.set("tcp_misc_opts.ttl", "256"); },
       "tcp_misc_opts.ttl = \"256\": out of range [1, 255]"},
      {"list where a scalar is wanted", [](auto& b) { b.set("no_ipv6", "[true]"); },
       "no_ipv6 = \"[true]\": expected a single value"},
  };
  for (auto& row : rows) {
    INFO(row.what);
    auto msg = error_of([&] {
      auto b = DivertTcpConnector::builder();
      row.setup(b);
      b.build();
    });
    CHECK_THAT(msg, Catch::Contains(row.expect));
    CHECK_THAT(msg, Catch::StartsWith("divert config: "));
  }
}

TEST_CASE("string keys map onto the typed configuration") {
  auto b = DivertTcpConnector::builder();
  b.set("proxy_addr",
        "[10.0.0.1, {addr: \"[2001:db8::7]:8080\", weight: 2.5}, {address: np.test, weight: 1}]")
      .set("Proxy-Addr-Pick-Policy", "RR")
      .set("resolver", "system")
      .set("resolve_strategy", "{query: ipv6_first, pick: serial}")
      .set("tcp_sock_speed_limit", "10M")
      .set("tcp_connect", "{max_retry: 4, each_timeout: 3s}")
      .set("tcp_connect.max_retry", "5")
      .set("happy_eyeballs", "{first_resolution_delay: 20ms, connection_attempt_delay: 300ms}")
      .set("tcp_misc_opts", "{mss: 1400, ttl: 32, tos: 16, mark: 7, congestion_control: cubic}")
      .set("tcp_keepalive", "30s")
      .set("bind_ipv4", "127.0.0.1")
      .set("extra_metrics_tags", "{pool: edge-1, dc: fra.1}")
      .set("shared_logger", "stderr:debug")
      .set("proxy_failover", "2")
      .set("eject_duration", "1m");
  const auto& c = b.config();
  REQUIRE(c.proxy_addr.size() == 3);
  CHECK(c.proxy_addr[0].addr.to_string() == "10.0.0.1:3128");
  CHECK(c.proxy_addr[1].addr.to_string() == "[2001:db8::7]:8080");
  CHECK(c.proxy_addr[1].weight == 2.5);
  CHECK(c.proxy_addr[2].addr.to_string() == "np.test:3128");
  CHECK(c.proxy_addr_pick_policy == PickPolicy::round_robin);
  CHECK(c.resolver != nullptr);
  CHECK(c.connect.resolve_strategy.query == net::ResolveStrategy::Query::Ipv6First);
  CHECK(c.connect.resolve_strategy.pick == net::ResolveStrategy::Pick::Serial);
  CHECK(c.tcp_sock_speed_limit.shift_millis == 10);
  CHECK(c.tcp_sock_speed_limit.upload == 10'000'000);
  CHECK(c.tcp_sock_speed_limit.download == 10'000'000);
  CHECK(c.connect.tcp_connect.max_retry == 5);
  CHECK(c.connect.tcp_connect.each_timeout == 3s);
  CHECK(c.connect.happy_eyeballs.resolution_delay == 20ms);
  CHECK(c.connect.happy_eyeballs.connection_attempt_delay == 300ms);
  CHECK(c.connect.tcp_misc_opts.max_segment_size == 1400u);
  CHECK(c.connect.tcp_misc_opts.time_to_live == 32u);
  CHECK(c.connect.tcp_misc_opts.type_of_service == 16);
  CHECK(c.connect.tcp_misc_opts.netfilter_mark == 7u);
  CHECK(c.connect.tcp_misc_opts.congestion_control == "cubic");
  CHECK(c.connect.tcp_keepalive.enable);
  CHECK(c.connect.tcp_keepalive.idle_time == 30s);
  CHECK(c.connect.bind_ipv4->to_string() == "127.0.0.1");
  CHECK(c.extra_metrics_tags.at("dc") == "fra.1");
  CHECK(c.shared_logger.enabled(LogLevel::debug));
  CHECK(c.proxy_failover == 2);
  CHECK(c.eject_duration == 60s);
  CHECK(c.connect.delay_handshake_ack);  // the connector's default
  b.set("delay_handshake_ack", "false");
  CHECK_FALSE(b.config().connect.delay_handshake_ack);
  b.delay_handshake_ack(true);
  CHECK(b.config().connect.delay_handshake_ack);
  CHECK_THROWS_AS(b.set("delay_handshake_ack", "maybe"), config_error);
  CHECK_FALSE(c.next_proxy_status_reply);  // off by default
  b.set("next-proxy-status-reply", "true");
  CHECK(b.config().next_proxy_status_reply);
  b.next_proxy_status_reply(false);
  CHECK_FALSE(b.config().next_proxy_status_reply);
  CHECK_THROWS_AS(b.set("next_proxy_status_reply", "sometimes"), config_error);
  CHECK_FALSE(net::ConnectOptions{}.delay_handshake_ack);  // the net layer's default
  CHECK_FALSE(c.connect.tcp_fast_open);                    // off by default until measured
  b.set("tcp_fast_open", "true");
  CHECK(b.config().connect.tcp_fast_open);
  b.tcp_fast_open(false);
  CHECK_FALSE(b.config().connect.tcp_fast_open);
  CHECK_THROWS_AS(b.set("tcp-fast-open", "often"), config_error);
  auto conn = b.build();
  CHECK(conn.config().proxy_addr.size() == 3);
}

TEST_CASE("tcp_keepalive and speed limit forms") {
  auto b = DivertTcpConnector::builder();
  b.set("tcp_keepalive", "true");
  CHECK(b.config().connect.tcp_keepalive.enable);
  CHECK(b.config().connect.tcp_keepalive.idle_time == 60s);
  b.set("tcp_keepalive", "{enable: false, probe_count: 3, probe_interval: 5s}");
  CHECK_FALSE(b.config().connect.tcp_keepalive.enable);
  CHECK(b.config().connect.tcp_keepalive.probe_count == 3u);
  b.set("tcp_sock_speed_limit", "{shift: 8, north: 1Mi, south_bytes: 2K}");
  CHECK(b.config().tcp_sock_speed_limit.shift_millis == 8);
  CHECK(b.config().tcp_sock_speed_limit.upload == 1048576);
  CHECK(b.config().tcp_sock_speed_limit.download == 2000);
}

TEST_CASE("a single proxy_addr takes the default port 3128, and IPv4-mapped is folded") {
  auto c = DivertTcpConnector::builder().proxy_addr("[::ffff:10.1.2.3]").build();
  CHECK(c.config().proxy_addr.at(0).addr.to_string() == "10.1.2.3:3128");
  CHECK(c.config().proxy_addr_pick_policy == PickPolicy::random);
}

TEST_CASE("g3 compatibility: resolve_strategy.pick First") {
  using Pick = net::ResolveStrategy::Pick;
  for (const char* first : {"First", "first", "FIRST"}) {
    auto b = DivertTcpConnector::builder();
    b.set("resolve_strategy", "{query: Ipv4First, pick: Random}");
    b.set("resolve_strategy.pick", first);
    CHECK(b.config().connect.resolve_strategy.pick == Pick::Serial);
  }
  CHECK_THROWS_WITH(DivertTcpConnector::builder().set("resolve_strategy.pick", "last"),
                    Catch::Contains("unknown pick strategy (Random, Serial or First)"));
}

TEST_CASE("g3 compatibility: the deprecated names of tcp_sock_speed_limit") {
  // g3's deprecated names of tcp_sock_speed_limit, in both value forms.
  for (const char* alias : {"tcp_conn_speed_limit", "tcp_conn_limit", "conn_limit", "Conn-Limit"}) {
    INFO(alias);
    auto b = DivertTcpConnector::builder();
    b.set(alias, "10M");
    CHECK(b.config().tcp_sock_speed_limit.upload == 10'000'000);
    CHECK(b.config().tcp_sock_speed_limit.download == 10'000'000);
    b.set(std::string(alias) + ".upload", "1K");
    CHECK(b.config().tcp_sock_speed_limit.upload == 1000);
    CHECK_THROWS_WITH(b.set(alias, "{nort: 1}"), Catch::Contains("tcp_sock_speed_limit.nort"));
  }
}

TEST_CASE("bind_interface (g3): a name or an index, checked at build()") {
  auto b = DivertTcpConnector::builder().proxy_addr("127.0.0.1:3128");
  b.set("bind_interface", "lo");
  REQUIRE(b.config().connect.bind_interface);
  CHECK(*b.config().connect.bind_interface == "lo");
  CHECK_NOTHROW(b.build());
  b.set("bind_interface", "1");  // g3 also takes an interface index; 1 is lo on Linux
  CHECK(*b.config().connect.bind_interface == "lo");
  b.set("bind_interface", "divnoif0");
  CHECK_THROWS_WITH(b.build(), Catch::Contains("bind_interface = \"divnoif0\": no such network "
                                               "interface"));
  b.set("bind_interface", "a-name-that-is-too-long");
  CHECK_THROWS_WITH(b.build(), Catch::Contains("interface name longer than 15 bytes"));
  CHECK_THROWS_WITH(b.set("bind_interface", "4000000"), Catch::Contains("no network interface "
                                                                        "with index 4000000"));
  CHECK_THROWS_WITH(b.set("bind_interface", ""), Catch::Contains("empty interface name"));
}

TEST_CASE("proxy_addr: a one-element flow list with ip:port, and a URL is not an address") {
  struct Row {
    const char* value;
    std::vector<std::string> proxies;  // canonical, in order
  };
  const Row rows[] = {
      {"[127.0.0.1:3128]", {"127.0.0.1:3128"}},
      {"[127.0.0.1:3129, np1.test]", {"127.0.0.1:3129", "np1.test:3128"}},
      {"[np1.test:3130]", {"np1.test:3130"}},
      {"[::1]:3128", {"[::1]:3128"}},
      {"[::1]", {"[::1]:3128"}},
  };
  auto b = DivertTcpConnector::builder();
  for (const auto& row : rows) {
    INFO(row.value);
    b.set("proxy_addr", row.value);
    std::vector<std::string> got;
    for (const auto& p : b.config().proxy_addr) got.push_back(p.addr.to_string());
    CHECK(got == row.proxies);
  }
  CHECK_THROWS_WITH(b.set("proxy_addr", "http://np1:3128"),
                    "divert config: proxy_addr = \"http://np1:3128\": a URL is not an address "
                    "(write host:port)");
  CHECK_THROWS_WITH(b.set("proxy_addr", "[socks5://np1:1080]"),
                    Catch::Contains("a URL is not an address"));
}

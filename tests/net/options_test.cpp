// ConnectOptions: g3proxy divert_tcp's defaults and validate() conflicts.
#include <asio/ip/address.hpp>

#include "divert/error.hpp"
#include "divert/net/options.hpp"
#include "support/catch.hpp"

using namespace divert::net;
using namespace std::chrono_literals;

namespace {
std::string key_of(const ConnectOptions& o) {
  try {
    o.validate();
  } catch (const divert::config_error& e) {
    return e.key();
  }
  return "";
}
}  // namespace

TEST_CASE("defaults are g3proxy divert_tcp's") {
  ConnectOptions o;
  CHECK(o.happy_eyeballs.resolution_delay == 50ms);
  CHECK(o.happy_eyeballs.second_resolution_timeout == 2s);
  CHECK(o.happy_eyeballs.first_address_family_count == 1);
  CHECK(o.happy_eyeballs.connection_attempt_delay == 250ms);
  CHECK(o.tcp_connect.max_retry == 2);
  CHECK(o.tcp_connect.each_timeout == 30s);
  CHECK(o.resolve_strategy.query == ResolveStrategy::Query::Ipv4First);
  CHECK(o.resolve_strategy.pick == ResolveStrategy::Pick::Random);
  CHECK_FALSE(o.tcp_keepalive.enable);
  CHECK(o.tcp_keepalive.idle_time == 60s);
  CHECK_FALSE(o.tcp_keepalive.probe_interval);
  CHECK_FALSE(o.tcp_keepalive.probe_count);
  CHECK(o.tcp_misc_opts.no_delay);
  CHECK_FALSE(o.tcp_misc_opts.max_segment_size);
  CHECK_FALSE(o.tcp_misc_opts.time_to_live);
  CHECK_FALSE(o.tcp_misc_opts.hop_limit);
  CHECK_FALSE(o.tcp_misc_opts.type_of_service);
  CHECK_FALSE(o.tcp_misc_opts.traffic_class);
  CHECK_FALSE(o.tcp_misc_opts.congestion_control);
  CHECK_FALSE(o.tcp_misc_opts.netfilter_mark);
  CHECK_FALSE(o.no_ipv4);
  CHECK_FALSE(o.no_ipv6);
  CHECK_FALSE(o.bind_ipv4);
  CHECK_FALSE(o.bind_ipv6);
  CHECK_NOTHROW(o.validate());
  CHECK(o.preferred_family() == AddressFamily::ipv4);
}

TEST_CASE("validate names the key of each conflict") {
  using Q = ResolveStrategy::Query;
  ConnectOptions o;
  o.no_ipv4 = o.no_ipv6 = true;
  CHECK(key_of(o) == "no_ipv6");
  o = {};
  o.no_ipv4 = true;
  o.resolve_strategy.query = Q::Ipv4Only;
  CHECK(key_of(o) == "no_ipv4");
  o = {};
  o.no_ipv6 = true;
  o.resolve_strategy.query = Q::Ipv6Only;
  CHECK(key_of(o) == "no_ipv6");
  o = {};
  o.no_ipv4 = true;  // Ipv4First with no_ipv4 is fine: IPv6 only
  CHECK(key_of(o) == "");
  CHECK(o.preferred_family() == AddressFamily::ipv6);
  o = {};
  o.bind_ipv4 = asio::ip::make_address("::1");
  CHECK(key_of(o) == "bind_ipv4");
  o = {};
  o.bind_ipv6 = asio::ip::make_address("127.0.0.1");
  CHECK(key_of(o) == "bind_ipv6");
  o = {};
  o.bind_ipv6 = asio::ip::make_address("::ffff:127.0.0.1");
  CHECK(key_of(o) == "bind_ipv6");
  o = {};
  o.bind_ipv4 = asio::ip::make_address("127.0.0.1");
  o.bind_ipv6 = asio::ip::make_address("::1");
  CHECK(key_of(o) == "");
  o = {};
  o.tcp_connect.each_timeout = 0ms;
  CHECK(key_of(o) == "tcp_connect.each_timeout");
  o = {};
  o.tcp_misc_opts.time_to_live = 256;
  CHECK(key_of(o) == "tcp_misc_opts.time_to_live");
  o = {};
  o.tcp_misc_opts.hop_limit = 0;
  CHECK(key_of(o) == "tcp_misc_opts.hop_limit");
  o = {};
  o.happy_eyeballs.resolution_delay = -1ms;
  CHECK(key_of(o) == "happy_eyeballs.resolution_delay");
  o = {};
  o.tcp_keepalive.probe_count = 0;
  CHECK(key_of(o) == "tcp_keepalive.probe_count");
  o = {};
  o.tcp_misc_opts.congestion_control = "";
  CHECK(key_of(o) == "tcp_misc_opts.congestion_control");
}

TEST_CASE("config_error message quotes key and value") {
  ConnectOptions o;
  o.bind_ipv6 = asio::ip::make_address("::ffff:10.0.0.1");
  try {
    o.validate();
    FAIL("no throw");
  } catch (const divert::config_error& e) {
    CHECK(e.value() == "::ffff:10.0.0.1");
    CHECK(std::string(e.what()).find("bind_ipv6") != std::string::npos);
  }
}

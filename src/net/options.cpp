#include "divert/net/options.hpp"

#include <net/if.h>

#include <algorithm>
#include <string>

#include "divert/error.hpp"

namespace divert::net {

HappyEyeballsConfig HappyEyeballsConfig::clamped() const noexcept {
  HappyEyeballsConfig c = *this;
  c.connection_attempt_delay = std::clamp(c.connection_attempt_delay, min_connection_attempt_delay,
                                          max_connection_attempt_delay);
  c.first_address_family_count = std::max<std::size_t>(c.first_address_family_count, 1);
  if (c.resolution_delay < milliseconds::zero()) c.resolution_delay = milliseconds::zero();
  if (c.second_resolution_timeout < milliseconds::zero())
    c.second_resolution_timeout = milliseconds::zero();
  return c;
}

namespace {

const char* query_name(ResolveStrategy::Query q) {
  switch (q) {
    case ResolveStrategy::Query::Ipv4First:
      return "Ipv4First";
    case ResolveStrategy::Query::Ipv6First:
      return "Ipv6First";
    case ResolveStrategy::Query::Ipv4Only:
      return "Ipv4Only";
    case ResolveStrategy::Query::Ipv6Only:
      return "Ipv6Only";
  }
  return "?";
}

std::string ms_text(milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

void check_non_negative(const char* key, milliseconds d) {
  if (d < milliseconds::zero()) throw config_error(key, ms_text(d), "must not be negative");
}

void check_bind(const char* key, const std::optional<asio::ip::address>& a, bool want_v4) {
  if (!a) return;
  if (want_v4 && !a->is_v4()) throw config_error(key, a->to_string(), "not an IPv4 address");
  if (!want_v4) {
    if (!a->is_v6()) throw config_error(key, a->to_string(), "not an IPv6 address");
    if (a->to_v6().is_v4_mapped())
      throw config_error(key, a->to_string(), "IPv4-mapped IPv6 address is not allowed");
  }
}

void check_hops(const char* key, const std::optional<std::uint32_t>& v) {
  if (v && (*v < 1 || *v > 255))
    throw config_error(key, std::to_string(*v), "must be between 1 and 255");
}

}  // namespace

void ConnectOptions::validate() const {
  using Q = ResolveStrategy::Query;
  if (no_ipv4 && no_ipv6)
    throw config_error("no_ipv6", "true",
                       "both no_ipv4 and no_ipv6 are set: no address family left");
  if (no_ipv4 && resolve_strategy.query == Q::Ipv4Only)
    throw config_error(
        "no_ipv4", "true",
        std::string("conflicts with resolve_strategy query ") + query_name(resolve_strategy.query));
  if (no_ipv6 && resolve_strategy.query == Q::Ipv6Only)
    throw config_error(
        "no_ipv6", "true",
        std::string("conflicts with resolve_strategy query ") + query_name(resolve_strategy.query));
  check_bind("bind_ipv4", bind_ipv4, true);
  check_bind("bind_ipv6", bind_ipv6, false);
  if (bind_interface) {
    const auto& name = *bind_interface;
    if (name.empty()) throw config_error("bind_interface", name, "empty interface name");
    if (name.size() >= IF_NAMESIZE)
      throw config_error(
          "bind_interface", name,
          "interface name longer than " + std::to_string(IF_NAMESIZE - 1) + " bytes");
    if (name.find('\0') != std::string::npos || ::if_nametoindex(name.c_str()) == 0)
      throw config_error("bind_interface", name, "no such network interface");
  }

  check_non_negative("happy_eyeballs.resolution_delay", happy_eyeballs.resolution_delay);
  check_non_negative("happy_eyeballs.second_resolution_timeout",
                     happy_eyeballs.second_resolution_timeout);
  check_non_negative("happy_eyeballs.connection_attempt_delay",
                     happy_eyeballs.connection_attempt_delay);
  if (tcp_connect.each_timeout <= milliseconds::zero())
    throw config_error("tcp_connect.each_timeout", ms_text(tcp_connect.each_timeout),
                       "must be positive");
  check_non_negative("tcp_keepalive.idle_time", tcp_keepalive.idle_time);
  if (tcp_keepalive.probe_interval)
    check_non_negative("tcp_keepalive.probe_interval", *tcp_keepalive.probe_interval);
  if (tcp_keepalive.probe_count && *tcp_keepalive.probe_count == 0)
    throw config_error("tcp_keepalive.probe_count", "0", "must be at least 1");
  check_hops("tcp_misc_opts.time_to_live", tcp_misc_opts.time_to_live);
  check_hops("tcp_misc_opts.hop_limit", tcp_misc_opts.hop_limit);
  if (tcp_misc_opts.congestion_control && tcp_misc_opts.congestion_control->empty())
    throw config_error("tcp_misc_opts.congestion_control", "", "must not be empty");
}

bool ConnectOptions::family_allowed(AddressFamily f) const noexcept {
  using Q = ResolveStrategy::Query;
  if (f == AddressFamily::ipv4) return !no_ipv4 && resolve_strategy.query != Q::Ipv6Only;
  return !no_ipv6 && resolve_strategy.query != Q::Ipv4Only;
}

AddressFamily ConnectOptions::preferred_family() const noexcept {
  using Q = ResolveStrategy::Query;
  const bool v6 = resolve_strategy.query == Q::Ipv6First || resolve_strategy.query == Q::Ipv6Only;
  AddressFamily p = v6 ? AddressFamily::ipv6 : AddressFamily::ipv4;
  if (!family_allowed(p)) p = v6 ? AddressFamily::ipv4 : AddressFamily::ipv6;
  return p;
}

}  // namespace divert::net

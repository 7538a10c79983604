// DivertTcpConnector::Builder: typed setters, g3proxy divert_tcp's string keys, validation.
#include <net/if.h>

#include <algorithm>
#include <cctype>

#include "divert/connector.hpp"
#include "divert/select/upstream_selector.hpp"

namespace divert {

namespace {

std::string join(std::string_view a, std::string_view b) {
  return std::string(a) + "." + std::string(b);
}

// Calls `field(name, value)` for each entry of a map value; a scalar is
// refused with `scalar_hint` unless `on_scalar` handles it.
template <class OnField>
void for_each_field(std::string_view key, const ConfigValue& v, OnField&& field) {
  if (!v.is_map())
    throw config_error(std::string(key), v.to_string(), "expected a map {field: value, ...}");
  for (auto& [name, value] : v.map()) field(normalize_key(name), value);
}

[[noreturn]] void unknown_field(std::string_view key, std::string_view field, const ConfigValue& v,
                                std::string_view known) {
  throw config_error(join(key, field), v.to_string(),
                     "unknown field (known: " + std::string(known) + ")");
}

std::uint32_t parse_u32(std::string_view key, const ConfigValue& v, std::int64_t min,
                        std::int64_t max) {
  return static_cast<std::uint32_t>(parse_int(key, expect_scalar(key, v), min, max));
}

asio::ip::address parse_bind(std::string_view key, const ConfigValue& v, bool want_v4) {
  const auto& text = expect_scalar(key, v);
  error_code ec;
  auto a = asio::ip::make_address(text, ec);
  if (ec) throw config_error(std::string(key), text, "not an IP address");
  if (want_v4 && !a.is_v4()) throw config_error(std::string(key), text, "not an IPv4 address");
  if (!want_v4 && (!a.is_v6() || a.to_v6().is_v4_mapped()))
    throw config_error(std::string(key), text, "not an IPv6 address (IPv4-mapped refused)");
  return a;
}

WeightedUpstreamAddr parse_weighted(std::string_view key, const ConfigValue& v) {
  if (v.is_scalar())
    return WeightedUpstreamAddr(UpstreamAddr::parse(v.scalar(), kDefaultProxyPort, key), 1.0);
  if (!v.is_map())
    throw config_error(std::string(key), v.to_string(),
                       "expected an address or {addr: ADDR, weight: NUMBER}");
  std::optional<UpstreamAddr> addr;
  double weight = 1.0;
  for (auto& [name, value] : v.map()) {
    auto f = normalize_key(name);
    if (f == "addr" || f == "address")
      addr = UpstreamAddr::parse(expect_scalar(join(key, f), value), kDefaultProxyPort, key);
    else if (f == "weight")
      weight = parse_number(join(key, f), expect_scalar(join(key, f), value));
    else
      unknown_field(key, f, value, "addr, address, weight");
  }
  if (!addr) throw config_error(std::string(key), v.to_string(), "missing field 'addr'");
  WeightedUpstreamAddr w(*addr, weight);
  w.validate(key);
  return w;
}

net::ResolveStrategy::Query parse_query(std::string_view key, const std::string& text) {
  std::string n;
  for (char c : text)
    if (c != '_' && c != '-')
      n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  using Q = net::ResolveStrategy::Query;
  if (n == "ipv4first") return Q::Ipv4First;
  if (n == "ipv6first") return Q::Ipv6First;
  if (n == "ipv4only") return Q::Ipv4Only;
  if (n == "ipv6only") return Q::Ipv6Only;
  throw config_error(std::string(key), text,
                     "unknown query strategy (Ipv4First, Ipv6First, Ipv4Only, Ipv6Only)");
}

net::ResolveStrategy::Pick parse_pick(std::string_view key, const std::string& text) {
  std::string n = normalize_key(text);
  if (n == "random") return net::ResolveStrategy::Pick::Random;
  if (n == "serial" || n == "first") return net::ResolveStrategy::Pick::Serial;  // g3: both
  throw config_error(std::string(key), text, "unknown pick strategy (Random, Serial or First)");
}

// g3's bind_interface value: an interface name, or its index (a number).
std::string parse_interface(std::string_view key, const std::string& text) {
  if (text.empty()) throw config_error(std::string(key), text, "empty interface name");
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    const auto index = parse_int(key, text, 1, 0xFFFFFFFFLL);
    char name[IF_NAMESIZE] = {};
    if (::if_indextoname(static_cast<unsigned>(index), name) == nullptr)
      throw config_error(std::string(key), text, "no network interface with index " + text);
    return name;
  }
  return text;  // checked by ConnectOptions::validate() at build()
}

Logger parse_logger(std::string_view key, const std::string& text) {
  std::string n = normalize_key(text);
  if (n == "off" || n == "none" || n.empty()) return null_logger();
  auto colon = n.find(':');
  std::string sink = n.substr(0, colon);
  LogLevel level = LogLevel::info;
  if (colon != std::string::npos) {
    std::string l = n.substr(colon + 1);
    bool found = false;
    for (auto lv :
         {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
      if (l == to_string(lv)) {
        level = lv;
        found = true;
      }
    }
    if (!found)
      throw config_error(std::string(key), text, "unknown level (trace, debug, info, warn, error)");
  }
  if (sink != "stderr")
    throw config_error(
        std::string(key), text,
        "unknown logger (off, stderr, stderr:LEVEL; pass others with .shared_logger())");
  return stderr_logger(level);
}

// health_check: a map {interval, timeout, rise, fall, enable} turns the check on
// (unless enable: false); a scalar boolean only switches it. Fields left out
// keep their value in `current`.
HealthCheckConfig parse_health_check(std::string_view key, const ConfigValue& v,
                                     HealthCheckConfig current) {
  if (v.is_scalar()) {
    current.enabled = parse_bool(key, v.scalar());
    return current;
  }
  if (!v.is_map())
    throw config_error(std::string(key), v.to_string(),
                       "expected a map {interval, timeout, rise, fall} or a boolean");
  current.enabled = true;
  auto positive_duration = [](const std::string& k, const ConfigValue& fv) {
    const auto& text = expect_scalar(k, fv);
    auto d = parse_duration(k, text);
    if (d.count() <= 0) throw config_error(k, text, "must be positive");
    return d;
  };
  for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
    auto k = join(key, f);
    if (f == "interval")
      current.interval = positive_duration(k, fv);
    else if (f == "timeout")
      current.timeout = positive_duration(k, fv);
    else if (f == "rise")
      current.rise = parse_u32(k, fv, 1, 1000);
    else if (f == "fall")
      current.fall = parse_u32(k, fv, 1, 1000);
    else if (f == "enable" || f == "enabled")
      current.enabled = parse_bool(k, expect_scalar(k, fv));
    else
      unknown_field(key, f, fv, "interval, timeout, rise, fall, enable");
  });
  return current;
}

}  // namespace

DivertTcpConnector::Builder DivertTcpConnector::builder() {
  return Builder{};
}

using B = DivertTcpConnector::Builder;

B& B::proxy_addr(std::string_view addr) {
  cfg_.proxy_addr = {
      WeightedUpstreamAddr(UpstreamAddr::parse(addr, kDefaultProxyPort, "proxy_addr"), 1.0)};
  return *this;
}
B& B::proxy_addr(std::vector<WeightedUpstreamAddr> addrs) {
  cfg_.proxy_addr = std::move(addrs);
  return *this;
}
B& B::proxy_addr_pick_policy(PickPolicy p) {
  cfg_.proxy_addr_pick_policy = p;
  return *this;
}
B& B::resolver(std::shared_ptr<net::Resolver> r) {
  cfg_.resolver = std::move(r);
  return *this;
}
B& B::resolve_strategy(net::ResolveStrategy s) {
  cfg_.connect.resolve_strategy = s;
  return *this;
}
B& B::tcp_sock_speed_limit(SpeedLimitConfig s) {
  cfg_.tcp_sock_speed_limit = s;
  return *this;
}
B& B::no_ipv4(bool v) {
  cfg_.connect.no_ipv4 = v;
  return *this;
}
B& B::no_ipv6(bool v) {
  cfg_.connect.no_ipv6 = v;
  return *this;
}
B& B::tcp_connect(net::TcpConnectConfig c) {
  cfg_.connect.tcp_connect = c;
  return *this;
}
B& B::happy_eyeballs(net::HappyEyeballsConfig c) {
  cfg_.connect.happy_eyeballs = c;
  return *this;
}
B& B::tcp_misc_opts(net::TcpMiscOpts o) {
  cfg_.connect.tcp_misc_opts = std::move(o);
  return *this;
}
B& B::tcp_keepalive(net::TcpKeepalive k) {
  cfg_.connect.tcp_keepalive = k;
  return *this;
}
B& B::bind_ipv4(asio::ip::address a) {
  cfg_.connect.bind_ipv4 = a;
  return *this;
}
B& B::bind_ipv6(asio::ip::address a) {
  cfg_.connect.bind_ipv6 = a;
  return *this;
}
B& B::bind_interface(std::string name) {
  cfg_.connect.bind_interface = std::move(name);
  return *this;
}
B& B::extra_metrics_tags(std::map<std::string, std::string> tags) {
  cfg_.extra_metrics_tags = std::move(tags);
  return *this;
}
B& B::shared_logger(Logger l) {
  cfg_.shared_logger = std::move(l);
  return *this;
}
B& B::name(std::string n) {
  cfg_.name = std::move(n);
  return *this;
}
B& B::proxy_failover(std::size_t n) {
  cfg_.proxy_failover = n;
  return *this;
}
B& B::passive_ejection(std::uint32_t after_failures, std::chrono::milliseconds duration) {
  cfg_.eject_after_failures = after_failures;
  cfg_.eject_duration = duration;
  return *this;
}
B& B::tls_handshake_timeout(std::chrono::milliseconds t) {
  cfg_.tls_handshake_timeout = t;
  return *this;
}
B& B::tls_verify_peer(bool on) {
  cfg_.tls_verify_peer = on;
  return *this;
}
B& B::max_header_size(std::size_t bytes) {
  cfg_.max_header_size = bytes;
  return *this;
}
B& B::header_crc32c(bool on) {
  cfg_.header_crc32c = on;
  return *this;
}
B& B::next_proxy_status_reply(bool on) {
  cfg_.next_proxy_status_reply = on;
  return *this;
}
B& B::delay_handshake_ack(bool on) {
  cfg_.connect.delay_handshake_ack = on;
  return *this;
}
B& B::health_check(HealthCheckConfig c) {
  cfg_.health_check = c;
  return *this;
}
B& B::register_resolver(std::string name, std::shared_ptr<net::Resolver> r) {
  resolvers_[normalize_key(name)] = std::move(r);
  return *this;
}

B& B::set(std::string_view key, std::string_view value) {
  return set(key, ConfigValue::parse(value, normalize_key(key)));
}

B& B::set(std::string_view raw_key, const ConfigValue& v) {
  const std::string key = normalize_key(raw_key);
  // "a.b" sets field b of a: the same as set("a", {b: value}).
  if (auto dot = key.find('.'); dot != std::string::npos) {
    ConfigValue::Map m;
    m.emplace_back(key.substr(dot + 1), v);
    return set(key.substr(0, dot), ConfigValue(std::move(m)));
  }
  auto scalar = [&]() -> const std::string& { return expect_scalar(key, v); };
  auto& c = cfg_.connect;

  if (key == "proxy_addr") {
    std::vector<WeightedUpstreamAddr> list;
    if (v.is_list()) {
      for (std::size_t i = 0; i < v.list().size(); ++i)
        list.push_back(parse_weighted(key + "[" + std::to_string(i) + "]", v.list()[i]));
    } else {
      list.push_back(parse_weighted(key, v));
    }
    if (list.empty()) throw config_error(key, v.to_string(), "needs at least one address");
    cfg_.proxy_addr = std::move(list);
  } else if (key == "proxy_addr_pick_policy") {
    cfg_.proxy_addr_pick_policy = parse_pick_policy(scalar(), key);
  } else if (key == "resolver") {
    std::string name = normalize_key(scalar());
    if (auto it = resolvers_.find(name); it != resolvers_.end())
      cfg_.resolver = it->second;
    else if (name == "system")
      cfg_.resolver = net::system_resolver();
    else
      throw config_error(key, scalar(),
                         "unknown resolver (\"system\", or a name given to register_resolver())");
  } else if (key == "resolve_strategy") {
    if (v.is_scalar()) {
      c.resolve_strategy.query = parse_query(key, v.scalar());
    } else {
      for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
        if (f == "query")
          c.resolve_strategy.query = parse_query(join(key, f), expect_scalar(join(key, f), fv));
        else if (f == "pick")
          c.resolve_strategy.pick = parse_pick(join(key, f), expect_scalar(join(key, f), fv));
        else
          unknown_field(key, f, fv, "query, pick");
      });
    }
  } else if (key == "tcp_sock_speed_limit" || key == "tcp_conn_speed_limit" ||
             key == "tcp_conn_limit" || key == "conn_limit") {
    // The last three: g3's deprecated names of tcp_sock_speed_limit.
    if (key != "tcp_sock_speed_limit") return set("tcp_sock_speed_limit", v);
    auto& s = cfg_.tcp_sock_speed_limit;
    if (v.is_scalar()) {
      auto n = parse_size(key, v.scalar());
      s.shift_millis = 10;
      s.upload = s.download = n;
    } else {
      for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
        auto k = join(key, f);
        if (f == "shift_millis" || f == "shift")
          s.shift_millis = static_cast<unsigned>(parse_int(k, expect_scalar(k, fv), 0, 1'000'000));
        else if (f == "upload" || f == "north" || f == "upload_bytes" || f == "north_bytes")
          s.upload = parse_size(k, expect_scalar(k, fv));
        else if (f == "download" || f == "south" || f == "download_bytes" || f == "south_bytes")
          s.download = parse_size(k, expect_scalar(k, fv));
        else
          unknown_field(key, f, fv, "shift_millis, upload, download (and aliases)");
      });
    }
  } else if (key == "no_ipv4") {
    c.no_ipv4 = parse_bool(key, scalar());
  } else if (key == "no_ipv6") {
    c.no_ipv6 = parse_bool(key, scalar());
  } else if (key == "tcp_connect") {
    for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
      auto k = join(key, f);
      if (f == "max_retry")
        c.tcp_connect.max_retry = parse_u32(k, fv, 0, 1000);
      else if (f == "each_timeout")
        c.tcp_connect.each_timeout = parse_duration(k, expect_scalar(k, fv));
      else
        unknown_field(key, f, fv, "max_retry, each_timeout");
    });
  } else if (key == "happy_eyeballs") {
    auto& h = c.happy_eyeballs;
    for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
      auto k = join(key, f);
      if (f == "resolution_delay" || f == "first_resolution_delay")
        h.resolution_delay = parse_duration(k, expect_scalar(k, fv));
      else if (f == "second_resolution_timeout")
        h.second_resolution_timeout = parse_duration(k, expect_scalar(k, fv));
      else if (f == "first_address_family_count")
        h.first_address_family_count = parse_u32(k, fv, 0, 1000);
      else if (f == "connection_attempt_delay")
        h.connection_attempt_delay = parse_duration(k, expect_scalar(k, fv));
      else
        unknown_field(key, f, fv,
                      "resolution_delay, second_resolution_timeout, first_address_family_count, "
                      "connection_attempt_delay");
    });
  } else if (key == "tcp_misc_opts") {
    auto& o = c.tcp_misc_opts;
    for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
      auto k = join(key, f);
      if (f == "no_delay")
        o.no_delay = parse_bool(k, expect_scalar(k, fv));
      else if (f == "max_segment_size" || f == "mss")
        o.max_segment_size = parse_u32(k, fv, 1, 65535);
      else if (f == "time_to_live" || f == "ttl")
        o.time_to_live = parse_u32(k, fv, 1, 255);
      else if (f == "hop_limit")
        o.hop_limit = parse_u32(k, fv, 1, 255);
      else if (f == "type_of_service" || f == "tos")
        o.type_of_service = static_cast<std::uint8_t>(parse_u32(k, fv, 0, 255));
      else if (f == "traffic_class")
        o.traffic_class = static_cast<std::uint8_t>(parse_u32(k, fv, 0, 255));
      else if (f == "congestion_control")
        o.congestion_control = expect_scalar(k, fv);
      else if (f == "netfilter_mark" || f == "mark")
        o.netfilter_mark = parse_u32(k, fv, 0, 0xFFFFFFFFLL);
      else
        unknown_field(key, f, fv,
                      "no_delay, max_segment_size, time_to_live, hop_limit, type_of_service, "
                      "traffic_class, congestion_control, netfilter_mark");
    });
  } else if (key == "tcp_keepalive") {
    auto& k = c.tcp_keepalive;
    if (v.is_scalar()) {
      // A bare bool sets enable; a bare duration sets idle_time and enables.
      std::string n = normalize_key(v.scalar());
      bool is_bool =
          n == "true" || n == "false" || n == "yes" || n == "no" || n == "on" || n == "off";
      if (is_bool) {
        k.enable = parse_bool(key, v.scalar());
      } else {
        k.idle_time = parse_duration(key, v.scalar());
        k.enable = true;
      }
    } else {
      for_each_field(key, v, [&](const std::string& f, const ConfigValue& fv) {
        auto kk = join(key, f);
        if (f == "enable")
          k.enable = parse_bool(kk, expect_scalar(kk, fv));
        else if (f == "idle_time")
          k.idle_time = parse_duration(kk, expect_scalar(kk, fv));
        else if (f == "probe_interval")
          k.probe_interval = parse_duration(kk, expect_scalar(kk, fv));
        else if (f == "probe_count")
          k.probe_count = parse_u32(kk, fv, 1, 1000);
        else
          unknown_field(key, f, fv, "enable, idle_time, probe_interval, probe_count");
      });
    }
  } else if (key == "bind_ipv4") {
    c.bind_ipv4 = parse_bind(key, v, true);
  } else if (key == "bind_ipv6") {
    c.bind_ipv6 = parse_bind(key, v, false);
  } else if (key == "bind_interface") {
    c.bind_interface = parse_interface(key, scalar());
  } else if (key == "extra_metrics_tags") {
    std::map<std::string, std::string> tags;
    for (auto& [name, value] :
         (v.is_map()
              ? v.map()
              : throw config_error(key, v.to_string(), "expected a map {tag: value, ...}"))) {
      auto k = join(key, name);
      const auto& text = expect_scalar(k, value);
      validate_metric_tag(k, name);
      validate_metric_tag(k, text);
      tags[name] = text;
    }
    cfg_.extra_metrics_tags = std::move(tags);
  } else if (key == "shared_logger") {
    cfg_.shared_logger = parse_logger(key, scalar());
  } else if (key == "name") {
    cfg_.name = scalar();
  } else if (key == "proxy_failover") {
    cfg_.proxy_failover = static_cast<std::size_t>(parse_int(key, scalar(), 0, 1000));
  } else if (key == "eject_after_failures") {
    cfg_.eject_after_failures = static_cast<std::uint32_t>(parse_int(key, scalar(), 0, 1'000'000));
  } else if (key == "eject_duration") {
    cfg_.eject_duration = parse_duration(key, scalar());
  } else if (key == "tls_handshake_timeout") {
    cfg_.tls_handshake_timeout = parse_duration(key, scalar());
  } else if (key == "tls_verify_peer") {
    cfg_.tls_verify_peer = parse_bool(key, scalar());
  } else if (key == "max_header_size") {
    cfg_.max_header_size = static_cast<std::size_t>(parse_size(key, scalar()));
  } else if (key == "header_crc32c") {
    cfg_.header_crc32c = parse_bool(key, scalar());
  } else if (key == "next_proxy_status_reply") {
    cfg_.next_proxy_status_reply = parse_bool(key, scalar());
  } else if (key == "delay_handshake_ack") {
    cfg_.connect.delay_handshake_ack = parse_bool(key, scalar());
  } else if (key == "health_check") {
    cfg_.health_check = parse_health_check(key, v, cfg_.health_check);
  } else {
    throw config_error(
        key, v.to_string(),
        "unknown key (proxy_addr, proxy_addr_pick_policy, resolver, resolve_strategy, "
        "tcp_sock_speed_limit, no_ipv4, no_ipv6, tcp_connect, happy_eyeballs, tcp_misc_opts, "
        "tcp_keepalive, bind_ipv4, bind_ipv6, bind_interface, extra_metrics_tags, "
        "shared_logger, name, proxy_failover, eject_after_failures, eject_duration, "
        "tls_handshake_timeout, tls_verify_peer, max_header_size, header_crc32c, "
        "next_proxy_status_reply, delay_handshake_ack, health_check)");
  }
  return *this;
}

// The next-proxy selector; its errors name the key they came from (proxy_addr).
UpstreamSelector make_proxy_selector(const ConnectorConfig& cfg) {
  try {
    return make_upstream_selector(cfg.proxy_addr, cfg.proxy_addr_pick_policy);
  } catch (const selector_error& e) {
    throw config_error("proxy_addr", e.value(), e.reason());
  }
}

void validate_connector_config(const ConnectorConfig& cfg) {
  if (cfg.proxy_addr.empty())
    throw config_error("proxy_addr", "", "required: at least one next proxy address");
  for (std::size_t i = 0; i < cfg.proxy_addr.size(); ++i)
    cfg.proxy_addr[i].validate("proxy_addr[" + std::to_string(i) + "]");
  cfg.connect.validate();
  for (auto& w : cfg.proxy_addr) {
    const auto& a = w.addr;
    if (a.is_domain() && !cfg.resolver)
      throw config_error("resolver", "",
                         "required because proxy_addr '" + a.to_string() + "' is a domain name");
    if (a.is_ip() && a.ip().is_v4() && !cfg.connect.family_allowed(net::AddressFamily::ipv4))
      throw config_error(
          "proxy_addr", a.to_string(),
          "is an IPv4 address but IPv4 is disabled (no_ipv4 or resolve_strategy Ipv6Only)");
    if (a.is_ip() && a.ip().is_v6() && !cfg.connect.family_allowed(net::AddressFamily::ipv6))
      throw config_error(
          "proxy_addr", a.to_string(),
          "is an IPv6 address but IPv6 is disabled (no_ipv6 or resolve_strategy Ipv4Only)");
  }
  cfg.tcp_sock_speed_limit.validate();
  for (auto& [k, v] : cfg.extra_metrics_tags) {
    validate_metric_tag("extra_metrics_tags." + k, k);
    validate_metric_tag("extra_metrics_tags." + k, v);
  }
  if (cfg.max_header_size < 16 || cfg.max_header_size > 16 + 65535)
    throw config_error("max_header_size", std::to_string(cfg.max_header_size),
                       "must be within 16 .. 65551 bytes");
  if (cfg.eject_after_failures > 0 && cfg.eject_duration.count() <= 0)
    throw config_error("eject_duration", std::to_string(cfg.eject_duration.count()) + "ms",
                       "must be positive when ejection is on");
  if (cfg.tls_handshake_timeout.count() <= 0)
    throw config_error("tls_handshake_timeout",
                       std::to_string(cfg.tls_handshake_timeout.count()) + "ms",
                       "must be positive");
  cfg.health_check.validate();
}

}  // namespace divert

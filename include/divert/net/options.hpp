// divert/net/options.hpp — configuration values for opening and connecting
// TCP sockets toward a next proxy: happy eyeballs (RFC 8305) timing, connect
// retry/timeout, resolve strategy, keepalive, misc socket options, family
// switches and bind addresses.
//
// Field names equal g3proxy divert_tcp's configuration keys so that
// string keys map onto them one to one; defaults are g3proxy divert_tcp's. Durations are
// std::chrono::milliseconds. Values are plain aggregates (no invariants are
// enforced on assignment): call ConnectOptions::validate() once at build time;
// it throws divert::config_error naming the key. Clamping that g3 does
// silently (connection_attempt_delay, first_address_family_count) is applied
// by HappyEyeballsConfig::clamped(), which the planner uses.
// Thread-safety: values; safe to share read-only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "divert/asio/ip/address.hpp"

#include "divert/export.hpp"

namespace divert::net {

using std::chrono::milliseconds;

// One IP address family.
enum class AddressFamily : std::uint8_t { ipv4, ipv6 };

constexpr const char* to_string(AddressFamily f) noexcept {
  return f == AddressFamily::ipv4 ? "ipv4" : "ipv6";
}

// Key `happy_eyeballs`.
struct DIVERT_EXPORT HappyEyeballsConfig {
  // After the non-preferred family answers first, wait this long for the
  // preferred family before connecting (RFC 8305 §3). Never delays a query.
  milliseconds resolution_delay{50};
  // How long the other family's answer is still awaited once no connect
  // attempt is running and no address is left to try (g3's divert_tcp,
  // RFC 8305); after that it is given up. While attempts run, it is awaited
  // without a deadline and a late answer joins the remaining addresses.
  milliseconds second_resolution_timeout{2000};
  // Addresses of the first family tried before the families are interleaved
  // (RFC 8305 §4). Values below 1 count as 1.
  std::size_t first_address_family_count{1};
  // Delay between starting two attempts (RFC 8305 §5). Clamped to
  // [min_connection_attempt_delay, max_connection_attempt_delay].
  milliseconds connection_attempt_delay{250};

  static constexpr milliseconds min_connection_attempt_delay{100};
  static constexpr milliseconds max_connection_attempt_delay{2000};

  // A copy with g3proxy divert_tcp's clamping applied.
  HappyEyeballsConfig clamped() const noexcept;
  friend bool operator==(const HappyEyeballsConfig&, const HappyEyeballsConfig&) = default;
};

// Key `tcp_connect`.
struct TcpConnectConfig {
  // Retries after the first try: at most max_retry + 1 tries for an IP
  // literal (connect_with_retry), at most max_retry + 1 addresses per family
  // for happy eyeballs.
  std::size_t max_retry{2};
  // Bound on each single connect attempt; a hit is reported as
  // asio::error::timed_out.
  milliseconds each_timeout{30000};
  friend bool operator==(const TcpConnectConfig&, const TcpConnectConfig&) = default;
};

// Key `resolve_strategy`.
struct ResolveStrategy {
  enum class Query : std::uint8_t { Ipv4First, Ipv6First, Ipv4Only, Ipv6Only };
  enum class Pick : std::uint8_t { Random, Serial };
  Query query{Query::Ipv4First};
  // Order of the addresses within one family: shuffled, or as resolved.
  Pick pick{Pick::Random};
  friend bool operator==(const ResolveStrategy&, const ResolveStrategy&) = default;
};

// Key `tcp_keepalive`. Off by default; when enabled, idle_time is always
// applied (TCP_KEEPIDLE, whole seconds rounded up, at least 1), probe_interval
// and probe_count only when set (else the OS defaults).
struct TcpKeepalive {
  bool enable{false};
  milliseconds idle_time{60000};
  std::optional<milliseconds> probe_interval;
  std::optional<std::uint32_t> probe_count;
  friend bool operator==(const TcpKeepalive&, const TcpKeepalive&) = default;
};

// Key `tcp_misc_opts`. Unset options are left at the OS default. time_to_live
// and type_of_service apply to IPv4 sockets only, hop_limit and traffic_class
// to IPv6 sockets only.
struct TcpMiscOpts {
  bool no_delay{true};                            // TCP_NODELAY
  std::optional<std::uint32_t> max_segment_size;  // TCP_MAXSEG
  std::optional<std::uint32_t> time_to_live;      // IP_TTL, 1..255
  std::optional<std::uint32_t> hop_limit;         // IPV6_UNICAST_HOPS, 1..255
  std::optional<std::uint8_t> type_of_service;    // IP_TOS
  std::optional<std::uint8_t> traffic_class;      // IPV6_TCLASS
  std::optional<std::string> congestion_control;  // TCP_CONGESTION (Linux)
  std::optional<std::uint32_t> netfilter_mark;    // SO_MARK (Linux)
  friend bool operator==(const TcpMiscOpts&, const TcpMiscOpts&) = default;
};

// Everything the net layer needs to open and connect sockets.
struct DIVERT_EXPORT ConnectOptions {
  HappyEyeballsConfig happy_eyeballs;
  TcpConnectConfig tcp_connect;
  ResolveStrategy resolve_strategy;
  TcpKeepalive tcp_keepalive;
  TcpMiscOpts tcp_misc_opts;
  bool no_ipv4{false};
  bool no_ipv6{false};
  // Local address for sockets of that family (port 0, with
  // IP_BIND_ADDRESS_NO_PORT on Linux). Must be of that family; an
  // IPv4-mapped IPv6 address is refused.
  std::optional<asio::ip::address> bind_ipv4;
  std::optional<asio::ip::address> bind_ipv6;
  // Network interface the sockets are bound to (SO_BINDTODEVICE, Linux; g3's
  // bind_interface), e.g. "eth1": connects leave through it whatever the
  // routing table says. Must name an existing interface (checked by
  // validate()). Where SO_BINDTODEVICE does not exist, connects fail with
  // operation_not_supported. Older Linux kernels (before 5.7) require
  // CAP_NET_RAW for it; the connect then fails with operation_not_permitted.
  std::optional<std::string> bind_interface;
  // Delay the handshake's last ACK so that it rides on the first write
  // (Linux: TCP_QUICKACK off before connect(2); HAProxy calls this
  // "option tcp-smart-connect"). One segment fewer per connection, and the
  // peer's accept(2) returns with the first bytes already there. Only for
  // callers that write as soon as the connect completes (the connector sends
  // its PROXY header at once and turns this on): otherwise the peer cannot
  // accept the connection until the kernel's delayed-ACK timer fires (up to
  // 200 ms), which stalls protocols where the server speaks first. Off by
  // default here; ignored where the platform has no TCP_QUICKACK. After the
  // first write, call resume_quick_ack() (socket_options.hpp): Linux leaves
  // delayed-ACK mode when the SYN-ACK arrives, but a write that follows it
  // at once then counts as an interactive reply and turns the mode back on
  // (without this option it does not), and a peer that waits for an ACK
  // before its next small write (Nagle) would wait for the ACK timer.
  bool delay_handshake_ack{false};
  // TCP Fast Open toward the next proxy (Linux: TCP_FASTOPEN_CONNECT). The
  // bytes a caller hands to the connect (connect.hpp's SynData: the
  // connector's PROXY header and the task's initial data) ride in the SYN of
  // the first attempt once the kernel holds a Fast Open cookie for that
  // address (learnt on an earlier connection to a next proxy that grants
  // one), so the next proxy's accept(2) returns with them already there and
  // the connect costs no separate write. Falls back silently to a plain
  // handshake (the caller writes the bytes after it) where the kernel does
  // not allow it (net.ipv4.tcp_fastopen without bit 0, a platform without
  // TCP_FASTOPEN_CONNECT), where no cookie is cached yet, and where the next
  // proxy does not take data in a SYN (the kernel resends it after the
  // handshake). Connect errors and timeouts stay connect errors. Only the
  // first attempt of a connect carries the bytes (later tries and happy
  // eyeballs' other attempts send a plain SYN); a first attempt abandoned
  // after its SYN reached the next proxy (it timed out or lost the race) may
  // have delivered them there once. Off by default: the chain benchmark
  // measured no gain (docs/performance.md).
  bool tcp_fast_open{false};

  // Throws divert::config_error(key, value, reason) on: both no_ipv4 and
  // no_ipv6; no_ipv4 with query Ipv4Only; no_ipv6 with query Ipv6Only; a bind
  // address of the wrong family or IPv4-mapped; a bind_interface that is empty,
  // longer than 15 bytes or names no interface; each_timeout <= 0; a negative
  // duration; time_to_live / hop_limit outside 1..255; an empty
  // congestion_control; probe_count 0.
  void validate() const;

  // Whether sockets of `f` may be used (no_ipvX and the query strategy).
  bool family_allowed(AddressFamily f) const noexcept;
  // Field by field (the connector restarts its health checks when they change).
  friend bool operator==(const ConnectOptions&, const ConnectOptions&) = default;
  // The family tried first: IPv6 for Ipv6First/Ipv6Only, else IPv4; when that
  // one is not allowed, the other.
  AddressFamily preferred_family() const noexcept;
};

}  // namespace divert::net

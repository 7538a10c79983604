// divert/net/destination_policy.hpp — which upstream addresses a proxy may
// connect to: allow/deny CIDR lists over safe defaults, plus the loop guard.
//
// Used before connecting on behalf of a client: by a forward proxy before it
// diverts a request (the target) and by a next proxy before it connects to the
// upstream named by TLV 0xE0. Every resolved address of a name is checked; a
// name is denied when ANY of its addresses is denied (an attacker-controlled
// name can list a public address first and 127.0.0.1 second).
//
// Verdict for one address (IPv4-mapped IPv6 ::ffff:a.b.c.d is matched as the
// IPv4 address a.b.c.d everywhere):
//   1. Guarded endpoints (guard()): the host's own listening addresses and its
//      next proxies — connecting there would loop back into a proxy. Always
//      denied; no allow rule lifts them. A guard names an address and a port
//      (port 0: every port of that address).
//   2. The host's rules (allow()/deny()): the most specific matching CIDR wins
//      (longest prefix); on a tie deny wins. So `deny 10.0.0.0/8` plus
//      `allow 10.1.2.3/32` allows just that host, and `allow 127.0.0.0/8`
//      lifts the loopback default.
//   3. Defaults, when no rule matches (see default_denied_networks()):
//      loopback 127.0.0.0/8 and ::1, link-local 169.254.0.0/16 and fe80::/10,
//      unspecified 0.0.0.0/32 and ::/128, multicast 224.0.0.0/4 and ff00::/8
//      are denied; everything else is allowed.
// IPv4 addresses are matched only by IPv4 entries (a ::ffff:a.b.c.d/N entry
// with N >= 96 is an IPv4 entry, see Cidr::parse); IPv6 entries never match
// IPv4 addresses (`deny ::/0` does not deny IPv4).
//
// Names: check_destination() resolves a domain with a net::Resolver (both
// families, under a timeout) and checks every answer. "localhost" and names
// under ".localhost" (RFC 6761) are loopback without asking a resolver. What a
// host does when a name does not resolve locally is its choice (the outcome
// says so); note that the next hop may resolve the same name differently (DNS
// rebinding, split horizon), so its own policy is still needed there.
//
// Thread-safety: Cidr and DestinationPolicy are values; configure a policy
// before sharing it, then its const members are safe to call concurrently.
// check_destination() is safe to call concurrently with the same policy.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "divert/asio/awaitable.hpp"
#include "divert/asio/ip/address.hpp"
#include "divert/export.hpp"
#include "divert/net/resolver.hpp"
#include "divert/upstream.hpp"

namespace divert::net {

// An IPv4 or IPv6 network.
struct DIVERT_EXPORT Cidr {
  asio::ip::address network;  // host bits cleared; IPv4 for IPv4(-mapped) entries
  unsigned prefix = 0;        // 0-32 (IPv4) or 0-128 (IPv6)

  // "ADDR/BITS" or a bare "ADDR" (/32 or /128). An IPv4-mapped IPv6 network
  // with BITS >= 96 ("::ffff:127.0.0.0/104") is the IPv4 network of BITS - 96
  // ("127.0.0.0/8"). Host bits after the prefix are cleared ("10.1.2.3/8" is
  // 10.0.0.0/8). Zone indexes ("fe80::1%eth0") are refused.
  // Throws config_error(key, text, reason) quoting `text`, e.g.
  // "--allow: 'nope/8' is not valid: 'nope' is not an IP address".
  static Cidr parse(std::string_view text, std::string_view key = "cidr");
  // True when `address` (IPv4-mapped IPv6 folded to IPv4) is in the network.
  bool contains(const asio::ip::address& address) const noexcept;
  // "127.0.0.0/8", "fe80::/10".
  std::string to_string() const;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// ::ffff:a.b.c.d -> a.b.c.d; any other address unchanged.
DIVERT_EXPORT asio::ip::address unmap_v4(const asio::ip::address& address) noexcept;

// The default deny list (rule 3 above), in the order listed there.
DIVERT_EXPORT const std::vector<Cidr>& default_denied_networks();

// Why an address is allowed or denied.
enum class DestinationVerdict : std::uint8_t {
  allowed_by_default,  // no rule, no default deny
  allowed_by_rule,     // an allow() rule was the most specific match
  denied_by_rule,      // a deny() rule was the most specific match
  denied_by_default,   // loopback, link-local, unspecified or multicast, no rule
  denied_loop_guard,   // a guarded endpoint (own listen address, next proxy)
};
constexpr bool is_allowed(DestinationVerdict v) noexcept {
  return v == DestinationVerdict::allowed_by_default || v == DestinationVerdict::allowed_by_rule;
}
// "allowed by default", "denied by default (loopback, link-local, unspecified
// or multicast)", "denied: loop guard (own listen address or next proxy)", ...
DIVERT_EXPORT std::string_view to_string(DestinationVerdict v) noexcept;

class DIVERT_EXPORT DestinationPolicy {
 public:
  // The defaults only (rule 3), no rules, no guards.
  DestinationPolicy() = default;

  DestinationPolicy& allow(Cidr network);
  DestinationPolicy& deny(Cidr network);
  // Loop guard: `address` on `port` (0: any port) is always denied, and so
  // are the unspecified addresses 0.0.0.0 and :: on `port` (connecting to
  // them reaches this host). An unspecified `address` (a wildcard listener)
  // guards `port` on every loopback address too; add the host's interface
  // addresses (interface_addresses()) for the rest.
  DestinationPolicy& guard(const asio::ip::address& address, std::uint16_t port);

  // The verdict for connecting to `address`:`port`.
  DestinationVerdict check(const asio::ip::address& address, std::uint16_t port) const noexcept;

  // The first denied address of `addresses` and its verdict, or nullopt when
  // every one is allowed (an empty list is allowed: nothing to connect to).
  struct Denial {
    asio::ip::address address;
    DestinationVerdict verdict;
  };
  std::optional<Denial> first_denied(std::span<const asio::ip::address> addresses,
                                     std::uint16_t port) const;

 private:
  struct Rule {
    Cidr network;
    bool allow;
  };
  struct Guard {
    Cidr network;
    std::uint16_t port;  // 0: any
  };
  std::vector<Rule> rules_;
  std::vector<Guard> guards_;
};

// The addresses configured on this host's interfaces (getifaddrs), IPv4-mapped
// folded; empty on failure. For guarding a wildcard listener.
DIVERT_EXPORT std::vector<asio::ip::address> interface_addresses();

// What check_destination() found.
struct DestinationCheck {
  enum class Outcome : std::uint8_t {
    allowed,     // every address allowed (addresses holds them)
    denied,      // denial says which address and why
    unresolved,  // the name did not resolve here (error: why; timed_out on timeout)
  };
  Outcome outcome = Outcome::unresolved;
  std::vector<asio::ip::address> addresses;  // the literal, or every resolved address
  std::optional<DestinationPolicy::Denial> denial;
  error_code error;  // unresolved: the resolver's error, std::errc::timed_out,
                     // or asio::error::host_not_found for no address at all
};

// Checks `target` against `policy`: an IP literal directly; "localhost" and
// "*.localhost" as 127.0.0.1 and ::1; any other name by resolving it (A and
// AAAA at once through `resolver` on the calling coroutine's executor, which
// must not run its handlers concurrently: an io_context with one thread, or
// a strand) and checking every address, denied if any is. Answers that arrive
// after `timeout` are ignored. A family that fails while the other answers
// counts as having no address; both failing (or no address at all, or the
// timeout) is Outcome::unresolved. Never throws for network input. `policy`
// must outlive the returned awaitable (`target` is copied).
DIVERT_EXPORT asio::awaitable<DestinationCheck> check_destination(
    const DestinationPolicy& policy, UpstreamAddr target, std::shared_ptr<Resolver> resolver,
    std::chrono::milliseconds timeout);

}  // namespace divert::net

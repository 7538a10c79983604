// divert/upstream.hpp — upstream and next-proxy addresses: a host (IP address or
// domain name) plus a TCP port, parsed from g3proxy divert_tcp's text forms and written back
// in the one canonical form that goes on the wire (TLV 0xE0) and names ketama nodes.
//
// Accepted text (UpstreamAddr::parse):
//   ip[:port]          "10.0.0.7", "10.0.0.7:3128"
//   [ipv6][:port]      "[2001:db8::1]:443", "[::1]"
//   bare ipv6          "2001:db8::1" (never has a port: "::1:80" is the address ::1:80)
//   domain[:port]      "np1.internal:3128", "Example.COM." (one trailing dot dropped)
// When the text has no port, `default_port` is used (3128 for proxy addresses,
// kDefaultProxyPort); a default of 0 means "a port is required".
//
// Normalisation: IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded to IPv4; IPv6 is
// written in RFC 5952 form (lower case, zeros compressed); domains are lower-cased.
// Non-ASCII domains are converted to A-labels ("bücher.example" →
// "xn--bcher-kva.example") by UTS #46 non-transitional processing (IDNA2008;
// "faß.de" → "xn--fa-hia.de") with libidn2, then checked by the ASCII rules
// below; host(), to_string() and so TLV 0xE0 carry that ASCII form. When divert
// is built without libidn2 (CMake DIVERT_WITH_IDN=OFF, or libidn2 not found)
// they are refused, saying so; idn_supported() tells which.
//
// Refused, each with config_error(key, input, reason): empty text or host; the
// unspecified addresses 0.0.0.0 and ::; port 0, a missing port when there is no
// default, a port above 65535 or not decimal; IPv6 zone indexes ("fe80::1%eth0");
// brackets around anything but IPv6; domain labels that are empty, longer than 63
// characters, or start/end with '-'; names longer than 253 characters; any
// character outside [A-Za-z0-9-_.]; names whose last label is numeric ("1.2.3",
// "0x7f", "010.1.1.1"), which resolvers would read as an IPv4 address; a URL
// ("http://np1:3128": write host:port); non-ASCII names that are not valid
// UTF-8 or that IDNA2008 refuses ("bad internationalised domain name: ...").
//
// Thread-safety: values; const members are safe to call concurrently.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "divert/asio/ip/address.hpp"

#include "divert/export.hpp"

namespace divert {

// Default port of a next proxy when its address has none (g3proxy divert_tcp's proxy_addr).
inline constexpr std::uint16_t kDefaultProxyPort = 3128;

class UpstreamAddr;

// Canonical text of an IP address: IPv4 dotted quad; IPv4-mapped IPv6 folded to
// IPv4; other IPv6 in RFC 5952 form (lower-case hex, no leading zeros, the longest
// run of two or more zero groups as "::", first run if tied, no dotted tail), no
// brackets, no zone index.
DIVERT_EXPORT std::string format_ip_address(const asio::ip::address& ip);

// Result of the non-throwing UpstreamAddr::try_parse: either an address, or the
// reason it was refused (the reason does not repeat the input; config_error adds it).
struct UpstreamAddrParseResult;

class DIVERT_EXPORT UpstreamAddr {
 public:
  // Parses `text` (forms above). Throws config_error with key "upstream"
  // (or `key`, the configuration key the text came from) quoting `text`.
  static UpstreamAddr parse(std::string_view text, std::uint16_t default_port = 0);
  static UpstreamAddr parse(std::string_view text, std::uint16_t default_port,
                            std::string_view key);

  // Same rules, no exception for bad input (may still throw std::bad_alloc).
  static UpstreamAddrParseResult try_parse(std::string_view text, std::uint16_t default_port = 0);

  // From an IP address: IPv4-mapped IPv6 is folded to IPv4. Throws config_error
  // (key "upstream") for an unspecified address, a zone index or port 0.
  UpstreamAddr(const asio::ip::address& ip, std::uint16_t port);

  // From a domain name: validated and lower-cased like parse(). Throws config_error
  // (key "upstream"). A name that is an IP literal is accepted as that IP.
  static UpstreamAddr from_domain(std::string_view name, std::uint16_t port);
  // Same rules, no exception for bad input (may still throw std::bad_alloc).
  // https_forward canonicalises its TLS verify name (TLV 0xE1) with it, so that
  // 0xE0 and 0xE1 name a host the same way.
  static UpstreamAddrParseResult try_from_domain(std::string_view name, std::uint16_t port);

  // Whether this build converts non-ASCII domain names (libidn2); without it
  // they are refused.
  static bool idn_supported() noexcept;

  bool is_ip() const noexcept { return is_ip_; }
  bool is_domain() const noexcept { return !is_ip_; }
  // The IP address; an unspecified default address when is_domain().
  const asio::ip::address& ip() const noexcept { return ip_; }
  // Canonical host text: IPv4 dotted quad, IPv6 WITHOUT brackets (RFC 5952),
  // or the lower-case domain. This is the TLS verify name (TLV 0xE1) form.
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }

  // Canonical "host:port": IPv6 in brackets, port always written, e.g.
  // "10.0.0.7:3128", "[2001:db8::1]:443", "np1.internal:3128". This is the value
  // of TLV 0xE0 and the ketama node name. parse(to_string()) == *this.
  std::string to_string() const;

  // Host as it appears inside to_string(): IPv6 bracketed, others as host().
  std::string host_for_authority() const;

  // Equality: same canonical host and port. Ordering: by host text, then port
  // (total, stable across runs; not numeric address order).
  friend bool operator==(const UpstreamAddr& a, const UpstreamAddr& b) noexcept {
    return a.port_ == b.port_ && a.host_ == b.host_;
  }
  friend std::strong_ordering operator<=>(const UpstreamAddr& a, const UpstreamAddr& b) noexcept {
    if (auto c = a.host_.compare(b.host_); c != 0) {
      return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
    }
    return a.port_ <=> b.port_;
  }

  std::size_t hash() const noexcept;

 private:
  UpstreamAddr() = default;
  // Shared by parse/try_parse/from_domain: fills `out` or returns the reason.
  static std::optional<std::string> parse_into(std::string_view text, std::uint16_t default_port,
                                               UpstreamAddr& out);
  static std::optional<std::string> set_ip(asio::ip::address ip, UpstreamAddr& out);
  static std::optional<std::string> set_domain(std::string_view name, UpstreamAddr& out);
  // An IP literal (set_ip) or else a domain (set_domain): from_domain's host rules.
  static std::optional<std::string> set_host(std::string_view name, UpstreamAddr& out);

  std::string host_;
  asio::ip::address ip_;
  std::uint16_t port_ = 0;
  bool is_ip_ = false;
};

struct UpstreamAddrParseResult {
  std::optional<UpstreamAddr> addr;  // set on success
  std::string reason;                // set on failure, e.g. "port 0 is not a usable port"

  explicit operator bool() const noexcept { return addr.has_value(); }
};

// A next-proxy address with its selection weight (see divert/select/selector.hpp).
// Build it from an address, or from text parsed with the proxy default port 3128:
//   std::vector<WeightedUpstreamAddr> v{{"np1.internal:3128", 2.0}, {"10.0.0.7"}};
// The weight must be finite and > 0 (config_error, key "proxy_addr").
struct DIVERT_EXPORT WeightedUpstreamAddr {
  UpstreamAddr addr;
  double weight = 1.0;

  WeightedUpstreamAddr(UpstreamAddr a, double w = 1.0);
  // Parses `text` with UpstreamAddr::parse(text, kDefaultProxyPort, "proxy_addr").
  WeightedUpstreamAddr(std::string_view text, double w = 1.0);
  WeightedUpstreamAddr(const char* text, double w = 1.0)
      : WeightedUpstreamAddr(std::string_view(text), w) {}

  // Throws config_error(key, weight as text, reason) unless the weight is finite
  // and > 0. Called by the constructors (with key "proxy_addr").
  void validate(std::string_view key = "proxy_addr") const;

  friend bool operator==(const WeightedUpstreamAddr&, const WeightedUpstreamAddr&) = default;
};

}  // namespace divert

template <>
struct std::hash<divert::UpstreamAddr> {
  std::size_t operator()(const divert::UpstreamAddr& a) const noexcept { return a.hash(); }
};

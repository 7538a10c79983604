// divert/host_port.hpp — the one "host:port" splitter. Every divert parser of an
// address text starts here: UpstreamAddr::parse (divert/upstream.hpp), the example
// programs' HTTP authority and listen-address parsers (examples/common/), and
// ppv2::parse_upstream (TLV 0xE0) can call it too. It depends on nothing (no Asio,
// no allocation), so any layer may use it, the ppv2 codec included.
//
// split_host_port() only splits and reads the port: what a host may be (an IP
// literal, a domain name, a zone index) is each caller's rule.
//
// Forms:
//   host                 "example.com", "10.0.0.7"            port: none
//   host:port            "example.com:443", "10.0.0.7:3128"
//   [host]               "[2001:db8::1]"                      bracketed, port: none
//   [host]:port          "[2001:db8::1]:443", "[fe80::1%eth0]:80" (zone kept in host)
//   bare IPv6            "2001:db8::1", "::1:80"              two or more ':' and no
//                        brackets: the whole text is the host and there is no port
//                        (bare_ipv6(); "::1:80" is the address ::1:80, never port 80)
// Port: 1 to 5 ASCII decimal digits after the last ':' (leading zeros allowed:
// "080" is 80; no sign, no space), value 0..65535. Port 0 is returned as 0: whether
// it is usable is the caller's rule (an upstream: no; a listen address: any port).
//
// Errors (HostPortError, in the order they are checked): empty text; "[" without
// "]"; anything but ":port" after "]"; an empty host (":80", "[]:80"); an empty
// port ("host:", "[::1]:"); a port with a character that is not a digit; a port
// above 65535 or longer than 5 digits.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "divert/export.hpp"

namespace divert {

enum class HostPortError : std::uint8_t {
  none = 0,
  empty,               // ""
  missing_bracket,     // "[::1"
  junk_after_bracket,  // "[::1]80", "[::1]x:80"
  empty_host,          // ":80", "[]:80"
  empty_port,          // "host:", "[::1]:"
  bad_port,            // "host:8o", "host:-1", "host:+1"
  port_too_large,      // "host:65536", "host:123456"
};

// The parts of a host:port text; views into the text given to split_host_port().
struct HostPort {
  std::string_view host;              // without brackets; never empty when split succeeded
  std::optional<std::uint16_t> port;  // no value when the text has no port
  std::string_view port_text;         // the digits as written ("080"), empty without a port
  bool bracketed = false;             // the host was written in brackets

  // An unbracketed host holding ':' (only an IPv6 literal can): "2001:db8::1".
  bool bare_ipv6() const noexcept { return !bracketed && host.find(':') != std::string_view::npos; }
};

struct HostPortSplit {
  HostPort parts;  // filled as far as the text was read (host, port_text) also on error
  HostPortError error = HostPortError::none;

  explicit operator bool() const noexcept { return error == HostPortError::none; }
};

// Splits `text` (forms above). Never throws.
DIVERT_EXPORT HostPortSplit split_host_port(std::string_view text) noexcept;

// What went wrong, for messages: "empty address", "missing ']' after IPv6 address",
// "unexpected characters after ']'", "empty host", "empty port after ':'",
// "port is not a decimal number", "port is above 65535" ("" for none).
DIVERT_EXPORT std::string_view to_string(HostPortError error) noexcept;

}  // namespace divert

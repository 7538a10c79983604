// The host:port splitter (rules in divert/host_port.hpp).
#include "divert/host_port.hpp"

namespace divert {

namespace {

constexpr std::size_t kMaxPortDigits = 5;

HostPortError read_port(std::string_view text, HostPort& out) {
  out.port_text = text;
  if (text.empty()) return HostPortError::empty_port;
  for (char c : text) {
    if (c < '0' || c > '9') return HostPortError::bad_port;
  }
  if (text.size() > kMaxPortDigits) return HostPortError::port_too_large;
  unsigned value = 0;
  for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value > 65535) return HostPortError::port_too_large;
  out.port = static_cast<std::uint16_t>(value);
  return HostPortError::none;
}

}  // namespace

HostPortSplit split_host_port(std::string_view text) noexcept {
  HostPortSplit r;
  HostPort& p = r.parts;
  if (text.empty()) {
    r.error = HostPortError::empty;
    return r;
  }
  std::optional<std::string_view> port_text;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      r.error = HostPortError::missing_bracket;
      return r;
    }
    p.host = text.substr(1, close - 1);
    p.bracketed = true;
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        r.error = HostPortError::junk_after_bracket;
        return r;
      }
      port_text = rest.substr(1);
    }
  } else {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      p.host = text;  // no port, or a bare IPv6 address (never a port)
    } else {
      p.host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
  }
  if (p.host.empty()) {
    r.error = HostPortError::empty_host;
    return r;
  }
  if (port_text) r.error = read_port(*port_text, p);
  return r;
}

std::string_view to_string(HostPortError error) noexcept {
  switch (error) {
    case HostPortError::none:
      return "";
    case HostPortError::empty:
      return "empty address";
    case HostPortError::missing_bracket:
      return "missing ']' after IPv6 address";
    case HostPortError::junk_after_bracket:
      return "unexpected characters after ']'";
    case HostPortError::empty_host:
      return "empty host";
    case HostPortError::empty_port:
      return "empty port after ':'";
    case HostPortError::bad_port:
      return "port is not a decimal number";
    case HostPortError::port_too_large:
      return "port is above 65535";
  }
  return "bad host:port";
}

}  // namespace divert

// UpstreamAddr parsing and formatting (rules in divert/upstream.hpp).
#include "divert/upstream.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "divert/error.hpp"
#include "divert/host_port.hpp"

#if defined(DIVERT_WITH_IDN)
#include <idn2.h>
#endif

namespace divert {

namespace {

constexpr std::size_t kMaxDomainLength = 253;
constexpr std::size_t kMaxLabelLength = 63;

bool is_ascii_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_hex_digit(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char to_lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// A character as it should appear in an error message.
std::string describe_char(unsigned char c) {
  if (c >= 0x21 && c < 0x7f) return fmt::format("'{}'", static_cast<char>(c));
  if (c == ' ') return "' ' (space)";
  return fmt::format("byte 0x{:02x}", c);
}

// ---- IDNA --------------------------------------------------------------------
// A non-ASCII name is converted to its ASCII form (A-labels, "xn--...") by
// UTS #46 processing, non-transitional (IDNA2008 with the UTS #46 mapping:
// upper case and full-width forms are mapped, "faß.de" stays "xn--fa-hia.de"
// where transitional processing would give "fass.de"), with libidn2. No STD3
// rules there: the result is checked by the ASCII rules below like any name.
// Returns the ASCII name, or nullopt with `reason` set.
std::optional<std::string> idna_to_ascii(std::string_view name, std::string& reason) {
#if defined(DIVERT_WITH_IDN)
  if (name.find('\0') != std::string_view::npos) {  // libidn2 takes a C string
    reason = "bad character " + describe_char(0) + " in host";
    return std::nullopt;
  }
  const std::string input(name);
  char* output = nullptr;
  const int rc = idn2_to_ascii_8z(input.c_str(), &output, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) {
    reason = fmt::format("bad internationalised domain name: {}", idn2_strerror(rc));
    return std::nullopt;
  }
  std::string ascii(output);
  idn2_free(output);
  return ascii;
#else
  (void)name;
  reason = "non-ASCII domain name, but divert was built without IDN support (libidn2)";
  return std::nullopt;
#endif
}
// -----------------------------------------------------------------------------

// True when the last label reads as a number (decimal, or 0x-hex), which
// inet_aton-style resolvers would take as (part of) an IPv4 address.
bool last_label_is_numeric(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (last.empty()) return false;
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
    for (unsigned char c : last.substr(2)) {
      if (!is_hex_digit(c)) return false;
    }
    return true;
  }
  for (unsigned char c : last) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// RFC 5952 text of an IPv6 address: lower-case hex, no leading zeros, the longest
// run (first if tied) of two or more zero groups as "::", never dotted quads
// (glibc's inet_ntop writes ::1:80 as "::0.1.0.128"; IPv4-mapped is folded earlier).
std::string format_ipv6(const asio::ip::address_v6& a) {
  auto b = a.to_bytes();
  std::uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<std::uint16_t>((b[2 * i] << 8) | b[2 * i + 1]);
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best = -1;
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    out += fmt::format("{:x}", g[i]);
  }
  return out;
}

}  // namespace

std::string format_ip_address(const asio::ip::address& ip) {
  if (ip.is_v4()) return ip.to_string();
  auto v6 = ip.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  return format_ipv6(v6);
}

std::optional<std::string> UpstreamAddr::set_ip(asio::ip::address ip, UpstreamAddr& out) {
  if (ip.is_v6()) {
    auto v6 = ip.to_v6();
    if (v6.scope_id() != 0) return std::string("IPv6 zone indexes are not supported");
    if (v6.is_v4_mapped()) ip = asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  }
  if (ip.is_unspecified()) {
    return fmt::format("the unspecified address {} cannot be an upstream",
                       ip.is_v4() ? "0.0.0.0" : "::");
  }
  out.ip_ = ip;
  out.host_ = format_ip_address(ip);
  out.is_ip_ = true;
  return std::nullopt;
}

std::optional<std::string> UpstreamAddr::set_domain(std::string_view name, UpstreamAddr& out) {
  if (name.empty()) return std::string("empty host");
  std::string ascii;
  bool non_ascii = false;
  for (unsigned char c : name) {
    if (c >= 0x80) non_ascii = true;
  }
  if (non_ascii) {
    std::string reason;
    auto converted = idna_to_ascii(name, reason);
    if (!converted) return reason;
    ascii = std::move(*converted);
    name = ascii;
  }
  if (name.back() == '.') name.remove_suffix(1);  // one trailing dot: the FQDN form
  if (name.empty()) return std::string("empty host");
  for (unsigned char c : name) {
    if (!(is_ascii_alnum(c) || c == '-' || c == '_' || c == '.')) {
      return "bad character " + describe_char(c) + " in host";
    }
  }
  if (name.size() > kMaxDomainLength) {
    return fmt::format("domain name longer than {} characters", kMaxDomainLength);
  }
  std::size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    auto label =
        name.substr(start, dot == std::string_view::npos ? name.size() - start : dot - start);
    if (label.empty()) return std::string("empty label in domain name");
    if (label.size() > kMaxLabelLength) {
      return fmt::format("domain label longer than {} characters", kMaxLabelLength);
    }
    if (label.front() == '-' || label.back() == '-') {
      return std::string("domain label starts or ends with '-'");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (last_label_is_numeric(name)) {
    return std::string("looks like an IPv4 address but is not a valid dotted quad");
  }
  out.host_.resize(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) out.host_[i] = to_lower_ascii(name[i]);
  out.ip_ = asio::ip::address();
  out.is_ip_ = false;
  return std::nullopt;
}

std::optional<std::string> UpstreamAddr::parse_into(std::string_view text,
                                                    std::uint16_t default_port, UpstreamAddr& out) {
  if (text.empty()) return std::string("empty address");
  if (text.find("://") != std::string_view::npos) {
    return std::string("a URL is not an address (write host:port)");
  }
  // make_address_v4/v6 below read C strings: "10.0.0.1\0junk" would be 10.0.0.1.
  if (text.find('\0') != std::string_view::npos) return "bad character byte 0x00 in address";

  const auto split = split_host_port(text);
  const HostPort& parts = split.parts;
  if (split.error == HostPortError::bad_port) {
    const auto bad = std::find_if(parts.port_text.begin(), parts.port_text.end(),
                                  [](unsigned char c) { return !is_digit(c); });
    return fmt::format("{} ({})", divert::to_string(split.error), describe_char(*bad));
  }
  if (!split) return std::string(divert::to_string(split.error));

  error_code ec;
  if (parts.bracketed || parts.bare_ipv6()) {
    const std::string host(parts.host);
    if (host.find('%') != std::string::npos) {
      return std::string("IPv6 zone indexes are not supported");
    }
    auto v6 = asio::ip::make_address_v6(host, ec);
    if (ec && parts.bracketed) {
      asio::ip::make_address_v4(host, ec);
      if (!ec) return std::string("brackets are only for IPv6 addresses");
      return std::string("bad IPv6 address inside brackets");
    }
    if (ec) {
      return std::string("bad IPv6 address (write an IPv6 address with a port as [address]:port)");
    }
    if (auto r = set_ip(v6, out)) return r;
  } else {
    auto v4 = asio::ip::make_address_v4(std::string(parts.host), ec);
    if (!ec) {
      if (auto r = set_ip(v4, out)) return r;
    } else if (auto r = set_domain(parts.host, out)) {
      return r;
    }
  }
  if (!parts.port) {
    if (default_port == 0) return std::string("no port given and no default port applies");
    out.port_ = default_port;
    return std::nullopt;
  }
  if (*parts.port == 0) return std::string("port 0 is not a usable port");
  out.port_ = *parts.port;
  return std::nullopt;
}

bool UpstreamAddr::idn_supported() noexcept {
#if defined(DIVERT_WITH_IDN)
  return true;
#else
  return false;
#endif
}

UpstreamAddr UpstreamAddr::parse(std::string_view text, std::uint16_t default_port) {
  return parse(text, default_port, "upstream");
}

UpstreamAddr UpstreamAddr::parse(std::string_view text, std::uint16_t default_port,
                                 std::string_view key) {
  UpstreamAddr out;
  if (auto reason = parse_into(text, default_port, out)) {
    throw config_error(std::string(key), std::string(text), *reason);
  }
  return out;
}

UpstreamAddrParseResult UpstreamAddr::try_parse(std::string_view text, std::uint16_t default_port) {
  UpstreamAddrParseResult result;
  UpstreamAddr out;
  if (auto reason = parse_into(text, default_port, out)) {
    result.reason = std::move(*reason);
  } else {
    result.addr = std::move(out);
  }
  return result;
}

UpstreamAddr::UpstreamAddr(const asio::ip::address& ip, std::uint16_t port) {
  auto reason = set_ip(ip, *this);
  if (!reason && port == 0) reason = "port 0 is not a usable port";
  if (reason) {
    std::string text = ip.is_v6() ? fmt::format("[{}]:{}", format_ip_address(ip), port)
                                  : fmt::format("{}:{}", format_ip_address(ip), port);
    throw config_error("upstream", text, *reason);
  }
  port_ = port;
}

std::optional<std::string> UpstreamAddr::set_host(std::string_view name, UpstreamAddr& out) {
  // Before the IP test: make_address() reads a C string and would stop at a NUL.
  if (name.find('\0') != std::string_view::npos) return "bad character byte 0x00 in host";
  error_code ec;
  std::string s(name);
  auto ip = asio::ip::make_address(s, ec);
  if (ec) return set_domain(name, out);
  if (s.find('%') != std::string::npos) return std::string("IPv6 zone indexes are not supported");
  return set_ip(ip, out);
}

UpstreamAddr UpstreamAddr::from_domain(std::string_view name, std::uint16_t port) {
  auto r = try_from_domain(name, port);
  if (!r) throw config_error("upstream", std::string(name), r.reason);
  return std::move(*r.addr);
}

UpstreamAddrParseResult UpstreamAddr::try_from_domain(std::string_view name, std::uint16_t port) {
  UpstreamAddrParseResult result;
  UpstreamAddr out;
  auto reason = set_host(name, out);
  if (!reason && port == 0) reason = "port 0 is not a usable port";
  if (reason) {
    result.reason = std::move(*reason);
  } else {
    out.port_ = port;
    result.addr = std::move(out);
  }
  return result;
}

std::string UpstreamAddr::host_for_authority() const {
  if (is_ip_ && ip_.is_v6()) return "[" + host_ + "]";
  return host_;
}

std::string UpstreamAddr::to_string() const {
  // Built by hand: called once per diverted connection (0xE0), where a
  // format call costs more than the rest of the header.
  const bool bracket = is_ip_ && ip_.is_v6();
  char port[8];
  const auto end = std::to_chars(port, port + sizeof port, port_).ptr;
  std::string out;
  out.reserve(host_.size() + 2 + 1 + static_cast<std::size_t>(end - port));
  if (bracket) out += '[';
  out += host_;
  if (bracket) out += ']';
  out += ':';
  out.append(port, end);
  return out;
}

std::size_t UpstreamAddr::hash() const noexcept {
  std::size_t h = std::hash<std::string>{}(host_);
  return h ^ (static_cast<std::size_t>(port_) * 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2));
}

WeightedUpstreamAddr::WeightedUpstreamAddr(UpstreamAddr a, double w)
    : addr(std::move(a)), weight(w) {
  validate();
}

WeightedUpstreamAddr::WeightedUpstreamAddr(std::string_view text, double w)
    : addr(UpstreamAddr::parse(text, kDefaultProxyPort, "proxy_addr")), weight(w) {
  validate();
}

void WeightedUpstreamAddr::validate(std::string_view key) const {
  if (!std::isfinite(weight) || !(weight > 0)) {
    throw config_error(std::string(key), fmt::format("{}", weight),
                       fmt::format("weight of {} must be a finite number > 0", addr.to_string()));
  }
}

}  // namespace divert

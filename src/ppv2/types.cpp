#include "divert/ppv2/types.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace divert::ppv2 {

Endpoint Endpoint::v4(std::array<std::uint8_t, 4> a, std::uint16_t port) noexcept {
  Endpoint e;
  e.kind = Kind::ipv4;
  std::memcpy(e.ip.data(), a.data(), 4);
  e.port = port;
  return e;
}

Endpoint Endpoint::v6(const std::array<std::uint8_t, 16>& a, std::uint16_t port) noexcept {
  Endpoint e;
  e.kind = Kind::ipv6;
  e.ip = a;
  e.port = port;
  return e;
}

std::optional<Endpoint> Endpoint::ip_literal(std::string_view ip, std::uint16_t port) {
  char buf[64];
  if (ip.empty() || ip.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  Endpoint e;
  e.port = port;
  if (::inet_pton(AF_INET, buf, e.ip.data()) == 1) {
    e.kind = Kind::ipv4;
    return e;
  }
  if (::inet_pton(AF_INET6, buf, e.ip.data()) == 1) {
    e.kind = Kind::ipv6;
    return e;
  }
  return std::nullopt;
}

std::string Endpoint::ip_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (kind) {
    case Kind::none:
      return {};
    case Kind::unix_path:
      return std::string(path);
    case Kind::ipv4:
      ::inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
      return buf;
    case Kind::ipv6:
      ::inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
      return buf;
  }
  return {};
}

bool operator==(const Endpoint& a, const Endpoint& b) noexcept {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Endpoint::Kind::none:
      return true;
    case Endpoint::Kind::unix_path:
      return a.path == b.path;
    case Endpoint::Kind::ipv4:
      return a.port == b.port && std::memcmp(a.ip.data(), b.ip.data(), 4) == 0;
    case Endpoint::Kind::ipv6:
      return a.port == b.port && a.ip == b.ip;
  }
  return false;
}

void Uuid::to_chars(char (&out)[36]) const noexcept {
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t o = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[bytes[i] >> 4];
    out[o++] = hex[bytes[i] & 0xF];
  }
}

std::string Uuid::to_string() const {
  char buf[36];
  to_chars(buf);
  return std::string(buf, 36);
}

std::optional<Uuid> Uuid::parse(std::string_view t) noexcept {
  if (t.size() != 36) return std::nullopt;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Uuid u;
  std::size_t i = 0;
  for (std::size_t b = 0; b < 16; ++b) {
    if (b == 4 || b == 6 || b == 8 || b == 10) {
      if (t[i++] != '-') return std::nullopt;
    }
    int hi = nib(t[i++]);
    int lo = nib(t[i++]);
    if (hi < 0 || lo < 0) return std::nullopt;
    u.bytes[b] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return u;
}

}  // namespace divert::ppv2

// divert/ppv2/types.hpp — value types of the PROXY protocol v2 model shared by the
// encoder and the decoder: commands, families, endpoints, TLV views, UUIDs.
//
// All types are small values with no heap allocation; views (std::string_view,
// std::span) never own their bytes. Thread-safety: plain values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "divert/export.hpp"

namespace divert::ppv2 {

// The 12-byte v2 signature. Byte 5 is NUL: never treat it as a C string.
inline constexpr std::array<std::uint8_t, 12> kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
inline constexpr std::size_t kFixedHeaderSize = 16;    // signature + ver_cmd + fam + len
inline constexpr std::size_t kDefaultMaxSize = 4096;   // common receiver limit (nginx, haproxy)
inline constexpr std::size_t kInlineHeaderSize = 536;  // HeaderBuffer stays off the heap up to this
inline constexpr std::size_t kUnixPathSize = 108;
inline constexpr std::size_t kV1MaxSize = 107;  // longest v1 line including CRLF

enum class Command : std::uint8_t { local = 0x0, proxy = 0x1 };

// Address family (high nibble of byte 14).
enum class AddressFamily : std::uint8_t {
  unspec = 0x0,
  inet = 0x1,
  inet6 = 0x2,
  unix_socket = 0x3
};
// Transport (low nibble of byte 14).
enum class Transport : std::uint8_t { unspec = 0x0, stream = 0x1, dgram = 0x2 };

// Registered TLV types (doc/proxy-protocol.txt 2.2) and divert's application TLVs.
namespace tlv {
inline constexpr std::uint8_t alpn = 0x01;
inline constexpr std::uint8_t authority = 0x02;
inline constexpr std::uint8_t crc32c = 0x03;
inline constexpr std::uint8_t noop = 0x04;
inline constexpr std::uint8_t unique_id = 0x05;
inline constexpr std::uint8_t ssl = 0x20;
inline constexpr std::uint8_t netns = 0x30;
inline constexpr std::uint8_t divert_upstream = 0xE0;  // "host:port", IPv6 bracketed
inline constexpr std::uint8_t divert_tls_name = 0xE1;  // TLS verify name, IPv6 unbracketed
inline constexpr std::uint8_t divert_username = 0xE2;  // UTF-8
inline constexpr std::uint8_t divert_task_id = 0xE3;   // 16 raw UUID bytes
// 1 byte, the status reply version the sender asks for (0x01): the receiver
// answers with an 8-byte status reply (divert/ppv2/status_reply.hpp).
inline constexpr std::uint8_t divert_status_reply = 0xE7;
}  // namespace tlv

// One side of a connection: an IPv4/IPv6 address with a port, an AF_UNIX path, or
// nothing (none = unknown / not sent). IPv4 uses ip[0..3]. `path` is a view: for
// encoding it must outlive the encode() call; for decoding it points into the
// decoded buffer (up to the first NUL of the 108-byte field).
struct DIVERT_EXPORT Endpoint {
  enum class Kind : std::uint8_t { none, ipv4, ipv6, unix_path };
  Kind kind = Kind::none;
  std::array<std::uint8_t, 16> ip{};
  std::uint16_t port = 0;
  std::string_view path;

  static Endpoint v4(std::array<std::uint8_t, 4> a, std::uint16_t port) noexcept;
  static Endpoint v6(const std::array<std::uint8_t, 16>& a, std::uint16_t port) noexcept;
  static Endpoint unix_socket(std::string_view path) noexcept {
    return {Kind::unix_path, {}, 0, path};
  }
  // Parses an IP literal ("192.0.2.1", "2001:db8::1"; no brackets); nullopt if invalid.
  static std::optional<Endpoint> ip_literal(std::string_view ip, std::uint16_t port);

  bool is_ip() const noexcept { return kind == Kind::ipv4 || kind == Kind::ipv6; }
  // True for an IPv6 address in ::ffff:0:0/96.
  bool is_v4_mapped() const noexcept {
    if (kind != Kind::ipv6) return false;
    for (int i = 0; i < 10; ++i)
      if (ip[i] != 0) return false;
    return ip[10] == 0xff && ip[11] == 0xff;
  }
  // The address without port: "192.0.2.1", "2001:db8::1", the path, or "" for none.
  std::string ip_string() const;

  friend DIVERT_EXPORT bool operator==(const Endpoint& a, const Endpoint& b) noexcept;
};

// A TLV as found on the wire: type and a view of its value.
struct TlvView {
  std::uint8_t type = 0;
  std::span<const std::uint8_t> value;
  std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(value.data()), value.size()};
  }
};

// A 16-byte UUID (the divert task id, TLV 0xE3), RFC 9562 byte order.
struct DIVERT_EXPORT Uuid {
  std::array<std::uint8_t, 16> bytes{};
  // Canonical lower-case 8-4-4-4-12 form, 36 characters.
  std::string to_string() const;
  // Writes the 36 characters of to_string() into `out` (no NUL); no allocation.
  void to_chars(char (&out)[36]) const noexcept;
  // Parses the canonical 8-4-4-4-12 form (either case); nullopt if invalid.
  static std::optional<Uuid> parse(std::string_view text) noexcept;
  friend bool operator==(const Uuid&, const Uuid&) = default;
};

// Byte view of text, for TLV values given as strings.
inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace divert::ppv2

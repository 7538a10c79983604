// divert/ppv2/encoder.hpp — PROXY protocol v2 encoder (sans-I/O).
//
// Fill a HeaderSpec, then encode() it into a caller buffer or a HeaderBuffer.
// What goes on the wire (the README's "The wire contract"):
//   * ver_cmd 0x21 (PROXY) or 0x20 (LOCAL).
//   * PROXY: IPv4-mapped IPv6 endpoints are folded to IPv4 first; if src and dst
//     still differ in family both are sent as IPv6 (v4-mapped), as HAProxy and
//     nginx do. Both sides none -> family UNSPEC (0x00), no address block.
//     UNIX with IP, or one side none, is errc::address_family_mismatch.
//   * LOCAL: family UNSPEC and no address block (endpoints are ignored), TLVs allowed.
//   * TLVs in this order: 0xE0 upstream, 0xE1 TLS name, 0xE2 username, 0xE3 task
//     id, 0xE7 status reply request (value 0x01), AUTHORITY (0x02), UNIQUE_ID
//     (0x05), `extra` in the caller's order, NOOP padding, and CRC32C (0x03) last,
//     computed over the whole header with its value zeroed and stored big-endian.
// Values: 0xE0 not empty and without NUL; 0xE1 not empty, 0xE1 and 0xE2 UTF-8
// (RFC 3629) without NUL; else errc::invalid_tlv_value.
// Sizes: a TLV value is at most 65535 bytes (errc::tlv_value_too_large); address
// block + TLVs at most 65535 (errc::length_overflow, counted in size_t so it cannot
// wrap); the whole header at most EncodeOptions::max_size (errc::header_too_large).
// Allocation: encode() into a span never allocates; HeaderBuffer holds up to 536
// bytes inline and only allocates above that.
// Thread-safety: functions are pure; a HeaderBuffer is a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include "divert/export.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/ppv2/types.hpp"

namespace divert::ppv2 {

// What to encode. Every view must stay valid during encode().
struct HeaderSpec {
  Command command = Command::proxy;
  Transport transport = Transport::stream;  // stream (TCP) or dgram (UDP); ignored for LOCAL
  Endpoint src;                             // the client
  Endpoint dst;                             // the address the client connected to

  std::optional<std::string_view> upstream;  // 0xE0 "host:port" / "[v6]:port"; no NUL
  std::optional<std::string_view> tls_name;  // 0xE1; UTF-8, no NUL, not empty
  std::optional<std::string_view> username;  // 0xE2; UTF-8, no NUL
  std::optional<Uuid> task_id;               // 0xE3
  // 0xE7 = 0x01: ask the next proxy for the 8-byte status reply (status_reply.hpp).
  // Only for receivers known to speak it: one that does not never replies.
  bool status_reply = false;

  std::optional<std::string_view> authority;               // 0x02
  std::optional<std::span<const std::uint8_t>> unique_id;  // 0x05
  std::span<const TlvView> extra;                          // any other TLVs, as given
  std::optional<std::uint16_t> noop_padding;               // a NOOP TLV with this many zero bytes
  bool crc32c = false;                                     // append a CRC32C TLV
};

struct EncodeOptions {
  std::size_t max_size = kDefaultMaxSize;  // bytes, whole header; at most 16 + 65535
};

// Exact size encode() will write, or the error it would return.
struct EncodedSize {
  std::size_t size = 0;
  std::error_code ec;
};
DIVERT_EXPORT EncodedSize encoded_size(const HeaderSpec& spec,
                                       const EncodeOptions& opts = {}) noexcept;

// Encodes into `out`; returns the number of bytes written or an error (out is then
// unspecified). errc::buffer_too_small when out is shorter than the header.
DIVERT_EXPORT EncodedSize encode(const HeaderSpec& spec, std::span<std::uint8_t> out,
                                 const EncodeOptions& opts = {}) noexcept;

// An encoded header: inline storage up to 536 bytes, heap above.
class DIVERT_EXPORT HeaderBuffer {
 public:
  HeaderBuffer() = default;
  HeaderBuffer(const HeaderBuffer& o) { assign(o.bytes()); }
  HeaderBuffer& operator=(const HeaderBuffer& o) {
    if (this != &o) assign(o.bytes());
    return *this;
  }
  std::span<const std::uint8_t> bytes() const noexcept { return {data(), size_}; }
  const std::uint8_t* data() const noexcept { return heap_ ? heap_.get() : inline_; }
  std::size_t size() const noexcept { return size_; }
  bool on_heap() const noexcept { return heap_ != nullptr; }

  // Room for n bytes (contents discarded); used by encode().
  std::span<std::uint8_t> prepare(std::size_t n);
  void commit(std::size_t n) noexcept { size_ = n; }

 private:
  void assign(std::span<const std::uint8_t> b);
  std::uint8_t inline_[kInlineHeaderSize];
  std::unique_ptr<std::uint8_t[]> heap_;
  std::size_t heap_cap_ = 0;
  std::size_t size_ = 0;
};

// Encodes into `out` (replacing its content).
DIVERT_EXPORT std::error_code encode(const HeaderSpec& spec, HeaderBuffer& out,
                                     const EncodeOptions& opts = {});

}  // namespace divert::ppv2

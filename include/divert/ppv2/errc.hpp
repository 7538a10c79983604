// divert/ppv2/errc.hpp — error codes of the PROXY protocol codec (encoder, decoder,
// v1 parser, divert TLV view, socket read helper).
//
// Every failure of the codec is a std::error_code in ppv2_category(); message()
// says what is wrong in words a user can act on. Decoder results also carry the
// byte offset where the problem was found (see decoder.hpp).
// Thread-safety: the category is an immutable singleton.
#pragma once

#include <system_error>

#include "divert/export.hpp"

namespace divert::ppv2 {

enum class errc {
  // --- encoder ---
  header_too_large = 1,     // encoded header would exceed the configured cap (default 4096)
  length_overflow,          // address block + TLVs exceed 65535 (the u16 length field)
  tlv_value_too_large,      // one TLV value longer than 65535 bytes
  address_family_mismatch,  // PROXY with one side unset, or UNIX paired with IP
  unix_path_too_long,       // an AF_UNIX path longer than 108 bytes
  buffer_too_small,         // caller's output buffer shorter than the header
  invalid_tlv_value,        // a divert TLV value that breaks the wire contract (e.g. NUL in E0)
  // --- v2 decoder ---
  bad_signature,            // the 12-byte signature does not match
  bad_version,              // version nibble is not 2
  bad_command,              // command nibble is neither LOCAL (0) nor PROXY (1)
  bad_family,               // family/transport byte is not one of 00 11 12 21 22 31 32
  address_block_truncated,  // len is shorter than the address block of the family
  tlv_overrun,              // a TLV runs past the end of the header (len)
  trailing_bytes,           // 1 or 2 bytes after the last TLV: too short to be a TLV
  crc_bad_length,           // a CRC32C TLV whose value is not exactly 4 bytes, or two of them
  crc_mismatch,             // CRC32C present and wrong (also: stored little-endian)
  unspec_rejected,          // PROXY with family UNSPEC while the options forbid it
  // --- v1 decoder ---
  v1_bad_format,       // a v1 line that does not follow the spec exactly
  v1_too_long,         // no CRLF within 107 bytes
  not_proxy_protocol,  // neither a v2 signature nor "PROXY " (auto-detection)
  // --- divert TLV view ---
  bad_upstream,   // 0xE0 is not host:port / [v6]:port
  bad_task_id,    // 0xE3 is not exactly 16 bytes
  duplicate_tlv,  // one of 0xE0-0xE3, 0xE7 appears twice
  bad_tls_name,   // 0xE1 is empty, or not UTF-8 without NUL
  bad_username,   // 0xE2 is not UTF-8 without NUL
  // --- socket helper ---
  truncated,  // peer closed the stream before a complete header
  // --- divert TLV view (continued; numbered after the others so they keep theirs) ---
  bad_status_request,  // 0xE7 (status reply request) is not exactly 1 byte
};

DIVERT_EXPORT const std::error_category& ppv2_category() noexcept;
DIVERT_EXPORT std::error_code make_error_code(errc e) noexcept;

namespace detail {
// A default (no error) std::error_code, made once. Default-constructing one calls
// std::system_category(), an out-of-line call into the C++ runtime; the codec's
// results are built once per connection and copy this instead. On ELF targets
// with GCC or Clang it is a namespace-scope object made by a constructor of
// priority 101, before every default-priority static constructor of the program
// (a shared libdivert is initialised before the objects that link it), so reading
// it costs one load and no guard. Caveat: a codec result (ParseResult,
// EncodedSize, Decoder) built by a static constructor of priority 101 or lower
// may see it unmade (a null category). Elsewhere it is a function-local static.
#if defined(__GNUC__) && defined(__ELF__)
DIVERT_EXPORT extern const std::error_code kNoError;
inline const std::error_code& no_error() noexcept { return kNoError; }
#else
inline const std::error_code& no_error() noexcept {
  static const std::error_code ok;
  return ok;
}
#endif
}  // namespace detail

}  // namespace divert::ppv2

template <>
struct std::is_error_code_enum<divert::ppv2::errc> : std::true_type {};

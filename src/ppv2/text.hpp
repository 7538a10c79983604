// Internal: the text rule of divert's TLVs 0xE1 (TLS name) and 0xE2 (username),
// shared by the encoder and read_divert_tlvs(): UTF-8 (RFC 3629) without NUL.
#pragma once

#include <cstddef>
#include <string_view>

namespace divert::ppv2::detail {

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF,
// no truncated sequence) and no NUL byte.
bool is_utf8_text(std::string_view s) noexcept;

// 0xE1: a TLS name, never empty; 0xE1 and 0xE2: UTF-8 without NUL (g3proxy's
// divert_tcp: "UTF-8 string without trailing '\0'"; a NUL would cut the value
// short for a receiver that reads it as a C string, and an empty name would turn
// OpenSSL's name check off).
inline bool tls_name_ok(std::string_view v) noexcept {
  return !v.empty() && is_utf8_text(v);
}
inline bool username_ok(std::string_view v) noexcept {
  return is_utf8_text(v);
}

}  // namespace divert::ppv2::detail

// Internal: the text rule of divert's TLVs 0xE1 (TLS name) and 0xE2 (username),
// shared by the encoder and read_divert_tlvs(): UTF-8 (RFC 3629) without NUL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace divert::ppv2::detail {

// The whole check: well-formed UTF-8 (no overlong forms, no surrogates, nothing
// above U+10FFFF, no truncated sequence) and no NUL byte. Out of line (text.cpp).
bool utf8_text_full(const char* s, std::size_t n) noexcept;

// True when s[0, n) is ASCII without NUL, the common case (names and user
// names are ASCII): the codec's fast paths take only such values and leave
// anything else to their general paths.
inline bool ascii_text(const char* s, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0 || c >= 0x80) return false;
  }
  return true;
}

// utf8_text_full() with ASCII answered inline.
inline bool is_utf8_text(const char* s, std::size_t n) noexcept {
  return ascii_text(s, n) || utf8_text_full(s, n);
}

// 0xE1: a TLS name, never empty; 0xE1 and 0xE2: UTF-8 without NUL (g3proxy divert_tcp's
// "UTF-8 string without trailing '\0'"; a NUL would cut the value short for a
// receiver that reads it as a C string, and an empty name would turn OpenSSL's
// name check off).
inline bool tls_name_ok(std::string_view v) noexcept {
  return !v.empty() && is_utf8_text(v.data(), v.size());
}
inline bool username_ok(std::string_view v) noexcept {
  return is_utf8_text(v.data(), v.size());
}
// The fast paths' test: true only for an ASCII value the rules above take
// (false for any other value, good or bad: the general path decides).
inline bool tls_name_ascii_ok(std::string_view v) noexcept {
  return !v.empty() && ascii_text(v.data(), v.size());
}
inline bool username_ascii_ok(std::string_view v) noexcept {
  return ascii_text(v.data(), v.size());
}

}  // namespace divert::ppv2::detail

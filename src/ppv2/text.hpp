// Internal: the text rule of divert's TLVs 0xE1 (TLS name) and 0xE2 (username),
// shared by the encoder and read_divert_tlvs(): UTF-8 (RFC 3629) without NUL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace divert::ppv2::detail {

// The whole check: well-formed UTF-8 (no overlong forms, no surrogates, nothing
// above U+10FFFF, no truncated sequence) and no NUL byte. Out of line (text.cpp).
bool utf8_text_full(const char* s, std::size_t n) noexcept;

// Non-zero when a byte of `w` is NUL or has its top bit set (not ASCII).
inline std::uint64_t nul_or_non_ascii(std::uint64_t w) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  return ((w - kOnes) & ~w & kHighs) | (w & kHighs);
}

// True when s[0, n) is ASCII without NUL (the common case: names and user
// names are ASCII), a word at a time and without a call: the codec's fast
// paths use it alone and leave anything else to their general paths, so that
// they make no call (and save no registers).
[[gnu::always_inline]] inline bool ascii_text(const char* s, std::size_t n) noexcept {
  auto load = [s](std::size_t at, std::size_t size) {
    std::uint64_t v = 0;  // little or big endian alike: only whole-word tests follow
    std::memcpy(&v, s + at, size);
    return v;
  };
  std::uint64_t bad = 0;
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) bad |= nul_or_non_ascii(load(i, 8));
    bad |= nul_or_non_ascii(load(n - 8, 8));
  } else if (n >= 4) {
    // Two overlapping 4-byte loads in one word: no zero padding byte is tested.
    bad = nul_or_non_ascii(load(0, 4) | load(n - 4, 4) << 32);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      bad |= static_cast<std::uint64_t>(c == 0 || c >= 0x80);
    }
  }
  return bad == 0;
}

// utf8_text_full() with ASCII answered inline.
inline bool is_utf8_text(const char* s, std::size_t n) noexcept {
  return ascii_text(s, n) || utf8_text_full(s, n);
}

// 0xE1: a TLS name, never empty; 0xE1 and 0xE2: UTF-8 without NUL (the seed's
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
[[gnu::always_inline]] inline bool tls_name_ascii_ok(std::string_view v) noexcept {
  return !v.empty() && ascii_text(v.data(), v.size());
}
[[gnu::always_inline]] inline bool username_ascii_ok(std::string_view v) noexcept {
  return ascii_text(v.data(), v.size());
}

}  // namespace divert::ppv2::detail

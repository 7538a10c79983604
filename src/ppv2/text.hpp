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

// utf8_text_full() with ASCII answered inline, a word at a time and without a
// call (the common case: names and user names are ASCII); text with any byte
// of 0x80 or above, or a NUL, goes to the whole check.
[[gnu::always_inline]] inline bool is_utf8_text(const char* s, std::size_t n) noexcept {
  // Whole words of text only (no padding byte), so the byte order does not
  // matter: only whole-word tests follow.
  auto load64 = [s](std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, s + at, 8);
    return v;
  };
  auto load32 = [s](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, s + at, 4);
    return std::uint64_t{v};
  };
  std::uint64_t bad = 0;
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) bad |= nul_or_non_ascii(load64(i));
    bad |= nul_or_non_ascii(load64(n - 8));
  } else if (n >= 4) {
    // Two overlapping 4-byte loads in one word (a 4-byte memcpy into a zeroed
    // 64-bit word would land in its high half on a big-endian machine, and the
    // shift would drop it).
    bad = nul_or_non_ascii(load32(0) | load32(n - 4) << 32);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      bad |= static_cast<std::uint64_t>(c == 0 || c >= 0x80);
    }
  }
  return bad == 0 || utf8_text_full(s, n);
}

// 0xE1: a TLS name, never empty; 0xE1 and 0xE2: UTF-8 without NUL (the seed's
// "UTF-8 string without trailing '\0'"; a NUL would cut the value short for a
// receiver that reads it as a C string, and an empty name would turn OpenSSL's
// name check off).
[[gnu::always_inline]] inline bool tls_name_ok(std::string_view v) noexcept {
  return !v.empty() && is_utf8_text(v.data(), v.size());
}
[[gnu::always_inline]] inline bool username_ok(std::string_view v) noexcept {
  return is_utf8_text(v.data(), v.size());
}

}  // namespace divert::ppv2::detail

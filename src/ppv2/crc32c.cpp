// CRC32C: portable slicing-by-8 tables, SSE4.2 (x86-64, run-time cpuid check) and
// ARMv8 CRC (AArch64 builds with +crc) hardware paths.
#include "divert/ppv2/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DIVERT_CRC32C_X86 1
#include <nmmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#define DIVERT_CRC32C_ARM 1
#include <arm_acle.h>
#endif

namespace divert::ppv2 {

namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}

constexpr Tables kTables = make_tables();

std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

#if DIVERT_CRC32C_X86
__attribute__((target("sse4.2"))) std::uint32_t crc_sse42(const std::uint8_t* p, std::size_t n,
                                                          std::uint32_t c) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
}

bool cpu_has_sse42() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

#if DIVERT_CRC32C_ARM
std::uint32_t crc_arm(const std::uint8_t* p, std::size_t n, std::uint32_t c) noexcept {
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __crc32cd(c, v);
    p += 8;
    n -= 8;
  }
  while (n--) c = __crc32cb(c, *p++);
  return c;
}
#endif

using Impl = std::uint32_t (*)(std::span<const std::uint8_t>, std::uint32_t) noexcept;

Impl pick() noexcept {
  return crc32c_hardware_available() ? &crc32c_hardware : &crc32c_portable;
}

}  // namespace

std::uint32_t crc32c_portable(std::span<const std::uint8_t> data, std::uint32_t prev) noexcept {
  std::uint32_t c = ~prev;
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    std::uint64_t v = load_le64(p) ^ c;
    c = kTables[7][v & 0xFF] ^ kTables[6][(v >> 8) & 0xFF] ^ kTables[5][(v >> 16) & 0xFF] ^
        kTables[4][(v >> 24) & 0xFF] ^ kTables[3][(v >> 32) & 0xFF] ^ kTables[2][(v >> 40) & 0xFF] ^
        kTables[1][(v >> 48) & 0xFF] ^ kTables[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
  return ~c;
}

bool crc32c_hardware_available() noexcept {
#if DIVERT_CRC32C_X86
  static const bool ok = cpu_has_sse42();
  return ok;
#elif DIVERT_CRC32C_ARM
  return true;  // compiled with +crc: the target guarantees the instructions
#else
  return false;
#endif
}

std::uint32_t crc32c_hardware(std::span<const std::uint8_t> data, std::uint32_t prev) noexcept {
#if DIVERT_CRC32C_X86
  return ~crc_sse42(data.data(), data.size(), ~prev);
#elif DIVERT_CRC32C_ARM
  return ~crc_arm(data.data(), data.size(), ~prev);
#else
  return crc32c_portable(data, prev);
#endif
}

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t prev) noexcept {
  static const Impl impl = pick();
  return impl(data, prev);
}

}  // namespace divert::ppv2

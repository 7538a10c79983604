// divert/ppv2/crc32c.hpp — CRC32C (Castagnoli, RFC 4960 appendix B), as used by the
// PROXY v2 CRC32C TLV (0x03, stored big-endian).
//
// crc32c() picks the fastest implementation once, at first use: the SSE4.2 crc32
// instruction on x86-64 (checked with cpuid), the ARMv8 CRC instructions on
// AArch64 builds compiled with +crc, else a portable table. All give the same
// values: crc32c("123456789") == 0xE3069283.
// Chaining: crc32c(b, crc32c(a)) == crc32c(a followed by b).
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <span>

namespace divert::ppv2 {

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t prev = 0) noexcept;

// The portable table implementation (always available).
std::uint32_t crc32c_portable(std::span<const std::uint8_t> data, std::uint32_t prev = 0) noexcept;

// True when this CPU has a hardware CRC32C path compiled in.
bool crc32c_hardware_available() noexcept;
// The hardware implementation; only call when crc32c_hardware_available().
std::uint32_t crc32c_hardware(std::span<const std::uint8_t> data, std::uint32_t prev = 0) noexcept;

}  // namespace divert::ppv2

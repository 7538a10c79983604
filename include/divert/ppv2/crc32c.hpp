// divert/ppv2/crc32c.hpp — CRC32C (Castagnoli, RFC 4960 appendix B), as used by the
// PROXY v2 CRC32C TLV (0x03, stored big-endian).
//
// crc32c() picks the fastest implementation once, at first use: the SSE4.2 crc32
// instruction on x86-64 (checked with cpuid), the ARMv8 CRC instructions on
// AArch64 builds compiled with +crc, else a portable table. All give the same
// values: crc32c("123456789") == 0xE3069283.
// Chaining: crc32c(b, crc32c(a)) == crc32c(a followed by b).
// Errors: none (noexcept). Units: bytes in, the 32-bit CRC out (host order).
// Thread-safety: pure functions; safe from any thread (the one-time choice of
// implementation is a thread-safe static initialisation).
#pragma once

#include <cstdint>
#include <span>

#include "divert/export.hpp"

namespace divert::ppv2 {

DIVERT_EXPORT std::uint32_t crc32c(std::span<const std::uint8_t> data,
                                   std::uint32_t prev = 0) noexcept;

// The portable table implementation (always available).
DIVERT_EXPORT std::uint32_t crc32c_portable(std::span<const std::uint8_t> data,
                                            std::uint32_t prev = 0) noexcept;

// True when this CPU has a hardware CRC32C path compiled in.
DIVERT_EXPORT bool crc32c_hardware_available() noexcept;
// The hardware implementation; only call when crc32c_hardware_available().
DIVERT_EXPORT std::uint32_t crc32c_hardware(std::span<const std::uint8_t> data,
                                            std::uint32_t prev = 0) noexcept;

}  // namespace divert::ppv2

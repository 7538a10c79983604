// Internal: the codec's general paths on their own, without the fast path in
// front of them. encode() and parse() give the same results through either;
// the tests check that they agree (tests/ppv2/fastpath_test.cpp). Not installed.
#pragma once

#include <span>

#include "divert/export.hpp"
#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"

namespace divert::ppv2::detail {

// encode() for any spec: every shape, every check, the exact error.
DIVERT_EXPORT EncodedSize encode_general(const HeaderSpec& spec, std::span<std::uint8_t> out,
                                         const EncodeOptions& opts = {}) noexcept;

// parse() for any input: byte-by-byte signature check, every family, CRC32C.
DIVERT_EXPORT ParseResult parse_general(std::span<const std::uint8_t> bytes,
                                        const DecoderOptions& opts = {}) noexcept;

}  // namespace divert::ppv2::detail

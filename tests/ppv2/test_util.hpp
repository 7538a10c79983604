// Helpers shared by the ppv2 tests: hex <-> bytes, small header builders.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"

namespace divert::ppv2::test {

using Bytes = std::vector<std::uint8_t>;

// Hex to bytes; spaces and newlines are ignored.
Bytes from_hex(std::string_view hex);
std::string to_hex(std::span<const std::uint8_t> b);

// Encodes or fails the test.
Bytes encode_ok(const HeaderSpec& spec, const EncodeOptions& opts = {});

// Writes the CRC32C of a header whose CRC TLV value starts at `crc_at` (big-endian).
void fix_crc(Bytes& h, std::size_t crc_at);

Endpoint ep(std::string_view ip, std::uint16_t port);

// AWS NLB and HAProxy captures from anchors.md.
Bytes aws_nlb_golden();
Bytes haproxy_golden();

}  // namespace divert::ppv2::test

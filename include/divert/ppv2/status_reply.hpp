// divert/ppv2/status_reply.hpp — divert's upstream status reply
// (divert/connector.hpp "Upstream status reply"), sans-I/O.
//
// PROXY v2 has no reply. A sender that puts TLV 0xE7 = 0x01 in its header
// (HeaderSpec::status_reply) asks the receiver to connect the upstream first and
// then write exactly 8 bytes before any upstream byte:
//   offset 0, 4 bytes: ASCII "DVT1" (0x44 0x56 0x54 0x31)
//   offset 4, 1 byte:  status (UpstreamStatus)
//   offset 5, 1 byte:  reserved, 0
//   offset 6, 2 bytes: upstream connect time in milliseconds, big-endian,
//                      saturating at 65535
// On a non-zero status the receiver closes after the reply.
// Thread-safety: pure functions on values.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>

#include "divert/export.hpp"

namespace divert::ppv2 {

// What the receiver says about the upstream. Any other byte may arrive from a
// newer receiver: parse_status_reply() keeps it as UpstreamStatus(value).
enum class UpstreamStatus : std::uint8_t {
  connected = 0,
  refused = 1,         // the upstream refused the connection
  timed_out = 2,       // connecting to the upstream timed out
  unreachable = 3,     // network or host unreachable
  resolve_failed = 4,  // the upstream's name did not resolve
  denied = 5,          // the receiver's destination policy denied it
  other = 255,         // any other failure
};

inline constexpr std::size_t kStatusReplySize = 8;  // bytes on the wire

struct StatusReply {
  UpstreamStatus status = UpstreamStatus::connected;
  std::uint16_t connect_ms = 0;  // upstream connect time, milliseconds
  friend bool operator==(const StatusReply&, const StatusReply&) = default;
};

// The 8 wire bytes of `r`. connect_ms is written as given (see status_reply_ms()).
DIVERT_EXPORT std::array<std::uint8_t, kStatusReplySize> encode_status_reply(
    const StatusReply& r) noexcept;

// A duration as the reply's millisecond field: whole milliseconds (rounded
// down), 0 for a negative duration, 65535 for 65535 ms and more.
DIVERT_EXPORT std::uint16_t status_reply_ms(std::chrono::nanoseconds d) noexcept;

// The reply in `bytes`, or nullopt when the magic is not "DVT1" or the reserved
// byte is not 0. A status byte this version does not know is kept as
// UpstreamStatus(value) (to_error_code() maps it to upstream_failed_other).
DIVERT_EXPORT std::optional<StatusReply> parse_status_reply(
    std::span<const std::uint8_t, kStatusReplySize> bytes) noexcept;

// connected -> no error; refused, timed_out, unreachable, resolve_failed, denied ->
// divert::errc::upstream_refused, .._timed_out, .._unreachable, .._resolve_failed,
// .._denied; other and any unknown status -> divert::errc::upstream_failed_other.
DIVERT_EXPORT std::error_code to_error_code(UpstreamStatus s) noexcept;

}  // namespace divert::ppv2

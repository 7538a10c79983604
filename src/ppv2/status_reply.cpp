#include "divert/ppv2/status_reply.hpp"

#include <algorithm>

#include "divert/error.hpp"

namespace divert::ppv2 {

namespace {
constexpr std::array<std::uint8_t, 4> kMagic = {'D', 'V', 'T', '1'};
}  // namespace

std::array<std::uint8_t, kStatusReplySize> encode_status_reply(const StatusReply& r) noexcept {
  return {kMagic[0],
          kMagic[1],
          kMagic[2],
          kMagic[3],
          static_cast<std::uint8_t>(r.status),
          0,
          static_cast<std::uint8_t>(r.connect_ms >> 8),
          static_cast<std::uint8_t>(r.connect_ms)};
}

std::uint16_t status_reply_ms(std::chrono::nanoseconds d) noexcept {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return static_cast<std::uint16_t>(std::clamp<decltype(ms)>(ms, 0, 65535));
}

std::optional<StatusReply> parse_status_reply(
    std::span<const std::uint8_t, kStatusReplySize> b) noexcept {
  if (!std::equal(kMagic.begin(), kMagic.end(), b.begin()) || b[5] != 0) return std::nullopt;
  return StatusReply{static_cast<UpstreamStatus>(b[4]),
                     static_cast<std::uint16_t>(b[6] << 8 | b[7])};
}

std::error_code to_error_code(UpstreamStatus s) noexcept {
  switch (s) {
    case UpstreamStatus::connected:
      return {};
    case UpstreamStatus::refused:
      return divert::errc::upstream_refused;
    case UpstreamStatus::timed_out:
      return divert::errc::upstream_timed_out;
    case UpstreamStatus::unreachable:
      return divert::errc::upstream_unreachable;
    case UpstreamStatus::resolve_failed:
      return divert::errc::upstream_resolve_failed;
    case UpstreamStatus::denied:
      return divert::errc::upstream_denied;
    case UpstreamStatus::other:
      break;
  }
  return divert::errc::upstream_failed_other;
}

}  // namespace divert::ppv2

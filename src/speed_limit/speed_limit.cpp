#include "divert/speed_limit.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "divert/error.hpp"

namespace divert {

namespace {
// Products of a window length (< 2^33 ns) and a byte count can exceed 64 bits.
__extension__ typedef unsigned __int128 u128;
}  // namespace

void SpeedLimitConfig::validate() const {
  if (shift_millis == 0) return;
  if (shift_millis > kMaxShiftMillis) {
    throw config_error("tcp_sock_speed_limit.shift_millis", std::to_string(shift_millis),
                       "must be in 0..12 (a slice of 2^shift ms, at most 4096 ms)");
  }
  if (upload == 0) {
    throw config_error("tcp_sock_speed_limit.upload", "0",
                       "must not be 0 while the limit is enabled (shift_millis > 0)");
  }
  if (download == 0) {
    throw config_error("tcp_sock_speed_limit.download", "0",
                       "must not be 0 while the limit is enabled (shift_millis > 0)");
  }
}

TokenBucket::TokenBucket(std::uint64_t bytes_per_window, unsigned shift_millis, duration now)
    : capacity_(bytes_per_window),
      window_ns_((std::uint64_t{1} << std::min(shift_millis, 63u)) * 1'000'000u),
      tokens_(bytes_per_window),
      last_ns_(now.count()) {
  if (shift_millis > SpeedLimitConfig::kMaxShiftMillis) {
    throw std::invalid_argument("TokenBucket: shift_millis must be in 0..12");
  }
  if (bytes_per_window == 0) throw std::invalid_argument("TokenBucket: zero bytes per window");
}

void TokenBucket::refill(duration now) noexcept {
  const std::int64_t t = now.count();
  if (t <= last_ns_) return;
  const std::uint64_t elapsed = static_cast<std::uint64_t>(t - last_ns_);
  last_ns_ = t;
  if (tokens_ >= capacity_) return;
  if (elapsed >= window_ns_) {
    tokens_ = capacity_;
    fraction_ = 0;
    return;
  }
  const u128 scaled = u128(elapsed) * capacity_ + fraction_;
  const u128 whole = scaled / window_ns_;
  fraction_ = static_cast<std::uint64_t>(scaled % window_ns_);
  if (whole >= capacity_ - tokens_) {
    tokens_ = capacity_;
    fraction_ = 0;
  } else {
    tokens_ += static_cast<std::uint64_t>(whole);
  }
}

std::uint64_t TokenBucket::available(duration now) noexcept {
  refill(now);
  return tokens_;
}

void TokenBucket::consume(std::uint64_t n, duration now) noexcept {
  refill(now);
  if (n > tokens_) {
    tokens_ = 0;
    fraction_ = 0;
  } else {
    tokens_ -= n;
  }
}

TokenBucket::duration TokenBucket::when_available(std::uint64_t want, duration now) noexcept {
  refill(now);
  want = std::min(want, capacity_);
  if (tokens_ >= want) return std::max(now, duration(last_ns_));
  const u128 deficit = u128(want - tokens_) * window_ns_ - fraction_;
  const u128 wait = (deficit + capacity_ - 1) / capacity_;  // ceil: never early
  return duration(last_ns_ + static_cast<std::int64_t>(wait));
}

}  // namespace divert

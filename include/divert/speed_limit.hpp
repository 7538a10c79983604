// divert/speed_limit.hpp — g3proxy divert_tcp's `tcp_sock_speed_limit` and the pure token
// bucket that enforces it in the relay.
//
// Config (as g3's TcpSockSpeedLimitConfig): the time slice is 2^shift_millis
// milliseconds; `upload` bytes may go client -> next proxy and `download`
// bytes next proxy -> client in each slice. shift_millis == 0 means "no limit"
// (g3proxy divert_tcp's default; g3 validates the other fields only when shift > 0),
// so a 1 ms slice cannot be configured; when limiting is on both limits must be
// non-zero and shift_millis must be <= 12 (a 4096 ms slice).
//
// TokenBucket: no clock inside. Every method takes `now`, a duration since any
// fixed epoch the caller chooses (steady_clock::now().time_since_epoch() in the
// relay, a plain counter in tests). Capacity is one slice's worth of bytes and
// it refills continuously at capacity per slice, so a long-run rate is
// capacity / 2^shift ms with at most one slice of burst.
// Thread-safety: SpeedLimitConfig is a value; a TokenBucket is not synchronised
// (one per relay direction).
#pragma once

#include <chrono>
#include <cstdint>

#include "divert/export.hpp"

namespace divert {

struct DIVERT_EXPORT SpeedLimitConfig {
  static constexpr unsigned kMaxShiftMillis = 12;

  unsigned shift_millis = 0;   // 0: off; else the slice is 2^shift_millis ms (<= 12)
  std::uint64_t upload = 0;    // bytes per slice, client -> next proxy ("north")
  std::uint64_t download = 0;  // bytes per slice, next proxy -> client ("south")

  bool enabled() const noexcept { return shift_millis != 0; }
  // Length of one slice (2^shift_millis ms); meaningful when enabled().
  std::chrono::milliseconds window() const noexcept {
    return std::chrono::milliseconds(std::int64_t{1} << shift_millis);
  }
  // Throws config_error with key "tcp_sock_speed_limit.shift_millis" when
  // shift_millis > 12, and "tcp_sock_speed_limit.upload" / ".download" when
  // limiting is on and that limit is 0. A disabled config is always valid.
  void validate() const;

  friend bool operator==(const SpeedLimitConfig&, const SpeedLimitConfig&) = default;
};

class DIVERT_EXPORT TokenBucket {
 public:
  using duration = std::chrono::nanoseconds;

  // `bytes_per_window` bytes per 2^shift_millis ms (shift 0..12, bytes > 0;
  // std::invalid_argument otherwise). Starts full at `now`.
  TokenBucket(std::uint64_t bytes_per_window, unsigned shift_millis, duration now);

  // Bytes that may be sent at `now` (0..capacity()). `now` earlier than a
  // previous call counts as no time passed.
  std::uint64_t available(duration now) noexcept;

  // Takes `n` bytes at `now`; more than available() empties the bucket.
  void consume(std::uint64_t n, duration now) noexcept;

  // Earliest time (>= now) at which min(want, capacity()) bytes are
  // available; `now` itself when they already are. want == 0 -> now.
  duration when_available(std::uint64_t want, duration now) noexcept;

  std::uint64_t capacity() const noexcept { return capacity_; }
  duration window() const noexcept { return duration(window_ns_); }

 private:
  void refill(duration now) noexcept;

  std::uint64_t capacity_;   // bytes per window
  std::uint64_t window_ns_;  // 2^shift * 1e6
  // Tokens scaled by window_ns_ so the refill (elapsed_ns * capacity / window_ns)
  // never loses fractions; kept in two words to avoid a non-standard 128-bit type.
  std::uint64_t tokens_ = 0;    // whole bytes
  std::uint64_t fraction_ = 0;  // remainder, < window_ns_ (in byte*ns/window units)
  std::int64_t last_ns_ = 0;
};

}  // namespace divert

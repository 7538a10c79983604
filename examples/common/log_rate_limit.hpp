// examples/common/log_rate_limit.hpp — at most N log lines of one kind per
// time window, counting the rest, so that a flood (e.g. connections from
// untrusted peers) cannot flood the log. The first line admitted after lines
// were suppressed carries the count, for a summary line; take_suppressed()
// gives what is left at exit. Pure logic: the caller passes the time.
// Thread-safety: none; guard it with the log's mutex.
#pragma once

#include <chrono>
#include <cstdint>

namespace divert::examples {

class LogRateLimit {
 public:
  using Clock = std::chrono::steady_clock;
  // `per_window` lines per `window`; per_window 0 suppresses every line.
  LogRateLimit(std::uint64_t per_window, std::chrono::milliseconds window)
      : per_window_(per_window), window_(window) {}

  struct Decision {
    bool log = false;              // write this line
    std::uint64_t suppressed = 0;  // lines suppressed before it: write a summary first
  };
  Decision admit(Clock::time_point now) {
    if (now - window_start_ >= window_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= per_window_) {
      ++suppressed_;
      return {};
    }
    ++used_;
    Decision d{true, suppressed_};
    suppressed_ = 0;
    return d;
  }
  // Lines suppressed since the last admitted one (and resets the count).
  std::uint64_t take_suppressed() {
    auto n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  std::uint64_t per_window_;
  std::chrono::milliseconds window_;
  Clock::time_point window_start_{};
  std::uint64_t used_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace divert::examples

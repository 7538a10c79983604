// LogRateLimit (examples/common/log_rate_limit.hpp): pure, with a hand-driven clock.
#include "common/log_rate_limit.hpp"
#include "support/catch.hpp"

using divert::examples::LogRateLimit;
using namespace std::chrono_literals;

TEST_CASE("LogRateLimit: N lines per window, then a summary count", "[log]") {
  LogRateLimit limit(3, 1000ms);
  LogRateLimit::Clock::time_point t{};
  t += 10s;
  for (int i = 0; i < 3; ++i) {
    auto d = limit.admit(t);
    CHECK(d.log);
    CHECK(d.suppressed == 0);
  }
  for (int i = 0; i < 10; ++i) CHECK_FALSE(limit.admit(t + 900ms).log);
  auto d = limit.admit(t + 1000ms);  // a new window
  CHECK(d.log);
  CHECK(d.suppressed == 10);
  CHECK(limit.admit(t + 1001ms).suppressed == 0);
  CHECK(limit.admit(t + 1002ms).log);
  CHECK_FALSE(limit.admit(t + 1003ms).log);
  CHECK(limit.take_suppressed() == 1);
  CHECK(limit.take_suppressed() == 0);
  LogRateLimit none(0, 1000ms);
  CHECK_FALSE(none.admit(t).log);
  CHECK(none.take_suppressed() == 1);
}

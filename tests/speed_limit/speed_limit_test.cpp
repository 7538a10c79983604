// SpeedLimitConfig validation and the pure TokenBucket, driven by a fake clock.
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "divert/error.hpp"
#include "divert/speed_limit.hpp"
#include "support/catch.hpp"

using divert::SpeedLimitConfig;
using divert::TokenBucket;
using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

namespace {
std::string key_of(const SpeedLimitConfig& c) {
  try {
    c.validate();
  } catch (const divert::config_error& e) {
    return e.key();
  }
  return "";
}
}  // namespace

TEST_CASE("SpeedLimitConfig: off by default, validated like g3proxy divert_tcp's",
          "[speed_limit]") {
  SpeedLimitConfig off;
  CHECK_FALSE(off.enabled());
  CHECK_NOTHROW(off.validate());
  // Disabled: other fields are not looked at (as in g3proxy divert_tcp).
  CHECK_NOTHROW(SpeedLimitConfig{0, 0, 0}.validate());

  CHECK_NOTHROW(SpeedLimitConfig{12, 1, 1}.validate());
  CHECK(SpeedLimitConfig{12, 1, 1}.window() == 4096ms);
  CHECK(SpeedLimitConfig{10, 1, 1}.window() == 1024ms);
  CHECK(key_of(SpeedLimitConfig{13, 1, 1}) == "tcp_sock_speed_limit.shift_millis");
  CHECK(key_of(SpeedLimitConfig{255, 1, 1}) == "tcp_sock_speed_limit.shift_millis");
  CHECK(key_of(SpeedLimitConfig{10, 0, 1}) == "tcp_sock_speed_limit.upload");
  CHECK(key_of(SpeedLimitConfig{10, 1, 0}) == "tcp_sock_speed_limit.download");
  try {
    SpeedLimitConfig{13, 1, 1}.validate();
    FAIL("no throw");
  } catch (const divert::config_error& e) {
    CHECK(e.value() == "13");
    CHECK(std::string(e.what()).find("shift_millis") != std::string::npos);
  }
}

TEST_CASE("TokenBucket: rejects bad parameters", "[speed_limit]") {
  CHECK_THROWS_AS(TokenBucket(1000, 13, ns(0)), std::invalid_argument);
  CHECK_THROWS_AS(TokenBucket(0, 10, ns(0)), std::invalid_argument);
}

TEST_CASE("TokenBucket: burst, refill and window boundaries for every shift 0..12",
          "[speed_limit]") {
  for (unsigned shift = 0; shift <= 12; ++shift) {
    CAPTURE(shift);
    const std::uint64_t L = 1000;
    const std::int64_t W = (std::int64_t{1} << shift) * 1'000'000;  // window in ns
    const ns t0(5'000'000'000);
    TokenBucket b(L, shift, t0);
    CHECK(b.capacity() == L);
    CHECK(b.window() == ns(W));
    // Starts full: one window of burst.
    CHECK(b.available(t0) == L);
    CHECK(b.when_available(L, t0) == t0);
    b.consume(L, t0);
    CHECK(b.available(t0) == 0);
    // One byte needs ceil(W / L) ns.
    const ns one = t0 + ns((W + L - 1) / static_cast<std::int64_t>(L));
    CHECK(b.when_available(1, t0) == one);
    CHECK(b.available(one - ns(1)) == 0);
    CHECK(b.available(one) == 1);
    // Half a window gives half the bytes, a whole window all of them.
    CHECK(b.available(t0 + ns(W / 2)) == L / 2);
    CHECK(b.available(t0 + ns(W)) == L);
    // Never above capacity, however long the pause.
    CHECK(b.available(t0 + ns(W) * 50) == L);
    // Asking for more than capacity waits for capacity only.
    const ns t1 = t0 + ns(W) * 50;
    b.consume(L, t1);
    CHECK(b.when_available(10 * L, t1) == t1 + ns(W));
    CHECK(b.when_available(0, t1) == t1);
  }
}

TEST_CASE("TokenBucket: a greedy sender gets exactly the configured rate", "[speed_limit]") {
  // Polling at irregular intervals (each below a fifth of a window, so the
  // bucket never fills up between polls) must not lose fractional tokens.
  for (unsigned shift : {0u, 3u, 7u, 10u, 12u}) {
    for (std::uint64_t L :
         {std::uint64_t{7}, std::uint64_t{1000}, std::uint64_t{7919}, std::uint64_t{2'000'000}}) {
      CAPTURE(shift, L);
      const std::int64_t W = (std::int64_t{1} << shift) * 1'000'000;
      TokenBucket b(L, shift, ns(0));
      std::uint64_t sent = 0;
      std::int64_t t = 0;
      const std::int64_t end = 100 * W;
      std::int64_t step = W / 7 + 1;
      int polls = 0;
      while (t < end && polls < 100000) {
        sent += b.available(ns(t));
        b.consume(b.available(ns(t)), ns(t));
        t = std::min(end, t + step);
        step = step % 3 == 0 ? W / 13 + 3 : W / 5 + 1;  // irregular
        ++polls;
      }
      sent += b.available(ns(end));
      // Initial burst L, then exactly L per window over 100 windows.
      CHECK(sent == L + 100 * L);
    }
  }
}

TEST_CASE("TokenBucket: waiting exactly until when_available() is enough", "[speed_limit]") {
  TokenBucket b(256'000, 7, ns(0));  // 2 MB/s in 128 ms slices
  ns now(0);
  std::uint64_t sent = 0;
  for (int i = 0; i < 1000; ++i) {
    const ns at = b.when_available(16384, now);
    CHECK(at >= now);
    now = at;
    REQUIRE(b.available(now) >= 16384);
    b.consume(16384, now);
    sent += 16384;
  }
  // 16384000 bytes: burst 256000, the rest at 2e6 B/s -> 8.064 s.
  const double seconds = std::chrono::duration<double>(now).count();
  CHECK(seconds == Approx((sent - 256000.0) / 2e6).epsilon(0.001));
}

TEST_CASE("TokenBucket: a clock going backwards adds nothing", "[speed_limit]") {
  TokenBucket b(1000, 10, ns(1'000'000'000));
  b.consume(1000, ns(1'000'000'000));
  CHECK(b.available(ns(0)) == 0);
  CHECK(b.available(ns(999'000'000)) == 0);
  CHECK(b.when_available(1, ns(0)) >= ns(1'000'000'000));
  // Time still counts from the latest instant seen.
  CHECK(b.available(ns(1'000'000'000 + 512'000'000)) == 500);
}

TEST_CASE("TokenBucket: accrual above capacity is dropped", "[speed_limit]") {
  // A full bucket stays full: the surplus of a long pause is not banked.
  TokenBucket b(1, 10, ns(0));
  b.consume(1, ns(0));
  CHECK(b.available(ns(1'536'000'000)) == 1);  // 1.5 windows: capped at 1
  b.consume(1, ns(1'536'000'000));
  CHECK(b.when_available(1, ns(1'536'000'000)) == ns(2'560'000'000));
}

TEST_CASE("TokenBucket: consuming more than available empties it", "[speed_limit]") {
  TokenBucket b(1000, 10, ns(0));
  b.consume(5000, ns(0));
  CHECK(b.available(ns(0)) == 0);
  CHECK(b.available(ns(1'024'000'000)) == 1000);
}

TEST_CASE("TokenBucket: huge limits do not overflow", "[speed_limit]") {
  const std::uint64_t L = 1'000'000'000'000'000ull;  // 1e15 bytes per 4096 ms
  TokenBucket b(L, 12, ns(0));
  b.consume(L, ns(0));
  CHECK(b.available(ns(2'048'000'000)) == L / 2);
  CHECK(b.when_available(L, ns(2'048'000'000)) == ns(4'096'000'000));
}

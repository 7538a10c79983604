// The checker's pure decisions: the rise/fall tracker and the probe schedule
// (health_check/rise_fall.hpp, core.hpp), driven with a fake clock; and the
// probe's pure parts (the LOCAL header's bytes, the watch's verdict).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "divert/asio/error.hpp"
#include "health_check/core.hpp"
#include "health_check/probe.hpp"
#include "health_check/rise_fall.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace divert::health;
using namespace std::chrono_literals;

TEST_CASE("rise/fall: starts up; fall consecutive failures mark down, rise successes up") {
  RiseFallTracker t(2, 3);
  CHECK(t.up());
  CHECK(t.record(false) == Transition::none);
  CHECK(t.record(false) == Transition::none);
  CHECK(t.streak() == 2);
  CHECK(t.record(false) == Transition::went_down);
  CHECK_FALSE(t.up());
  CHECK(t.record(false) == Transition::none);  // reported once
  CHECK(t.record(true) == Transition::none);
  CHECK_FALSE(t.up());
  CHECK(t.record(true) == Transition::went_up);
  CHECK(t.up());
  CHECK(t.record(true) == Transition::none);
}

TEST_CASE("rise/fall: a result of the other kind restarts the count") {
  RiseFallTracker t(2, 3);
  // up: F F S F F -> still up (the success broke the run), then F -> down
  for (bool r : {false, false, true, false, false}) CHECK(t.record(r) == Transition::none);
  CHECK(t.up());
  CHECK(t.record(false) == Transition::went_down);
  // down: S F S -> still down, then S -> up
  for (bool r : {true, false, true}) CHECK(t.record(r) == Transition::none);
  CHECK_FALSE(t.up());
  CHECK(t.record(true) == Transition::went_up);
}

TEST_CASE("rise/fall: rise 1 and fall 1 flip on every change; 0 counts as 1") {
  RiseFallTracker t(1, 1);
  CHECK(t.record(true) == Transition::none);
  CHECK(t.record(false) == Transition::went_down);
  CHECK(t.record(true) == Transition::went_up);
  RiseFallTracker z(0, 0);
  CHECK(z.record(false) == Transition::went_down);
}

namespace {
HealthCheckConfig cfg(std::uint32_t rise = 2, std::uint32_t fall = 3) {
  return {.enabled = true, .interval = 100ms, .timeout = 50ms, .rise = rise, .fall = fall};
}
const TimePoint t0{std::chrono::seconds(1000)};
}  // namespace

TEST_CASE("schedule: new targets are due at once, then every interval from each probe's start") {
  CheckerCore core(cfg());
  auto ids = core.set_targets({"a:1", "b:1"}, t0).ids;
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] != ids[1]);
  CHECK(core.next_wakeup() == t0);
  CHECK(core.take_due(t0) == ids);
  CHECK(core.in_flight(ids[0]));
  CHECK_FALSE(core.next_wakeup());           // both in flight
  CHECK(core.take_due(t0 + 500ms).empty());  // never twice at once
  CHECK(core.on_result(ids[0], true) == Transition::none);
  CHECK(core.next_wakeup() == t0 + 100ms);
  CHECK(core.take_due(t0 + 99ms).empty());
  CHECK(core.take_due(t0 + 100ms) == std::vector<std::uint64_t>{ids[0]});
  CHECK(core.next_wakeup() == std::nullopt);
  CHECK(core.on_result(ids[0], true) == Transition::none);
  CHECK(core.next_wakeup() == t0 + 200ms);
  // b's probe outlasted the interval: due as soon as it ends.
  CHECK(core.on_result(ids[1], true) == Transition::none);
  CHECK(core.next_wakeup() == t0 + 100ms);
  CHECK(core.take_due(t0 + 130ms) == std::vector<std::uint64_t>{ids[1]});
  CHECK(core.on_result(ids[1], true) == Transition::none);
  CHECK(core.next_wakeup() == t0 + 200ms);  // a's; b's is at 230
  CHECK(core.take_due(t0 + 200ms) == std::vector<std::uint64_t>{ids[0]});
  CHECK(core.next_wakeup() == t0 + 230ms);
}

TEST_CASE("schedule: a stopped target is down after fall probes, within fall x interval") {
  // The fake clock runs the schedule as the shell does: wake at next_wakeup,
  // probes answer at once (a refused connect).
  CheckerCore core(cfg(2, 3));
  const auto id = core.set_targets({"a:1"}, t0).ids.at(0);
  auto now = t0;
  bool alive = true;
  std::optional<TimePoint> down_at, up_at;
  const auto stop_at = t0 + 250ms, restart_at = t0 + 1010ms;
  for (int step = 0; step < 40; ++step) {
    now = *core.next_wakeup();
    alive = now < stop_at || now >= restart_at;
    for (auto due : core.take_due(now)) {
      auto t = core.on_result(due, alive);
      if (t == Transition::went_down) down_at = now;
      if (t == Transition::went_up) up_at = now;
    }
  }
  CHECK(core.up(id) == true);
  REQUIRE(down_at);
  REQUIRE(up_at);
  CHECK(*down_at - stop_at <= 3 * 100ms);
  CHECK(*down_at == t0 + 500ms);  // probes at 300, 400, 500 failed
  CHECK(*up_at - restart_at <= 2 * 100ms);
  CHECK(*up_at == t0 + 1200ms);  // probes at 1100, 1200 passed
}

TEST_CASE("schedule: jitter adds [0, jitter] to each interval, reproducibly from the seed") {
  CheckerCore a(cfg(), 20ms, 7), b(cfg(), 20ms, 7);
  const auto ia = a.set_targets({"a:1"}, t0).ids.at(0);
  const auto ib = b.set_targets({"a:1"}, t0).ids.at(0);
  std::vector<TimePoint> wa, wb;
  auto now = t0;
  bool varied = false;
  for (int i = 0; i < 50; ++i) {
    a.take_due(now);
    b.take_due(now);
    a.on_result(ia, true);
    b.on_result(ib, true);
    auto next = *a.next_wakeup();
    CHECK(next - now >= 100ms);
    CHECK(next - now <= 120ms);
    if (next - now != 100ms) varied = true;
    CHECK(next == *b.next_wakeup());
    now = next;
  }
  CHECK(varied);
}

TEST_CASE("set_targets keeps the state and schedule of kept addresses, drops removed ones") {
  CheckerCore core(cfg(2, 1));
  auto first = core.set_targets({"a:1", "b:1", "c:1"}, t0).ids;
  core.take_due(t0);
  CHECK(core.on_result(first[0], false) == Transition::went_down);
  core.on_result(first[1], true);
  // c's probe still in flight when c is removed.
  auto change = core.set_targets({"b:1", "a:1", "d:1"}, t0 + 10ms);
  REQUIRE(change.ids.size() == 3);
  CHECK(change.ids[0] == first[1]);
  CHECK(change.ids[1] == first[0]);
  CHECK(change.removed == std::vector<std::uint64_t>{first[2]});
  CHECK(core.up(first[0]) == false);                           // a kept its down state
  CHECK_FALSE(core.up(first[2]));                              // c is gone
  CHECK(core.on_result(first[2], false) == Transition::none);  // its late result is dropped
  // d is new: due at once; a and b keep their schedule (due at t0 + 100ms).
  CHECK(core.take_due(t0 + 10ms) == std::vector<std::uint64_t>{change.ids[2]});
  CHECK(core.take_due(t0 + 100ms) == std::vector<std::uint64_t>{first[1], first[0]});
  // Removed and added again: a new target (new id, starts up).
  auto again = core.set_targets({"c:1"}, t0 + 200ms);
  CHECK(again.ids[0] != first[2]);
  CHECK(core.up(again.ids[0]) == true);
  CHECK(again.removed.size() == 3);
  // A duplicate key shares the first's id.
  auto dup = core.set_targets({"c:1", "c:1"}, t0 + 300ms);
  CHECK(dup.ids[0] == dup.ids[1]);
  CHECK(core.size() == 1);
}

TEST_CASE("the LOCAL header is the PROXY spec's: signature, 0x20, family 0x00, length 0") {
  // haproxy/haproxy doc/proxy-protocol.txt section 2.2: the 12-byte signature
  // \x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A, then version 2 with the
  // LOCAL command (0x20), AF_UNSPEC/UNSPEC (0x00), and a zero length.
  const std::array<std::uint8_t, 16> golden = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                               0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
  CHECK(local_header() == golden);
}

TEST_CASE("the watch's verdict: a clean close passes, a reset fails, bytes keep watching") {
  CHECK(watch_verdict(divert::error_code()) == std::nullopt);
  CHECK(watch_verdict(asio::error::eof) == true);
  CHECK(watch_verdict(asio::error::connection_reset) == false);
  CHECK(watch_verdict(asio::error::broken_pipe) == false);
  CHECK(watch_verdict(asio::error::operation_aborted) == false);
  CHECK(watch_verdict(asio::error::timed_out) == false);
}

// health_check/core.hpp — the checker's decisions (internal; sans-I/O): which
// targets to probe when, and what each result changes. The I/O shell
// (health_checker.cpp) passes the time in and performs the probes, so tests
// drive it with a fake clock.
//
// Targets are named by a key (the next proxy's canonical address) and get an
// id; set_targets() keeps the id, state and schedule of keys kept, so a result
// for a removed (or removed and re-added) target is recognised and dropped.
//
// Schedule: a new target is due at once. A probe taken at `now` makes the
// target due again at now + interval (+ a jitter drawn uniformly from
// [0, jitter], 0 by default), measured from the start of the previous probe;
// a target is never probed twice at once: while its probe is in flight it is
// not due, and when the probe outlasts the interval (timeout > interval) the
// next one is due as soon as it ends.
// Thread-safety: none; the shell serialises every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "divert/export.hpp"
#include "divert/health_check.hpp"
#include "health_check/rise_fall.hpp"

namespace divert::health {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// (DIVERT_EXPORT only so that the tests link against a shared build.)
class DIVERT_EXPORT CheckerCore {
 public:
  explicit CheckerCore(HealthCheckConfig cfg, std::chrono::milliseconds jitter = {},
                       std::uint64_t seed = 0);

  struct TargetsChange {
    std::vector<std::uint64_t> ids;      // one per key given, in order
    std::vector<std::uint64_t> removed;  // ids no longer targets (cancel their probes)
  };
  // Replaces the targets by key (duplicates: the first wins, the others share its id).
  TargetsChange set_targets(const std::vector<std::string>& keys, TimePoint now);

  // The targets due at `now`, in target order; each is marked in flight and
  // its next probe scheduled.
  std::vector<std::uint64_t> take_due(TimePoint now);
  // When the next target falls due (the earliest, not in flight); none when
  // every target is in flight or there is none.
  std::optional<TimePoint> next_wakeup() const;

  // The result of target `id`'s probe in flight. Returns the transition it
  // causes; none for an id that is no longer a target or has no probe in flight.
  Transition on_result(std::uint64_t id, bool success);

  // nullopt for an unknown id.
  std::optional<bool> up(std::uint64_t id) const;
  bool in_flight(std::uint64_t id) const;
  std::size_t size() const noexcept { return targets_.size(); }

 private:
  struct Entry {
    std::string key;
    std::uint64_t id;
    RiseFallTracker tracker;
    TimePoint due;
    bool in_flight = false;
  };
  Entry* find(std::uint64_t id);
  const Entry* find(std::uint64_t id) const;

  HealthCheckConfig cfg_;
  std::chrono::milliseconds jitter_;
  std::mt19937_64 rng_;
  std::uint64_t next_id_ = 1;
  std::vector<Entry> targets_;
};

}  // namespace divert::health

// health_check/rise_fall.hpp — one next proxy's up/down state from its probe
// results (internal; pure, no clock, no I/O).
//
// As HAProxy's `rise`/`fall`: while up, `fall` consecutive failures mark it
// down; while down, `rise` consecutive successes mark it up; a result of the
// other kind restarts the count. Each transition is reported once.
//
// Initial state: up, with no failure counted, so `fall` failures are needed to
// mark a fresh next proxy down. A connector that starts (or a next proxy that
// is added by a reload) then sends traffic at once instead of refusing it
// until `rise` probes have passed; a next proxy that is dead from the start is
// covered meanwhile by passive ejection, and marked down after `fall` probes.
// Thread-safety: none (the checker serialises its use).
#pragma once

#include <cstdint>

namespace divert::health {

enum class Transition : std::uint8_t { none, went_down, went_up };

class RiseFallTracker {
 public:
  // rise, fall >= 1 (HealthCheckConfig::validate); 0 is treated as 1.
  RiseFallTracker(std::uint32_t rise, std::uint32_t fall) noexcept
      : rise_(rise ? rise : 1), fall_(fall ? fall : 1) {}

  // One probe's result; returns the transition it causes, if any.
  Transition record(bool success) noexcept {
    if (success == up_) {  // confirms the current state
      streak_ = 0;
      return Transition::none;
    }
    if (++streak_ < (up_ ? fall_ : rise_)) return Transition::none;
    up_ = !up_;
    streak_ = 0;
    return up_ ? Transition::went_up : Transition::went_down;
  }

  bool up() const noexcept { return up_; }
  // Consecutive results against the current state so far (failures while up,
  // successes while down).
  std::uint32_t streak() const noexcept { return streak_; }

 private:
  std::uint32_t rise_;
  std::uint32_t fall_;
  std::uint32_t streak_ = 0;
  bool up_ = true;
};

}  // namespace divert::health

// The checker's decisions (health_check/core.hpp).
#include "health_check/core.hpp"

#include <algorithm>

namespace divert::health {

CheckerCore::CheckerCore(HealthCheckConfig cfg, std::chrono::milliseconds jitter,
                         std::uint64_t seed)
    : cfg_(cfg), jitter_(std::max(jitter, std::chrono::milliseconds(0))), rng_(seed) {}

CheckerCore::TargetsChange CheckerCore::set_targets(const std::vector<std::string>& keys,
                                                    TimePoint now) {
  TargetsChange change;
  std::vector<Entry> next;
  next.reserve(keys.size());
  for (const auto& key : keys) {
    auto same = [&](const Entry& e) { return e.key == key; };
    if (auto dup = std::find_if(next.begin(), next.end(), same); dup != next.end()) {
      change.ids.push_back(dup->id);
      continue;
    }
    if (auto old = std::find_if(targets_.begin(), targets_.end(), same); old != targets_.end()) {
      next.push_back(std::move(*old));
      old->key.clear();  // moved: not removed
      old->id = 0;
    } else {
      next.push_back(Entry{key, next_id_++, RiseFallTracker(cfg_.rise, cfg_.fall), now});
    }
    change.ids.push_back(next.back().id);
  }
  for (const auto& e : targets_)
    if (e.id != 0) change.removed.push_back(e.id);
  targets_ = std::move(next);
  return change;
}

std::vector<std::uint64_t> CheckerCore::take_due(TimePoint now) {
  std::vector<std::uint64_t> due;
  for (auto& e : targets_) {
    if (e.in_flight || e.due > now) continue;
    e.in_flight = true;
    auto next = now + cfg_.interval;
    if (jitter_.count() > 0) {
      std::uniform_int_distribution<std::int64_t> d(0, jitter_.count());
      next += std::chrono::milliseconds(d(rng_));
    }
    e.due = next;
    due.push_back(e.id);
  }
  return due;
}

std::optional<TimePoint> CheckerCore::next_wakeup() const {
  std::optional<TimePoint> wake;
  for (const auto& e : targets_)
    if (!e.in_flight && (!wake || e.due < *wake)) wake = e.due;
  return wake;
}

Transition CheckerCore::on_result(std::uint64_t id, bool success) {
  auto* e = find(id);
  if (e == nullptr || !e->in_flight) return Transition::none;
  e->in_flight = false;
  return e->tracker.record(success);
}

std::optional<bool> CheckerCore::up(std::uint64_t id) const {
  const auto* e = find(id);
  if (e == nullptr) return std::nullopt;
  return e->tracker.up();
}

bool CheckerCore::in_flight(std::uint64_t id) const {
  const auto* e = find(id);
  return e != nullptr && e->in_flight;
}

CheckerCore::Entry* CheckerCore::find(std::uint64_t id) {
  auto it = std::find_if(targets_.begin(), targets_.end(), [&](auto& e) { return e.id == id; });
  return it == targets_.end() ? nullptr : &*it;
}
const CheckerCore::Entry* CheckerCore::find(std::uint64_t id) const {
  return const_cast<CheckerCore*>(this)->find(id);
}

}  // namespace divert::health

#include "divert/net/happy_eyeballs_planner.hpp"

#include <algorithm>

#include "divert/asio/error.hpp"

#include "divert/error.hpp"

namespace divert::net {

using Kind = PlannerAction::Kind;

namespace {
PlannerAction action(Kind kind, AddressFamily family, std::size_t attempt = PlannerAction::npos,
                     asio::ip::address address = {}, error_code error = {}) {
  return PlannerAction{kind, family, attempt, address, error};
}
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

HappyEyeballsPlanner::HappyEyeballsPlanner(const ConnectOptions& options,
                                           std::uint64_t shuffle_seed)
    : happy_eyeballs_(options.happy_eyeballs.clamped()),
      tcp_connect_(options.tcp_connect),
      pick_(options.resolve_strategy.pick),
      allowed_{options.family_allowed(AddressFamily::ipv4),
               options.family_allowed(AddressFamily::ipv6)},
      rng_state_(shuffle_seed),
      preferred_(options.preferred_family()) {}

HappyEyeballsPlanner::Actions& HappyEyeballsPlanner::fresh() {
  out_.clear();
  return out_;
}

bool HappyEyeballsPlanner::awaiting(AddressFamily f) const {
  const auto& s = fam(f);
  return s.wanted && !s.answered;
}

bool HappyEyeballsPlanner::has_pending() const {
  return !families_[0].empty() || !families_[1].empty();
}

std::size_t HappyEyeballsPlanner::running_count() const {
  return static_cast<std::size_t>(std::count_if(attempts_.begin(), attempts_.end(),
                                                [](const Attempt& a) { return a.running; }));
}

const HappyEyeballsPlanner::Actions& HappyEyeballsPlanner::start(TimePoint) {
  Actions& out = fresh();
  if (phase_ != Phase::idle) return out;
  phase_ = Phase::resolving;
  // R1: every allowed family is asked at once; no query waits for another.
  for (AddressFamily f : {preferred_, other(preferred_)}) {
    if (!allowed_[f == AddressFamily::ipv6 ? 1 : 0]) continue;
    fam(f).wanted = true;
    out.push_back(action(Kind::resolve, f));
  }
  finish_if_exhausted(out);
  return out;
}

const HappyEyeballsPlanner::Actions& HappyEyeballsPlanner::start_with_address(
    const asio::ip::address& address, TimePoint now) {
  Actions& out = fresh();
  if (phase_ != Phase::idle) return out;
  phase_ = Phase::resolving;
  const AddressFamily f = address.is_v4() ? AddressFamily::ipv4 : AddressFamily::ipv6;
  if (!allowed_[f == AddressFamily::ipv6 ? 1 : 0]) {
    finish(std::make_error_code(std::errc::address_family_not_supported), PlannerAction::npos, out);
    return out;
  }
  auto& s = fam(f);
  s.wanted = true;
  s.answered = true;
  s.pending.assign(1, address);
  begin_connecting(now, out);
  return out;
}

const HappyEyeballsPlanner::Actions& HappyEyeballsPlanner::on_resolved(
    AddressFamily f, error_code error, std::vector<asio::ip::address> addresses, TimePoint now) {
  Actions& out = fresh();
  if (phase_ != Phase::resolving && phase_ != Phase::connecting) return out;
  auto& s = fam(f);
  if (!awaiting(f)) return out;  // late (given up on) or duplicate answer
  s.answered = true;
  s.error = error;
  if (!error) {
    const bool want_v4 = f == AddressFamily::ipv4;
    addresses.erase(
        std::remove_if(addresses.begin(), addresses.end(),
                       [&](const asio::ip::address& a) { return a.is_v4() != want_v4; }),
        addresses.end());
    // R6: pick order, then at most max_retry + 1 per family.
    if (pick_ == ResolveStrategy::Pick::Random)
      for (std::size_t i = addresses.size(); i > 1; --i)  // Fisher-Yates
        std::swap(addresses[i - 1], addresses[splitmix64(rng_state_) % i]);
    const std::size_t cap = tcp_connect_.max_retry + 1;
    if (addresses.size() > cap) addresses.resize(cap);
    s.pending = std::move(addresses);
    s.next = 0;
  }
  if (phase_ == Phase::resolving) {
    if (f == preferred_) {
      // R2: the preferred family answering starts connecting at once.
      if (has_pending()) begin_connecting(now, out);
    } else if (!s.empty()) {
      // R2: the other family answered first: wait resolution_delay for the
      // preferred one, unless it has already answered without addresses.
      if (!awaiting(preferred_) || happy_eyeballs_.resolution_delay.count() == 0)
        begin_connecting(now, out);
      else
        resolution_delay_until_ = now + happy_eyeballs_.resolution_delay;
    }
  } else {
    // R3/R7: late addresses join the list; they start at once if nothing runs.
    pump(now, false, out);
  }
  finish_if_exhausted(out);
  update_second_deadline(now);
  return out;
}

const HappyEyeballsPlanner::Actions& HappyEyeballsPlanner::on_attempt_done(std::size_t attempt,
                                                                           error_code error,
                                                                           TimePoint now) {
  Actions& out = fresh();
  if (phase_ != Phase::connecting || attempt >= attempts_.size() || !attempts_[attempt].running)
    return out;
  auto& a = attempts_[attempt];
  a.running = false;
  if (!error) {
    finish({}, attempt, out);  // R4: first success wins, others cancelled
    return out;
  }
  a.error = error;
  pump(now, true, out);  // R4: a failure starts the next attempt at once
  finish_if_exhausted(out);
  update_second_deadline(now);
  return out;
}

const HappyEyeballsPlanner::Actions& HappyEyeballsPlanner::on_timer(TimePoint now) {
  Actions& out = fresh();
  if (phase_ != Phase::resolving && phase_ != Phase::connecting) return out;
  if (second_deadline_ && now >= *second_deadline_) {
    second_deadline_.reset();
    for (auto& s : families_) {
      if (s.wanted && !s.answered) {
        s.answered = true;
        s.given_up = true;
      }
    }
  }
  if (phase_ == Phase::resolving) {
    if (resolution_delay_until_ && now >= *resolution_delay_until_)
      begin_connecting(now, out);
    else if (has_pending() && !awaiting(preferred_))
      begin_connecting(now, out);
    finish_if_exhausted(out);
    update_second_deadline(now);
    return out;
  }
  bool failed = false;
  for (std::size_t i = 0; i < attempts_.size(); ++i) {
    auto& a = attempts_[i];
    if (a.running && now >= a.deadline) {  // R5
      a.running = false;
      a.error = asio::error::timed_out;
      out.push_back(action(Kind::cancel, a.family, i));
      failed = true;
    }
  }
  pump(now, failed, out);
  finish_if_exhausted(out);
  update_second_deadline(now);
  return out;
}

std::optional<HappyEyeballsPlanner::TimePoint> HappyEyeballsPlanner::next_wakeup() const {
  std::optional<TimePoint> t;
  auto consider = [&t](TimePoint p) {
    if (!t || p < *t) t = p;
  };
  if (phase_ != Phase::resolving && phase_ != Phase::connecting) return t;
  if (second_deadline_) consider(*second_deadline_);
  if (phase_ == Phase::resolving) {
    if (resolution_delay_until_) consider(*resolution_delay_until_);
    return t;
  }
  std::size_t running = 0;
  for (const auto& a : attempts_) {
    if (a.running) {
      consider(a.deadline);
      ++running;
    }
  }
  if (running > 0 && has_pending() && last_attempt_at_)
    consider(*last_attempt_at_ + happy_eyeballs_.connection_attempt_delay);
  return t;
}

void HappyEyeballsPlanner::update_second_deadline(TimePoint now) {
  // R7 (g3's divert_tcp, RFC 8305): the clock runs only while a family is
  // still awaited after an answer and there is nothing else to do: no attempt
  // running and no address left. Until then a late answer simply joins.
  const bool some_answered = (families_[0].wanted && families_[0].answered) ||
                             (families_[1].wanted && families_[1].answered);
  const bool waiting = awaiting(AddressFamily::ipv4) || awaiting(AddressFamily::ipv6);
  const bool idle = (phase_ == Phase::resolving || phase_ == Phase::connecting) &&
                    running_count() == 0 && !has_pending();
  if (some_answered && waiting && idle) {
    if (!second_deadline_) second_deadline_ = now + happy_eyeballs_.second_resolution_timeout;
  } else {
    second_deadline_.reset();
  }
}

void HappyEyeballsPlanner::begin_connecting(TimePoint now, Actions& out) {
  phase_ = Phase::connecting;
  resolution_delay_until_.reset();
  first_family_ = fam(preferred_).empty() ? other(preferred_) : preferred_;
  pump(now, true, out);
}

void HappyEyeballsPlanner::pump(TimePoint now, bool failure, Actions& out) {
  if (phase_ != Phase::connecting || !has_pending()) return;
  const bool due =
      failure || running_count() == 0 ||
      (last_attempt_at_ && now >= *last_attempt_at_ + happy_eyeballs_.connection_attempt_delay);
  if (due) start_attempt(now, out);
}

void HappyEyeballsPlanner::start_attempt(TimePoint now, Actions& out) {
  // R3: first_address_family_count of the first family, then alternate.
  AddressFamily f = *first_family_;
  if (first_family_started_ < happy_eyeballs_.first_address_family_count && !fam(f).empty()) {
    // keep f
  } else if (last_family_ && !fam(other(*last_family_)).empty()) {
    f = other(*last_family_);
  } else if (last_family_ && !fam(*last_family_).empty()) {
    f = *last_family_;
  } else {
    f = !fam(preferred_).empty() ? preferred_ : other(preferred_);
  }
  auto& s = fam(f);
  asio::ip::address address = s.pending[s.next++];
  if (f == *first_family_) ++first_family_started_;
  last_family_ = f;
  last_attempt_at_ = now;
  attempts_.push_back({f, address, now + tcp_connect_.each_timeout, true, {}});
  out.push_back(action(Kind::connect, f, attempts_.size() - 1, address));
}

void HappyEyeballsPlanner::finish_if_exhausted(Actions& out) {
  if (phase_ == Phase::done || phase_ == Phase::idle) return;
  if (running_count() > 0 || has_pending()) return;
  if (awaiting(AddressFamily::ipv4) || awaiting(AddressFamily::ipv6)) return;  // R7
  // R8: the most telling error.
  if (!attempts_.empty()) {
    std::size_t timed_out = PlannerAction::npos;
    for (std::size_t i = 0; i < attempts_.size(); ++i) {
      const auto& e = attempts_[i].error;
      if (e == asio::error::timed_out) {
        timed_out = i;
        continue;
      }
      if (e) {
        finish(e, i, out);
        return;
      }
    }
    finish(asio::error::timed_out, timed_out, out);
    return;
  }
  error_code e = fam(preferred_).error;
  if (!e) e = fam(other(preferred_)).error;
  if (!e) e = errc::resolve_failed;
  finish(e, PlannerAction::npos, out);
}

void HappyEyeballsPlanner::finish(error_code error, std::size_t attempt, Actions& out) {
  for (std::size_t i = 0; i < attempts_.size(); ++i) {
    auto& a = attempts_[i];
    if (a.running && i != attempt) {
      a.running = false;
      out.push_back(action(Kind::cancel, a.family, i));
    }
  }
  phase_ = Phase::done;
  resolution_delay_until_.reset();
  second_deadline_.reset();
  out.push_back(action(Kind::done, AddressFamily::ipv4, attempt, {}, error));
}

}  // namespace divert::net

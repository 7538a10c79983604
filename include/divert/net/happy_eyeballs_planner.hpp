// divert/net/happy_eyeballs_planner.hpp — the happy-eyeballs (RFC 8305)
// decision logic as a pure state machine: no sockets, no timers, no clock.
//
// The driver feeds events (a family's answer, an attempt's result, "the time
// is now T") and performs the actions returned: ask a resolver, start or
// cancel a connect attempt, finish. After each event it arms one timer at
// next_wakeup() and calls on_timer() when it fires (early or spurious calls
// are harmless). All times are passed in, so tests use a fake clock.
//
// Rules (RFC 8305 with g3proxy divert_tcp's knobs, HappyEyeballsConfig):
//  R1 both allowed families are queried at once, at start (§3);
//  R2 the preferred family answering first starts connecting at once; the
//     other family answering first waits resolution_delay for the preferred
//     one (a delay of the connect, never of a query) (§3);
//  R3 first_address_family_count addresses of the first family, then the
//     families alternate; late answers join the remaining list (§4);
//  R4 the next attempt starts connection_attempt_delay after the previous
//     one, or at once when any attempt fails; older attempts keep running;
//     the first success wins and every other attempt is cancelled (§5);
//  R5 each attempt is bounded by tcp_connect.each_timeout (timed_out);
//  R6 at most tcp_connect.max_retry + 1 addresses per family are used, in
//     resolve_strategy.pick order (Random: shuffled with the seed given);
//  R7 while an attempt runs or an address is left, the other family's answer
//     is awaited without a deadline and joins the list when it comes; once
//     nothing runs and nothing is left, it is awaited up to
//     second_resolution_timeout from that moment, then given up (g3's
//     divert_tcp; RFC 8305 §3);
//  R8 with no winner the result is the most telling error: the first attempt
//     error other than a timeout, else timed_out; with no address at all the
//     resolver's error (preferred family first), else errc::resolve_failed.
// Thread-safety: none; one planner per connect, used from one strand.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>
#include <vector>

#include "divert/asio/ip/address.hpp"

#include "divert/export.hpp"
#include "divert/net/options.hpp"

namespace divert::net {

struct PlannerAction {
  enum class Kind : std::uint8_t {
    resolve,  // query `family`
    connect,  // start attempt `attempt` to `address`
    cancel,   // close attempt `attempt` (timed out, or lost the race)
    done,     // finished: `error` empty => `attempt` won; else `attempt` is the
              // attempt whose error is reported (npos when none)
  };
  Kind kind;
  AddressFamily family{AddressFamily::ipv4};
  std::size_t attempt{npos};
  asio::ip::address address;
  error_code error;

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
};

class DIVERT_EXPORT HappyEyeballsPlanner {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  // Every event returns the actions to perform, in order. The reference
  // stays valid until the next event (the planner reuses one buffer).
  using Actions = std::vector<PlannerAction>;

  // `options` must have passed validate(); the planner keeps what it needs.
  // `shuffle_seed` feeds the Random pick.
  explicit HappyEyeballsPlanner(const ConnectOptions& options, std::uint64_t shuffle_seed = 0);

  // Starts resolving the host (R1).
  const Actions& start(TimePoint now);
  // Starts with a known address (an IP literal): no resolution. Fails with
  // address_family_not_supported when its family is not allowed.
  const Actions& start_with_address(const asio::ip::address& address, TimePoint now);

  // A family's answer. Ignored when not awaited any more.
  const Actions& on_resolved(AddressFamily family, error_code error,
                             std::vector<asio::ip::address> addresses, TimePoint now);
  // An attempt's result (empty error = connected). Ignored for attempts that
  // are no longer running (already timed out or cancelled) and after done.
  const Actions& on_attempt_done(std::size_t attempt, error_code error, TimePoint now);
  // Time passed; handles every deadline <= now.
  const Actions& on_timer(TimePoint now);

  // Earliest time on_timer() has work to do; nullopt when none (or done).
  std::optional<TimePoint> next_wakeup() const;

  bool done() const noexcept { return phase_ == Phase::done; }
  std::size_t attempts_started() const noexcept { return attempts_.size(); }
  // Address of an attempt started so far.
  const asio::ip::address& attempt_address(std::size_t attempt) const {
    return attempts_.at(attempt).address;
  }

 private:
  enum class Phase : std::uint8_t { idle, resolving, connecting, done };
  struct FamilyState {
    bool wanted = false;    // queried and still awaited or answered
    bool answered = false;  // answer received (or given up on)
    bool given_up = false;  // second_resolution_timeout hit
    error_code error;
    std::vector<asio::ip::address> pending;  // not tried yet: [next, end)
    std::size_t next = 0;
    bool empty() const noexcept { return next >= pending.size(); }
  };
  struct Attempt {
    AddressFamily family;
    asio::ip::address address;
    TimePoint deadline;
    bool running = true;
    error_code error;
  };

  FamilyState& fam(AddressFamily f) { return families_[f == AddressFamily::ipv6 ? 1 : 0]; }
  const FamilyState& fam(AddressFamily f) const {
    return families_[f == AddressFamily::ipv6 ? 1 : 0];
  }
  static AddressFamily other(AddressFamily f) {
    return f == AddressFamily::ipv4 ? AddressFamily::ipv6 : AddressFamily::ipv4;
  }
  Actions& fresh();
  bool awaiting(AddressFamily f) const;
  bool has_pending() const;
  std::size_t running_count() const;
  void begin_connecting(TimePoint now, Actions& out);
  void start_attempt(TimePoint now, Actions& out);
  void pump(TimePoint now, bool failure, Actions& out);
  void finish_if_exhausted(Actions& out);
  void update_second_deadline(TimePoint now);
  void finish(error_code error, std::size_t attempt, Actions& out);

  // Only what the planner needs (kept small: one planner per connect).
  HappyEyeballsConfig happy_eyeballs_;
  TcpConnectConfig tcp_connect_;
  ResolveStrategy::Pick pick_;
  bool allowed_[2];
  std::uint64_t rng_state_;  // splitmix64: cheap to seed, enough for shuffling
  Phase phase_ = Phase::idle;
  AddressFamily preferred_;
  FamilyState families_[2];
  std::optional<TimePoint> resolution_delay_until_;
  std::optional<TimePoint> second_deadline_;
  std::optional<TimePoint> last_attempt_at_;
  std::optional<AddressFamily> first_family_;
  std::size_t first_family_started_ = 0;
  std::optional<AddressFamily> last_family_;
  std::vector<Attempt> attempts_;
  Actions out_;
};

}  // namespace divert::net

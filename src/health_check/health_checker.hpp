// health_check/health_checker.hpp — the active health checker (internal).
//
// Probes each target every `interval` (see divert/health_check.hpp for what a
// probe is and when it succeeds); `fall` consecutive failures report
// on_change(false), `rise` consecutive successes on_change(true). Targets
// start up (no call until a transition).
//
// The pure parts are tested without sockets: RiseFallTracker (rise_fall.hpp)
// and CheckerCore (core.hpp: the schedule); probe.hpp is the one-probe I/O shell.
//
// Probes run on a strand of `ex` (a multi-threaded io_context is fine).
// Thread-safety: set_targets() and stop() may be called from any thread,
// concurrently. on_change is invoked on that strand, under the checker's lock
// (never two at once, never after stop() has returned): it must not call
// set_targets() or stop() itself (post them instead).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "divert/asio/any_io_executor.hpp"

#include "divert/export.hpp"
#include "divert/health_check.hpp"
#include "divert/logger.hpp"
#include "divert/metrics.hpp"
#include "divert/net/options.hpp"
#include "divert/net/resolver.hpp"
#include "divert/upstream.hpp"

namespace divert::health {

struct Target {
  UpstreamAddr addr;                       // the next proxy, as configured
  std::function<void(bool up)> on_change;  // a transition (never repeated)
};

// (DIVERT_EXPORT only so that the tests link against a shared build.)
class DIVERT_EXPORT HealthChecker {
 public:
  // `cfg` must have passed validate() (cfg.enabled is not looked at: the
  // owner creates a checker only when enabled); `connect` is the connector's (its
  // tcp_connect.each_timeout is replaced by cfg.timeout); `resolver` is
  // required iff a target is a domain. `metrics_or_null` is not used for
  // counters (metrics.hpp is the connector's contract): reserved. `logger`
  // gets each transition (warn: down, info: up) and each failed probe (debug).
  HealthChecker(asio::any_io_executor ex, HealthCheckConfig cfg, net::ConnectOptions connect,
                std::shared_ptr<net::Resolver> resolver, Metrics* metrics_or_null,
                Logger logger = {});
  // Stops (as stop()).
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Replaces the targets. A target whose canonical address (to_string()) was
  // already there keeps its rise/fall state and schedule; new ones start up
  // and are probed at once; removed ones are no longer probed (a probe in
  // flight is cancelled, its result dropped). No-op after stop().
  void set_targets(std::vector<Target> targets);

  // Cancels every pending probe and the timer (through the strand: sockets
  // close as their probes complete, at once when called on the strand, else
  // when the executor runs next); no on_change once it has returned.
  // Idempotent; the destructor calls it.
  void stop();

 private:
  struct State;
  std::shared_ptr<State> s_;
};

}  // namespace divert::health

// The active health checker's I/O shell (health_check/health_checker.hpp):
// performs health::CheckerCore's decisions with a timer and probe().
#include "health_check/health_checker.hpp"

#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "divert/asio/bind_cancellation_slot.hpp"
#include "divert/asio/cancellation_signal.hpp"
#include "divert/asio/co_spawn.hpp"
#include "divert/asio/dispatch.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/strand.hpp"

#include "health_check/core.hpp"
#include "health_check/probe.hpp"

namespace divert::health {

struct HealthChecker::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor ex, HealthCheckConfig cfg, ProbeOptions probe_options, Logger log)
      : strand(asio::make_strand(ex)),
        timer(strand),
        core(cfg),
        options(std::move(probe_options)),
        logger(std::move(log)) {}

  asio::strand<asio::any_io_executor> strand;
  // Used on the strand only.
  asio::steady_timer timer;
  std::map<std::uint64_t, std::shared_ptr<asio::cancellation_signal>> probes;  // in flight

  std::mutex m;  // guards the members below, and on_change calls
  bool stopped = false;
  CheckerCore core;
  std::map<std::uint64_t, Target> targets;  // by the core's id

  const ProbeOptions options;
  const Logger logger;

  // On the strand: starts the probes due and arms the timer for the next.
  void wake() {
    std::vector<std::pair<std::uint64_t, UpstreamAddr>> due;
    std::optional<TimePoint> next;
    {
      std::lock_guard lock(m);
      if (stopped) return;
      for (auto id : core.take_due(Clock::now())) due.emplace_back(id, targets.at(id).addr);
      next = core.next_wakeup();
    }
    for (auto& [id, addr] : due) start_probe(id, std::move(addr));
    if (next) {
      timer.expires_at(*next);  // cancels the wait armed before (its handler sees aborted)
      timer.async_wait([self = shared_from_this()](divert::error_code ec) {
        if (!ec) self->wake();
      });
    }
  }

  void start_probe(std::uint64_t id, UpstreamAddr addr) {
    auto signal = std::make_shared<asio::cancellation_signal>();
    probes[id] = signal;
    asio::co_spawn(
        strand, probe(addr, options),
        asio::bind_cancellation_slot(signal->slot(), [self = shared_from_this(), id, signal, addr](
                                                         std::exception_ptr e, ProbeResult r) {
          if (e) r = ProbeResult{};  // probe() does not throw for I/O; count it as failed
          self->probe_done(id, signal, addr, r);
        }));
  }

  void probe_done(std::uint64_t id, const std::shared_ptr<asio::cancellation_signal>& signal,
                  const UpstreamAddr& addr, const ProbeResult& r) {
    if (auto it = probes.find(id); it != probes.end() && it->second == signal) probes.erase(it);
    {
      std::lock_guard lock(m);
      if (stopped) return;
      const auto t = core.on_result(id, r.ok);
      if (!r.ok)
        logger.logf(LogLevel::debug, "", "health check of next proxy {} failed at {}: {}",
                    addr.to_string(), to_string(r.stage), r.error.message());
      if (t != Transition::none) {
        const bool up = t == Transition::went_up;
        if (up)
          logger.logf(LogLevel::info, "", "health check: next proxy {} is up", addr.to_string());
        else
          logger.logf(LogLevel::warn, "", "health check: next proxy {} is down ({} at {})",
                      addr.to_string(), r.error.message(), to_string(r.stage));
        if (auto it = targets.find(id); it != targets.end() && it->second.on_change)
          it->second.on_change(up);
      }
    }
    wake();
  }

  // On the strand.
  void cancel(const std::vector<std::uint64_t>& ids) {
    for (auto id : ids) {
      if (auto it = probes.find(id); it != probes.end()) {
        auto signal = it->second;
        probes.erase(it);
        signal->emit(asio::cancellation_type::terminal);
      }
    }
  }
};

HealthChecker::HealthChecker(asio::any_io_executor ex, HealthCheckConfig cfg,
                             net::ConnectOptions connect, std::shared_ptr<net::Resolver> resolver,
                             Metrics* /*metrics_or_null*/, Logger logger)
    : s_(std::make_shared<State>(std::move(ex), cfg,
                                 ProbeOptions{cfg.timeout, std::move(connect), std::move(resolver)},
                                 std::move(logger))) {}

HealthChecker::~HealthChecker() {
  stop();
}

void HealthChecker::set_targets(std::vector<Target> targets) {
  std::vector<std::string> keys;
  keys.reserve(targets.size());
  for (const auto& t : targets) keys.push_back(t.addr.to_string());
  std::vector<std::uint64_t> removed;
  {
    std::lock_guard lock(s_->m);
    if (s_->stopped) return;
    auto change = s_->core.set_targets(keys, Clock::now());
    std::map<std::uint64_t, Target> by_id;
    for (std::size_t i = 0; i < targets.size(); ++i)
      by_id.try_emplace(change.ids[i], std::move(targets[i]));  // a duplicate: the first wins
    s_->targets = std::move(by_id);
    removed = std::move(change.removed);
  }
  asio::dispatch(s_->strand, [self = s_, removed = std::move(removed)] {
    self->cancel(removed);
    self->wake();
  });
}

void HealthChecker::stop() {
  {
    std::lock_guard lock(s_->m);
    if (s_->stopped) return;
    s_->stopped = true;
    s_->targets.clear();
  }
  asio::dispatch(s_->strand, [self = s_] {
    self->timer.cancel();
    std::vector<std::uint64_t> ids;
    for (auto& [id, signal] : self->probes) ids.push_back(id);
    self->cancel(ids);
  });
}

}  // namespace divert::health

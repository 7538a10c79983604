// connector/core.hpp — the connector's decisions as a pure state machine
// (internal): no sockets, no timers, no clock. DivertTcpConnector::State::
// connect() is the thin I/O shell that drives it.
//
// The driver feeds events (a next proxy connected or failed, the header was
// written or not, the status reply came or not) with the time they happened,
// and performs the actions returned, in order: count a metric, write a log
// line, connect to candidate `proxy`, write header() and the task's initial
// data, read the 8-byte status reply before `deadline`, done. At most one
// I/O action (connect, write_header, read_status_reply) is returned per
// event and its result is the next event; `done` ends the connect. All
// times are passed in, so tests use a fake clock.
//
// Rules:
//  C1 candidates come from the selector in its failover order for the task's
//     pick key (formatted only for the hashing policies); with more than one
//     next proxy, unusable ones (ejected, or marked down) are left out unless
//     all are (then all are tried as if none were); one next proxy is always
//     tried. At most proxy_failover + 1 candidates are tried.
//  C2 each candidate tried counts escaper.connection.attempt and
//     escaper.tcp.connect.attempt once; a failure counts
//     escaper.tcp.connect.timeout when it timed out, else .error; the
//     establish/success counters count once, when the stream is handed back
//     (or the next proxy reported an upstream failure, see C6).
//  C3 a next-proxy failure (connect, header write, bad or missing status
//     reply) feeds passive ejection (ProxyHealth) and moves to the next
//     candidate; the result is the last candidate's error, or
//     errc::no_next_proxy_available when none was tried.
//  C4 a header the encoder refuses is reported before anything is
//     connected: ppv2::errc::invalid_tlv_value for a forbidden value (a NUL
//     or invalid UTF-8 in the username), else errc::header_too_large.
//  C5 operation_aborted (cancellation) ends the connect at once with that
//     code; it is not a next proxy's failure (no error metric, no ejection).
//  C6 with next_proxy_status_reply the header carries 0xE7 and, once written,
//     the 8-byte reply is read under tcp_connect.each_timeout. A reply that
//     is not one (wrong magic or reserved byte, early close, read error,
//     silence until the deadline) is errc::bad_status_reply and a next-proxy
//     failure (C3: ejection, failover). But when the task has initial data
//     it ends the connect with that error: the data went out with the header
//     and may already be at the upstream (a receiver that ignores 0xE7
//     forwards it at once; a divert receiver after its reply, which can
//     arrive after the deadline), so another next proxy would deliver it a
//     second time. Status 0 hands the stream back. Any
//     other status is the upstream's failure, reported as
//     ppv2::to_error_code(status) (divert::errc::upstream_*): the next proxy
//     worked (its failure count is reset, its establish counted, not
//     connection.establish) and no other next proxy is tried (it would reach
//     the same upstream).
//  C7 each escaper.tcp.connect.{attempt,establish,error,timeout} counted
//     (C2, C6) is also counted for the next proxy it concerns (a
//     proxy_metric action: ProxyCounter attempt, establish, error, timeout),
//     so a next proxy's counters add up to the connector's.
// Thread-safety: a ConnectCore is one connect's state, used from one strand.
// ProxyHealth is shared by every connect of a connector: lock-free atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>
#include "divert/asio/ip/address.hpp"

#include "divert/connector.hpp"
#include "divert/export.hpp"
#include "divert/metrics.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/status_reply.hpp"
#include "divert/select/upstream_selector.hpp"

namespace divert::connector {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// One next proxy's state, shared by every connect (and thread) and kept
// across reconfigure() while its canonical address stays: passive ejection,
// the `down` mark of active health checks, its counters and its attempts in
// progress. Lock-free atomics (relaxed: each value is exact on its own; they
// are not read together as one picture).
struct ProxyState {
  std::atomic<std::uint32_t> failures{0};
  std::atomic<std::int64_t> ejected_until_ns{0};  // TimePoint's ticks since its epoch
  std::atomic<bool> down{false};
  std::array<std::atomic<std::uint64_t>, kProxyCounterCount> counters{};  // by ProxyCounter
  std::atomic<std::uint64_t> in_flight{0};  // attempts on it in progress
};

// The state of each next proxy of one configuration, by index in proxy_addr:
// the passive-ejection state, and a `down` mark an active health check sets
// that selection treats as ejection, and the per-next-proxy counters.
// carried_to() makes the table of a new configuration that shares the
// ProxyState of every address kept (so connects still running on the old
// configuration and new ones update the same state).
// (DIVERT_EXPORT only so that the tests link against a shared build.)
class DIVERT_EXPORT ProxyHealth {
 public:
  // `proxies` fresh entries (all usable, counters at zero).
  explicit ProxyHealth(std::size_t proxies);
  // One fresh entry per next proxy of `proxies`, keyed by its canonical address.
  explicit ProxyHealth(const std::vector<WeightedUpstreamAddr>& proxies);
  // The table for `proxies`: an address this table has (same canonical
  // address, whatever its weight or index) shares its entry; a new one gets a
  // fresh entry; the ejection total carries on.
  ProxyHealth carried_to(const std::vector<WeightedUpstreamAddr>& proxies) const;

  std::size_t size() const noexcept { return entries_.size(); }
  // The entry of next proxy `i` (kept alive by this table; shared by the
  // tables carried from it while its address stays).
  const std::shared_ptr<ProxyState>& entry(std::size_t i) const noexcept { return entries_[i]; }
  // Ejected until a time after `now`.
  bool ejected(std::size_t i, TimePoint now) const noexcept;
  // Marked down (by a health check); stays so until marked up.
  bool down(std::size_t i) const noexcept {
    return entries_[i]->down.load(std::memory_order_relaxed);
  }
  void set_down(std::size_t i, bool down) noexcept {
    entries_[i]->down.store(down, std::memory_order_relaxed);
  }
  // Neither ejected nor down: selection may pick it.
  bool usable(std::size_t i, TimePoint now) const noexcept { return !down(i) && !ejected(i, now); }

  struct Failure {
    std::uint32_t consecutive = 0;  // failures counted in a row, this one included
    bool ejected = false;           // this failure ejected it (it was not ejected already)
  };
  // One more consecutive failure; at `eject_after` (0: never) the proxy is
  // ejected until now + `eject_for` and its count starts again.
  Failure record_failure(std::size_t i, std::uint32_t eject_after,
                         std::chrono::nanoseconds eject_for, TimePoint now) noexcept;
  // The proxy worked: its failure count and ejection are cleared.
  void record_success(std::size_t i) noexcept;
  // Ejections so far (a proxy ejected again while ejected is not counted twice).
  std::uint64_t ejections() const noexcept { return ejections_->load(std::memory_order_relaxed); }

  // The per-next-proxy counters.
  void count(std::size_t i, ProxyCounter c, std::uint64_t n = 1) noexcept {
    entries_[i]->counters[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t counter(std::size_t i, ProxyCounter c) const noexcept {
    return entries_[i]->counters[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  }
  // Next proxy `i`'s snapshot at `now` (label: its canonical address, as configured).
  ProxyMetricsSnapshot snapshot(std::size_t i, std::string label, TimePoint now) const;

  // One attempt on a next proxy in progress while it lives (its in_flight gauge).
  class InFlight {
   public:
    explicit InFlight(std::shared_ptr<ProxyState> e) : e_(std::move(e)) {
      e_->in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    ~InFlight() { e_->in_flight.fetch_sub(1, std::memory_order_relaxed); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    std::shared_ptr<ProxyState> e_;
  };

 private:
  ProxyHealth(std::vector<std::shared_ptr<ProxyState>> entries, std::vector<std::string> keys,
              std::shared_ptr<std::atomic<std::uint64_t>> ejections)
      : entries_(std::move(entries)), keys_(std::move(keys)), ejections_(std::move(ejections)) {}
  std::vector<std::shared_ptr<ProxyState>> entries_;
  std::vector<std::string> keys_;  // canonical addresses (empty: an unkeyed table)
  std::shared_ptr<std::atomic<std::uint64_t>> ejections_;
};

struct ConnectAction {
  enum class Kind : std::uint8_t {
    metric,             // metrics.add(counter, amount)
    proxy_metric,       // next proxy `proxy`'s counter `proxy_counter` += 1 (ProxyHealth::count)
    connect_latency,    // metrics.record_connect_latency(latency)
    log,                // logger.log(level, text, task id)
    connect,            // connect to next proxy `proxy` (the previous stream, if any, is closed)
    write_header,       // write header() then the initial data, in one write, to `proxy`
    read_status_reply,  // read exactly ppv2::kStatusReplySize bytes from `proxy` before `deadline`
    done,               // finished: `error` empty => hand back the stream to `proxy`;
                        // else fail with `error` (`proxy`: the next proxy that
                        // reported an upstream failure, else npos)
  };
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  Kind kind = Kind::done;
  std::size_t proxy = npos;
  MetricsCounter counter = MetricsCounter::task_total;
  ProxyCounter proxy_counter = ProxyCounter::attempt;
  std::uint64_t amount = 0;
  std::chrono::nanoseconds latency{0};
  TimePoint deadline{};
  LogLevel level = LogLevel::debug;
  std::string text;
  error_code error;
};

// What one connect is asked to do. `task` and `tls_name` are read by start() only.
struct ConnectRequest {
  const Task& task;
  const std::string* tls_name = nullptr;  // 0xE1 (https forward); null: none
  TaskId task_id;
};

class DIVERT_EXPORT ConnectCore {
 public:
  using Actions = std::vector<ConnectAction>;

  // `cfg`, `selector` and `health` must outlive the core.
  ConnectCore(const ConnectorConfig& cfg, const UpstreamSelector& selector, ProxyHealth& health);

  // Every event returns the actions to perform, in order; the reference
  // stays valid until the next event. Events for a proxy other than the one
  // being tried, or after done, are ignored (no action).
  const Actions& start(const ConnectRequest& request, TimePoint now);
  // The TCP connection to `proxy` is up; `peer` is the address it reached.
  const Actions& on_connected(std::size_t proxy, const asio::ip::address& peer, TimePoint now);
  // Connecting failed (a timeout is asio::error::timed_out); `option` names
  // the socket option that failed, when one did (else null).
  const Actions& on_connect_failed(std::size_t proxy, error_code ec, const char* option,
                                   TimePoint now);
  const Actions& on_header_written(std::size_t proxy, TimePoint now);
  const Actions& on_header_write_failed(std::size_t proxy, error_code ec, TimePoint now);
  // The reply's 8 bytes.
  const Actions& on_status_reply(std::size_t proxy,
                                 std::span<const std::uint8_t, ppv2::kStatusReplySize> bytes,
                                 TimePoint now);
  // Reading the reply failed (asio::error::eof: closed before 8 bytes).
  const Actions& on_status_reply_failed(std::size_t proxy, error_code ec, TimePoint now);
  // No reply by the read_status_reply action's deadline.
  const Actions& on_status_reply_timed_out(std::size_t proxy, TimePoint now);

  // The encoded header (valid after a start() that did not fail).
  std::span<const std::uint8_t> header() const noexcept { return header_.bytes(); }
  // The candidates, in the order tried (valid after start()).
  const std::vector<std::size_t>& candidates() const noexcept { return candidates_; }
  bool done() const noexcept { return phase_ == Phase::done; }

 private:
  enum class Phase : std::uint8_t { idle, connecting, writing, reading_reply, done };
  Actions& fresh();
  bool current(std::size_t proxy, Phase phase) const noexcept {
    return phase_ == phase && proxy == proxy_;
  }
  void metric(MetricsCounter c, std::uint64_t n, Actions& out) const;
  void connect_metric(MetricsCounter c, Actions& out) const;
  template <class... Args>
  void log(LogLevel level, Actions& out, fmt::format_string<Args...> format, Args&&... args) const;
  void choose_candidates(const Task& task, TimePoint now);
  void try_next(TimePoint now, Actions& out);
  void next_proxy_failed(error_code ec, MetricsCounter counter, std::string_view what,
                         TimePoint now, Actions& out);
  // next_proxy_failed without the failover: metrics, log, passive ejection.
  void record_failure(error_code ec, MetricsCounter counter, std::string_view what, TimePoint now,
                      Actions& out);
  // C6: a bad or missing status reply: as next_proxy_failed, but with initial
  // data the connect ends here (no failover, see C6).
  void bad_status_reply(MetricsCounter counter, std::string_view what, TimePoint now, Actions& out);
  bool cancelled(error_code ec, Actions& out);
  void succeed(Actions& out);
  void finish(error_code ec, std::size_t proxy, Actions& out);

  const ConnectorConfig& cfg_;
  const UpstreamSelector& selector_;
  ProxyHealth& health_;
  Phase phase_ = Phase::idle;
  ppv2::HeaderBuffer header_;
  std::string upstream_;               // for log lines
  std::size_t initial_data_size_ = 0;  // escaper.traffic.out.bytes on success
  std::vector<std::size_t> candidates_;
  std::size_t next_ = 0;                     // next candidate to try
  std::size_t proxy_ = ConnectAction::npos;  // the one being tried
  TimePoint attempt_started_{};
  asio::ip::address peer_;
  error_code last_error_;
  Actions out_;
};

}  // namespace divert::connector

// divert/metrics.hpp — the connector's counters (names as g3proxy divert_tcp's escaper
// metrics), a connect-latency histogram, snapshots, a visitor for exporters and
// an example StatsD formatter.
//
// Names (MetricsCounter -> text):
//   escaper.task.total, escaper.connection.attempt, escaper.connection.establish,
//   escaper.tcp.connect.{attempt,establish,success,error,timeout},
//   escaper.traffic.in.bytes  (bytes received from the next proxy, i.e. download),
//   escaper.traffic.out.bytes (bytes sent to the next proxy, i.e. upload),
//   escaper.tls.handshake.{error,timeout} (https forward: the TLS handshake
//   with the upstream failed, or did not finish within tls_handshake_timeout).
// Histogram escaper.tcp.connect.duration_us: fixed log2 buckets in microseconds,
//   upper bounds 1, 2, 4, ... 2^25 us (about 33.5 s) plus +Inf (kLatencyBuckets).
//   The visitor reports it Prometheus-style: cumulative `.bucket` values with a
//   tag le=<bound> ("+Inf" last), then `.count` and `.sum` (microseconds).
// Tags: every metric carries escaper=<escaper name> first, then the extra tags
//   in name order. Tag names and values are non-empty and made of
//   [A-Za-z0-9-_./] plus non-ASCII letters (any well-formed multi-byte UTF-8
//   sequence is accepted as a letter; we do not ship Unicode tables). The name
//   "escaper" is reserved. Violations throw config_error with key
//   "extra_metrics_tags" (or "escaper" for a bad escaper name).
// Per next proxy (ProxyCounter -> text, series labelled next_proxy=<address>):
//   escaper.next_proxy.{attempt,establish,error,timeout}: connect attempts to
//   that next proxy, connections established (PROXY header written), failed
//   connects, connects that timed out. Metrics itself does not store them: the
//   connector does, and DivertTcpConnector::metrics_snapshot() fills
//   MetricsSnapshot::proxies (Metrics::snapshot() leaves it empty).
// Gauges: relays_open (relays running with these metrics, see
//   RelayOptions::metrics), connects_in_flight (connects in progress, all next
//   proxies); per proxy: up (0 while an active health check marks it down),
//   ejected (1 while passive ejection is in force), connects_in_flight.
// Thread-safety: Metrics counters and gauges are lock-free atomics (relaxed);
//   add(), record_connect_latency() and the gauge calls may be made from any
//   thread; snapshot() gives a per-counter consistent (not globally atomic)
//   view. Snapshots are values.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "divert/export.hpp"

namespace divert {

enum class MetricsCounter : std::size_t {
  task_total = 0,         // escaper.task.total
  connection_attempt,     // escaper.connection.attempt
  connection_establish,   // escaper.connection.establish
  tcp_connect_attempt,    // escaper.tcp.connect.attempt
  tcp_connect_establish,  // escaper.tcp.connect.establish
  tcp_connect_success,    // escaper.tcp.connect.success
  tcp_connect_error,      // escaper.tcp.connect.error
  tcp_connect_timeout,    // escaper.tcp.connect.timeout (timeouts are not errors)
  traffic_in_bytes,       // escaper.traffic.in.bytes
  traffic_out_bytes,      // escaper.traffic.out.bytes
  tls_handshake_error,    // escaper.tls.handshake.error
  tls_handshake_timeout,  // escaper.tls.handshake.timeout (timeouts are not errors)
};
inline constexpr std::size_t kMetricsCounterCount = 12;

// "escaper.task.total" etc.
DIVERT_EXPORT std::string_view metric_name(MetricsCounter c) noexcept;

inline constexpr std::size_t kLatencyBuckets = 27;  // 2^0 .. 2^25 us, then +Inf
inline constexpr std::string_view kConnectLatencyName = "escaper.tcp.connect.duration_us";
// Upper bound in microseconds of bucket i (i < kLatencyBuckets - 1): 2^i.
constexpr std::uint64_t latency_bucket_bound_us(std::size_t i) noexcept {
  return std::uint64_t{1} << i;
}
// Index of the bucket that counts a latency of `us` microseconds
// (the first i with us <= 2^i; the last bucket above 2^25).
DIVERT_EXPORT std::size_t latency_bucket_index(std::uint64_t us) noexcept;

// Per-next-proxy counters (kept by the connector, one set per next proxy).
enum class ProxyCounter : std::size_t {
  attempt = 0,  // escaper.next_proxy.attempt
  establish,    // escaper.next_proxy.establish
  error,        // escaper.next_proxy.error
  timeout,      // escaper.next_proxy.timeout (timeouts are not errors)
};
inline constexpr std::size_t kProxyCounterCount = 4;

// "escaper.next_proxy.attempt" etc.; empty for an out-of-range value.
DIVERT_EXPORT std::string_view metric_name(ProxyCounter c) noexcept;

using MetricTags = std::vector<std::pair<std::string, std::string>>;

// Throws config_error(key, text, reason) unless `text` is a valid tag name/value.
DIVERT_EXPORT void validate_metric_tag(std::string_view key, std::string_view text);

struct LatencyHistogramSnapshot {
  std::array<std::uint64_t, kLatencyBuckets> buckets{};  // per bucket, not cumulative
  std::uint64_t count = 0;
  std::uint64_t sum_us = 0;
};

// One next proxy's counters and gauges at snapshot time.
struct DIVERT_EXPORT ProxyMetricsSnapshot {
  // Label value: the next proxy's canonical address (UpstreamAddr::to_string()).
  // Any bytes; format_prometheus escapes them, format_statsd replaces the
  // characters that are not valid in a tag value.
  std::string next_proxy;
  std::array<std::uint64_t, kProxyCounterCount> counters{};
  bool up = true;        // false while an active health check marks it down
  bool ejected = false;  // passive ejection in force when the snapshot was taken
  std::uint64_t connects_in_flight = 0;

  std::uint64_t operator[](ProxyCounter c) const noexcept {
    const auto i = static_cast<std::size_t>(c);
    return i < kProxyCounterCount ? counters[i] : 0;
  }
};

struct DIVERT_EXPORT MetricsSnapshot {
  MetricTags tags;  // escaper=<name> first, then extra tags by name
  std::array<std::uint64_t, kMetricsCounterCount> counters{};
  LatencyHistogramSnapshot connect_latency;
  // Per next proxy, in configuration order; empty from Metrics::snapshot()
  // (DivertTcpConnector::metrics_snapshot() fills it).
  std::vector<ProxyMetricsSnapshot> proxies;
  std::uint64_t relays_open = 0;         // gauge: relays running with these metrics
  std::uint64_t connects_in_flight = 0;  // gauge: connects in progress (all next proxies)

  std::uint64_t operator[](MetricsCounter c) const noexcept {
    return counters[static_cast<std::size_t>(c)];
  }
  // Counter-wise difference (this - earlier), for exporters that send deltas
  // (StatsD counters). Values of `earlier` above this one give 0. Per-proxy
  // counters are matched by next_proxy (a proxy absent from `earlier` keeps its
  // values); gauges are copied from this snapshot, not subtracted.
  MetricsSnapshot delta_since(const MetricsSnapshot& earlier) const;
};

// visitor(std::string_view name, const MetricTags& tags, std::uint64_t value),
// called for every counter (in MetricsCounter order, zeros included), then
// for the histogram as described at the top, then for each next proxy's
// counters (escaper.next_proxy.attempt ...; ProxyCounter order, proxies in
// snapshot order) with the tags plus next_proxy=<address> (the address as is).
// Gauges are not visited (visitors see counters only; use format_prometheus or
// read the snapshot's fields).
using MetricsVisitor =
    std::function<void(std::string_view name, const MetricTags& tags, std::uint64_t value)>;
DIVERT_EXPORT void visit(const MetricsSnapshot& snapshot, const MetricsVisitor& visitor);

// One StatsD line per visited value, each ended by '\n', in visit() order:
//   "<prefix>.<name>:<value>|c|#<tag>:<value>,<tag>:<value>"
// (no "." when prefix is empty). Histogram buckets are sent the same way with
// their le tag; per-proxy counters with their next_proxy tag, whose value has
// every character outside [A-Za-z0-9-_./:] replaced by '_' (so "[::1]:3128"
// is sent as "_::1_:3128"). Send deltas (delta_since) if your StatsD sums
// counters.
DIVERT_EXPORT std::string format_statsd(const MetricsSnapshot& snapshot, std::string_view prefix);

// Prometheus text exposition format, version 0.0.4 (serve it with
// Content-Type "text/plain; version=0.0.4; charset=utf-8"). Every family has
// "# HELP" and "# TYPE" lines. Names: prefix + "_" + the dotted name with '.'
// replaced by '_' (no "_" when prefix is empty); counters end in "_total"
// (escaper.task.total gives divert_escaper_task_total, not ..._total_total).
// Families, in this order:
//   counters  <prefix>_escaper_task_total, ..._escaper_tcp_connect_error_total, ...
//   histogram <prefix>_escaper_tcp_connect_duration_seconds: the connect
//             latency converted from microseconds to SECONDS (Prometheus base
//             unit): _bucket{le="1e-06"} .. {le="33.554432"}, {le="+Inf"}
//             (cumulative), _sum (seconds, float), _count
//   gauges    <prefix>_escaper_relays_open, <prefix>_escaper_connects_in_flight
//   per next proxy (only when snapshot.proxies is not empty), with the label
//   next_proxy="<address>":
//     counters  <prefix>_escaper_next_proxy_{attempt,establish,error,timeout}_total
//     gauges    <prefix>_escaper_next_proxy_{up,ejected,connects_in_flight}
//               (up and ejected are 0 or 1)
// Labels: the tags (escaper first, then the extra tags), then next_proxy or le.
// Label values are escaped (backslash, double quote, newline). Tag names are
// made valid label names: characters outside [A-Za-z0-9_] (and each non-ASCII
// letter) become '_', a leading digit gets a '_' before it, and a name equal to
// an earlier one, to "le" or to "next_proxy" gets '_' appended until unique.
// `prefix` must be empty or match [A-Za-z_:][A-Za-z0-9_:]*; otherwise
// std::invalid_argument is thrown. Next proxies should have distinct addresses
// (the connector's do); duplicates would give duplicate series.
DIVERT_EXPORT std::string format_prometheus(const MetricsSnapshot& snapshot,
                                            std::string_view prefix = "divert");

class DIVERT_EXPORT Metrics {
 public:
  // Throws config_error for an invalid escaper name or extra tag (see top).
  explicit Metrics(std::string escaper_name,
                   const std::map<std::string, std::string>& extra_tags = {});
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  const std::string& escaper_name() const noexcept { return escaper_name_; }
  const MetricTags& tags() const noexcept { return tags_; }

  void add(MetricsCounter c, std::uint64_t n = 1) noexcept {
    counters_[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value(MetricsCounter c) const noexcept {
    return counters_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  }
  // Negative durations count as 0; sub-microsecond durations round up to 1 us
  // only in the bucket choice (the sum adds whole microseconds, truncated).
  void record_connect_latency(std::chrono::nanoseconds d) noexcept;

  // Gauges. Each relay_opened() must be followed by one relay_closed(), each
  // connect_started() by one connect_finished() (whatever the outcome). The
  // relay calls the first pair when RelayOptions::metrics is set, the connector
  // the second. A close without an open is clamped at 0 in snapshots.
  void relay_opened() noexcept { relays_open_.fetch_add(1, std::memory_order_relaxed); }
  void relay_closed() noexcept { relays_open_.fetch_sub(1, std::memory_order_relaxed); }
  void connect_started() noexcept { connects_in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void connect_finished() noexcept { connects_in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  std::uint64_t relays_open() const noexcept { return gauge_value(relays_open_); }
  std::uint64_t connects_in_flight() const noexcept { return gauge_value(connects_in_flight_); }

  // Counters, histogram and the two gauges; `proxies` stays empty.
  MetricsSnapshot snapshot() const;
  void visit(const MetricsVisitor& visitor) const { divert::visit(snapshot(), visitor); }

 private:
  std::string escaper_name_;
  MetricTags tags_;
  std::array<std::atomic<std::uint64_t>, kMetricsCounterCount> counters_{};
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets> latency_{};
  std::atomic<std::uint64_t> latency_count_{0};
  std::atomic<std::uint64_t> latency_sum_us_{0};
  std::atomic<std::int64_t> relays_open_{0};
  std::atomic<std::int64_t> connects_in_flight_{0};

  static std::uint64_t gauge_value(const std::atomic<std::int64_t>& g) noexcept {
    const std::int64_t v = g.load(std::memory_order_relaxed);
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
  }
};

}  // namespace divert

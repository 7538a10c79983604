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
// Thread-safety: Metrics counters are lock-free atomics (relaxed); add() and
//   record_connect_latency() may be called from any thread; snapshot() gives a
//   per-counter consistent (not globally atomic) view. Snapshots are values.
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

using MetricTags = std::vector<std::pair<std::string, std::string>>;

// Throws config_error(key, text, reason) unless `text` is a valid tag name/value.
DIVERT_EXPORT void validate_metric_tag(std::string_view key, std::string_view text);

struct LatencyHistogramSnapshot {
  std::array<std::uint64_t, kLatencyBuckets> buckets{};  // per bucket, not cumulative
  std::uint64_t count = 0;
  std::uint64_t sum_us = 0;
};

struct DIVERT_EXPORT MetricsSnapshot {
  MetricTags tags;  // escaper=<name> first, then extra tags by name
  std::array<std::uint64_t, kMetricsCounterCount> counters{};
  LatencyHistogramSnapshot connect_latency;

  std::uint64_t operator[](MetricsCounter c) const noexcept {
    return counters[static_cast<std::size_t>(c)];
  }
  // Counter-wise difference (this - earlier), for exporters that send deltas
  // (StatsD counters). Values of `earlier` above this one give 0.
  MetricsSnapshot delta_since(const MetricsSnapshot& earlier) const;
};

// visitor(std::string_view name, const MetricTags& tags, std::uint64_t value),
// called for every counter (in MetricsCounter order, zeros included) and then
// for the histogram as described at the top.
using MetricsVisitor =
    std::function<void(std::string_view name, const MetricTags& tags, std::uint64_t value)>;
DIVERT_EXPORT void visit(const MetricsSnapshot& snapshot, const MetricsVisitor& visitor);

// One StatsD line per visited value, each ended by '\n', in visit() order:
//   "<prefix>.<name>:<value>|c|#<tag>:<value>,<tag>:<value>"
// (no "." when prefix is empty). Histogram buckets are sent the same way with
// their le tag. Send deltas (delta_since) if your StatsD sums counters.
DIVERT_EXPORT std::string format_statsd(const MetricsSnapshot& snapshot, std::string_view prefix);

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

  MetricsSnapshot snapshot() const;
  void visit(const MetricsVisitor& visitor) const { divert::visit(snapshot(), visitor); }

 private:
  std::string escaper_name_;
  MetricTags tags_;
  std::array<std::atomic<std::uint64_t>, kMetricsCounterCount> counters_{};
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets> latency_{};
  std::atomic<std::uint64_t> latency_count_{0};
  std::atomic<std::uint64_t> latency_sum_us_{0};
};

}  // namespace divert

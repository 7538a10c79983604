#include "divert/metrics.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <bit>
#include <iterator>
#include <stdexcept>

#include "divert/error.hpp"

namespace divert {

namespace {
constexpr std::array<std::string_view, kMetricsCounterCount> kNames = {
    "escaper.task.total",          "escaper.connection.attempt",    "escaper.connection.establish",
    "escaper.tcp.connect.attempt", "escaper.tcp.connect.establish", "escaper.tcp.connect.success",
    "escaper.tcp.connect.error",   "escaper.tcp.connect.timeout",   "escaper.traffic.in.bytes",
    "escaper.traffic.out.bytes",   "escaper.tls.handshake.error",   "escaper.tls.handshake.timeout",
};

constexpr std::array<std::string_view, kProxyCounterCount> kProxyNames = {
    "escaper.next_proxy.attempt",
    "escaper.next_proxy.establish",
    "escaper.next_proxy.error",
    "escaper.next_proxy.timeout",
};

// Length of the well-formed UTF-8 multi-byte sequence at s[i] (lead byte
// >= 0x80), or 0 when it is malformed (overlong, surrogate, > U+10FFFF, cut).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return len;
}
}  // namespace

std::string_view metric_name(MetricsCounter c) noexcept {
  const auto i = static_cast<std::size_t>(c);
  return i < kNames.size() ? kNames[i] : std::string_view{};
}

std::string_view metric_name(ProxyCounter c) noexcept {
  const auto i = static_cast<std::size_t>(c);
  return i < kProxyNames.size() ? kProxyNames[i] : std::string_view{};
}

std::size_t latency_bucket_index(std::uint64_t us) noexcept {
  if (us <= 1) return 0;
  const std::size_t i = static_cast<std::size_t>(std::bit_width(us - 1));  // 2^(i-1) < us <= 2^i
  return i < kLatencyBuckets - 1 ? i : kLatencyBuckets - 1;
}

void validate_metric_tag(std::string_view key, std::string_view text) {
  if (text.empty())
    throw config_error(std::string(key), "", "tag names and values must not be empty");
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '/') {
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(c) >= 0x80) {
      if (const std::size_t n = utf8_sequence_length(text, i)) {
        i += n;
        continue;
      }
      throw config_error(std::string(key), std::string(text), "malformed UTF-8");
    }
    throw config_error(std::string(key), std::string(text),
                       fmt::format("character '{}' not allowed: use letters, digits and -_./",
                                   c == '\0' ? std::string("\\0") : std::string(1, c)));
  }
}

Metrics::Metrics(std::string escaper_name, const std::map<std::string, std::string>& extra_tags)
    : escaper_name_(std::move(escaper_name)) {
  validate_metric_tag("escaper", escaper_name_);
  tags_.emplace_back("escaper", escaper_name_);
  for (const auto& [name, value] : extra_tags) {
    validate_metric_tag("extra_metrics_tags", name);
    if (name == "escaper") {
      throw config_error("extra_metrics_tags", name, "the tag name \"escaper\" is reserved");
    }
    validate_metric_tag("extra_metrics_tags", value);
    tags_.emplace_back(name, value);
  }
}

void Metrics::record_connect_latency(std::chrono::nanoseconds d) noexcept {
  const std::uint64_t ns = d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
  const std::uint64_t us_up = (ns + 999) / 1000;
  latency_[latency_bucket_index(us_up)].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_sum_us_.fetch_add(ns / 1000, std::memory_order_relaxed);
}

MetricsSnapshot Metrics::snapshot() const {
  MetricsSnapshot s;
  s.tags = tags_;
  for (std::size_t i = 0; i < kMetricsCounterCount; ++i) {
    s.counters[i] = counters_[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    s.connect_latency.buckets[i] = latency_[i].load(std::memory_order_relaxed);
  }
  s.connect_latency.count = latency_count_.load(std::memory_order_relaxed);
  s.connect_latency.sum_us = latency_sum_us_.load(std::memory_order_relaxed);
  s.relays_open = relays_open();
  s.connects_in_flight = connects_in_flight();
  return s;
}

MetricsSnapshot MetricsSnapshot::delta_since(const MetricsSnapshot& earlier) const {
  const auto sub = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
  MetricsSnapshot d;
  d.tags = tags;
  for (std::size_t i = 0; i < kMetricsCounterCount; ++i) {
    d.counters[i] = sub(counters[i], earlier.counters[i]);
  }
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    d.connect_latency.buckets[i] =
        sub(connect_latency.buckets[i], earlier.connect_latency.buckets[i]);
  }
  d.connect_latency.count = sub(connect_latency.count, earlier.connect_latency.count);
  d.connect_latency.sum_us = sub(connect_latency.sum_us, earlier.connect_latency.sum_us);
  d.relays_open = relays_open;
  d.connects_in_flight = connects_in_flight;
  d.proxies = proxies;
  for (auto& p : d.proxies) {
    const auto before =
        std::find_if(earlier.proxies.begin(), earlier.proxies.end(),
                     [&](const ProxyMetricsSnapshot& e) { return e.next_proxy == p.next_proxy; });
    if (before == earlier.proxies.end()) continue;
    for (std::size_t i = 0; i < kProxyCounterCount; ++i) {
      p.counters[i] = sub(p.counters[i], before->counters[i]);
    }
  }
  return d;
}

void visit(const MetricsSnapshot& snapshot, const MetricsVisitor& visitor) {
  for (std::size_t i = 0; i < kMetricsCounterCount; ++i) {
    visitor(kNames[i], snapshot.tags, snapshot.counters[i]);
  }
  const std::string bucket_name = std::string(kConnectLatencyName) + ".bucket";
  MetricTags tags = snapshot.tags;
  tags.emplace_back("le", "");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    cumulative += snapshot.connect_latency.buckets[i];
    tags.back().second =
        i + 1 < kLatencyBuckets ? std::to_string(latency_bucket_bound_us(i)) : "+Inf";
    visitor(bucket_name, tags, cumulative);
  }
  visitor(std::string(kConnectLatencyName) + ".count", snapshot.tags,
          snapshot.connect_latency.count);
  visitor(std::string(kConnectLatencyName) + ".sum", snapshot.tags,
          snapshot.connect_latency.sum_us);
  for (const auto& proxy : snapshot.proxies) {
    tags.back() = {"next_proxy", proxy.next_proxy};
    for (std::size_t i = 0; i < kProxyCounterCount; ++i) {
      visitor(kProxyNames[i], tags, proxy.counters[i]);
    }
  }
}

namespace {

// A next proxy's address as a StatsD tag value: [A-Za-z0-9-_./:] kept, the
// rest (brackets of IPv6 literals, any separator StatsD reads) becomes '_'.
std::string statsd_tag_value(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '/' || c == ':';
    if (!keep) c = '_';
  }
  return out;
}

}  // namespace

std::string format_statsd(const MetricsSnapshot& snapshot, std::string_view prefix) {
  std::string out;
  visit(snapshot, [&](std::string_view name, const MetricTags& tags, std::uint64_t value) {
    if (!prefix.empty()) {
      out += prefix;
      out += '.';
    }
    out += name;
    fmt::format_to(std::back_inserter(out), ":{}|c", value);
    for (std::size_t i = 0; i < tags.size(); ++i) {
      out += i == 0 ? "|#" : ",";
      out += tags[i].first;
      out += ':';
      if (tags[i].first == "next_proxy") {
        out += statsd_tag_value(tags[i].second);
      } else {
        out += tags[i].second;
      }
    }
    out += '\n';
  });
  return out;
}

}  // namespace divert

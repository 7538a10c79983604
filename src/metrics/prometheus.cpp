// format_prometheus: the text exposition format 0.0.4 (see metrics.hpp).
#include <fmt/format.h>
#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "divert/metrics.hpp"
#include "metrics/prometheus_text.hpp"

namespace divert {

namespace prometheus {

namespace {

bool is_name_char(char c, bool first) {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return letter || (!first && c >= '0' && c <= '9');
}

// A tag name as a label name: [A-Za-z0-9_] kept, anything else (one '_' per
// non-ASCII character: UTF-8 continuation bytes are dropped) becomes '_', and
// a leading digit gets a '_' before it.
std::string label_name(std::string_view tag) {
  std::string out;
  for (const char c : tag) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 && u < 0xC0) continue;  // continuation of a multi-byte letter
    out += is_name_char(c, false) ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

}  // namespace

void check_prefix(std::string_view prefix) {
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (!is_name_char(prefix[i], i == 0) && prefix[i] != ':') {
      throw std::invalid_argument(fmt::format(
          "Prometheus metric prefix \"{}\": use [A-Za-z_:] then [A-Za-z0-9_:]", prefix));
    }
  }
}

std::string metric_name(std::string_view prefix, std::string_view dotted) {
  std::string out(prefix);
  if (!out.empty()) out += '_';
  for (const char c : dotted) out += c == '.' ? '_' : c;
  return out;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Labels labels_from_tags(const MetricTags& tags) {
  Labels out;
  const auto taken = [&](const std::string& name) {
    return name == "le" || name == "next_proxy" ||
           std::any_of(out.begin(), out.end(), [&](const auto& l) { return l.first == name; });
  };
  for (const auto& [name, value] : tags) {
    std::string label = label_name(name);
    while (taken(label)) label += '_';
    out.emplace_back(std::move(label), value);
  }
  return out;
}

void Writer::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Writer::sample(std::string_view name, const Labels& labels, std::uint64_t value) {
  sample(name, labels, std::to_string(value));
}

void Writer::sample(std::string_view name, const Labels& labels, std::string_view value) {
  out_ += name;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out_ += i == 0 ? '{' : ',';
    out_ += labels[i].first;
    out_ += "=\"";
    out_ += escape_label_value(labels[i].second);
    out_ += '"';
  }
  if (!labels.empty()) out_ += '}';
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

}  // namespace prometheus

namespace {

// HELP texts, in MetricsCounter order.
constexpr std::array<std::string_view, kMetricsCounterCount> kCounterHelp = {
    "Tasks (connection requests) handled by the escaper.",
    "Connections to a next proxy attempted (one per task).",
    "Connections to a next proxy established (PROXY header written).",
    "TCP connect attempts to next proxy addresses.",
    "TCP connects to next proxy addresses that established.",
    "TCP connects that completed the whole connection step.",
    "TCP connects that failed with an error.",
    "TCP connects that timed out (not counted as errors).",
    "Bytes received from next proxies (download).",
    "Bytes sent to next proxies (upload).",
    "TLS handshakes with the upstream that failed (https forward).",
    "TLS handshakes with the upstream that timed out (https forward).",
};

// HELP texts, in ProxyCounter order.
constexpr std::array<std::string_view, kProxyCounterCount> kProxyCounterHelp = {
    "Connect attempts to this next proxy.",
    "Connections to this next proxy established (PROXY header written).",
    "Connects to this next proxy that failed with an error.",
    "Connects to this next proxy that timed out (not counted as errors).",
};

// "escaper.task.total" -> "<prefix>_escaper_task_total"; other counters get
// "_total" appended.
std::string counter_name(std::string_view prefix, std::string_view dotted) {
  std::string name = prometheus::metric_name(prefix, dotted);
  if (!std::string_view(name).ends_with("_total")) name += "_total";
  return name;
}

// Seconds from microseconds, shortest round-trip decimal ("1e-06", "33.554432").
std::string seconds_text(std::uint64_t us) {
  return fmt::format("{}", static_cast<double>(us) / 1e6);
}

}  // namespace

std::string format_prometheus(const MetricsSnapshot& s, std::string_view prefix) {
  prometheus::check_prefix(prefix);
  prometheus::Writer w;
  const prometheus::Labels labels = prometheus::labels_from_tags(s.tags);

  for (std::size_t i = 0; i < kMetricsCounterCount; ++i) {
    const std::string name = counter_name(prefix, metric_name(static_cast<MetricsCounter>(i)));
    w.family(name, "counter", kCounterHelp[i]);
    w.sample(name, labels, s.counters[i]);
  }

  const std::string hist = prometheus::metric_name(prefix, "escaper.tcp.connect.duration_seconds");
  w.family(hist, "histogram",
           "Duration of TCP connects to next proxies, in seconds (measured in microseconds).");
  prometheus::Labels le = labels;
  le.emplace_back("le", "");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    cumulative += s.connect_latency.buckets[i];
    le.back().second = i + 1 < kLatencyBuckets ? seconds_text(latency_bucket_bound_us(i)) : "+Inf";
    w.sample(hist + "_bucket", le, cumulative);
  }
  w.sample(hist + "_sum", labels, seconds_text(s.connect_latency.sum_us));
  w.sample(hist + "_count", labels, s.connect_latency.count);

  const std::string relays = prometheus::metric_name(prefix, "escaper.relays_open");
  w.family(relays, "gauge", "Relays running with this escaper's metrics.");
  w.sample(relays, labels, s.relays_open);
  const std::string in_flight = prometheus::metric_name(prefix, "escaper.connects_in_flight");
  w.family(in_flight, "gauge", "Connects to next proxies in progress.");
  w.sample(in_flight, labels, s.connects_in_flight);

  if (s.proxies.empty()) return w.take();
  prometheus::Labels per_proxy = labels;
  per_proxy.emplace_back("next_proxy", "");
  const auto each_proxy = [&](const std::string& name, std::string_view type, std::string_view help,
                              auto value_of) {
    w.family(name, type, help);
    for (const auto& p : s.proxies) {
      per_proxy.back().second = p.next_proxy;
      w.sample(name, per_proxy, value_of(p));
    }
  };
  for (std::size_t i = 0; i < kProxyCounterCount; ++i) {
    each_proxy(counter_name(prefix, metric_name(static_cast<ProxyCounter>(i))), "counter",
               kProxyCounterHelp[i], [i](const ProxyMetricsSnapshot& p) { return p.counters[i]; });
  }
  each_proxy(prometheus::metric_name(prefix, "escaper.next_proxy.up"), "gauge",
             "1 unless an active health check marks this next proxy down.",
             [](const ProxyMetricsSnapshot& p) { return std::uint64_t{p.up ? 1u : 0u}; });
  each_proxy(prometheus::metric_name(prefix, "escaper.next_proxy.ejected"), "gauge",
             "1 while this next proxy is passively ejected after failures.",
             [](const ProxyMetricsSnapshot& p) { return std::uint64_t{p.ejected ? 1u : 0u}; });
  each_proxy(prometheus::metric_name(prefix, "escaper.next_proxy.connects_in_flight"), "gauge",
             "Connects to this next proxy in progress.",
             [](const ProxyMetricsSnapshot& p) { return p.connects_in_flight; });
  return w.take();
}

}  // namespace divert

// format_prometheus (text exposition format 0.0.4), the gauges, the per-proxy
// snapshot and how visit()/format_statsd report next proxies. Pure: no sockets.
#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "divert/metrics.hpp"
#include "support/catch.hpp"

using divert::Metrics;
using divert::MetricsCounter;
using divert::ProxyCounter;
using divert::ProxyMetricsSnapshot;
using namespace std::chrono_literals;

namespace {

ProxyMetricsSnapshot proxy(std::string address, std::array<std::uint64_t, 4> counters) {
  ProxyMetricsSnapshot p;
  p.next_proxy = std::move(address);
  p.counters = counters;
  return p;
}

// The snapshot of the golden text: an extra tag named "le" (renamed le_ in
// Prometheus), two next proxies (one IPv6, down and ejected), both gauges.
divert::MetricsSnapshot example_snapshot() {
  Metrics m("edge", {{"dc", "par-1"}, {"le", "x"}});
  m.add(MetricsCounter::task_total, 3);
  m.add(MetricsCounter::traffic_in_bytes, 1000);
  m.record_connect_latency(500ns);   // le=1e-06
  m.record_connect_latency(3us);     // le=4e-06
  m.record_connect_latency(1500us);  // le=0.002048
  m.record_connect_latency(100s);    // +Inf
  m.relay_opened();
  m.relay_opened();
  m.relay_closed();
  m.connect_started();
  auto s = m.snapshot();
  auto a = proxy("127.0.0.1:3128", {5, 4, 1, 0});
  a.connects_in_flight = 1;
  auto b = proxy("[::1]:3129", {2, 0, 1, 1});
  b.up = false;
  b.ejected = true;
  s.proxies = {a, b};
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Checks the structure every scraper relies on: each sample's family was
// declared by "# HELP" then "# TYPE" before its samples, once; histogram
// samples use the family name plus _bucket/_sum/_count, counters end in
// _total; the text ends with a newline. Returns the number of families.
std::size_t check_structure(const std::string& text) {
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  std::map<std::string, std::string> types;  // family -> type
  std::string current, current_type;
  for (const auto& line : lines_of(text)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) {
      const auto name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(types.count(name) == 0);
      current = name;
      current_type.clear();
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream in(line.substr(7));
      std::string name, type;
      in >> name >> type;
      CHECK(name == current);
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      if (type == "counter") CHECK(std::string_view(name).ends_with("_total"));
      types[name] = current_type = type;
      continue;
    }
    const auto name = line.substr(0, line.find_first_of("{ "));
    REQUIRE(!current_type.empty());
    if (current_type == "histogram") {
      CHECK(
          (name == current + "_bucket" || name == current + "_sum" || name == current + "_count"));
    } else {
      CHECK(name == current);
    }
  }
  return types.size();
}

// The value of every sample line starting with `series` (name and labels up
// to the value), in order.
std::vector<std::string> values_of(const std::string& text, const std::string& series) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(text)) {
    if (line.rfind(series, 0) == 0) out.push_back(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("prometheus: per-proxy metric names", "[metrics][prometheus]") {
  CHECK(divert::metric_name(ProxyCounter::attempt) == "escaper.next_proxy.attempt");
  CHECK(divert::metric_name(ProxyCounter::establish) == "escaper.next_proxy.establish");
  CHECK(divert::metric_name(ProxyCounter::error) == "escaper.next_proxy.error");
  CHECK(divert::metric_name(ProxyCounter::timeout) == "escaper.next_proxy.timeout");
  CHECK(divert::metric_name(static_cast<ProxyCounter>(divert::kProxyCounterCount)).empty());
  const auto p = proxy("a:1", {1, 2, 3, 4});
  CHECK(p[ProxyCounter::attempt] == 1);
  CHECK(p[ProxyCounter::timeout] == 4);
}

TEST_CASE("prometheus: golden text exposition", "[metrics][prometheus]") {
  const std::string expected =
      R"golden(# HELP divert_escaper_task_total Tasks (connection requests) handled by the escaper.
# TYPE divert_escaper_task_total counter
divert_escaper_task_total{escaper="edge",dc="par-1",le_="x"} 3
# HELP divert_escaper_connection_attempt_total Connections to a next proxy attempted (one per task).
# TYPE divert_escaper_connection_attempt_total counter
divert_escaper_connection_attempt_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_connection_establish_total Connections to a next proxy established (PROXY header written).
# TYPE divert_escaper_connection_establish_total counter
divert_escaper_connection_establish_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tcp_connect_attempt_total TCP connect attempts to next proxy addresses.
# TYPE divert_escaper_tcp_connect_attempt_total counter
divert_escaper_tcp_connect_attempt_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tcp_connect_establish_total TCP connects to next proxy addresses that established.
# TYPE divert_escaper_tcp_connect_establish_total counter
divert_escaper_tcp_connect_establish_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tcp_connect_success_total TCP connects that completed the whole connection step.
# TYPE divert_escaper_tcp_connect_success_total counter
divert_escaper_tcp_connect_success_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tcp_connect_error_total TCP connects that failed with an error.
# TYPE divert_escaper_tcp_connect_error_total counter
divert_escaper_tcp_connect_error_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tcp_connect_timeout_total TCP connects that timed out (not counted as errors).
# TYPE divert_escaper_tcp_connect_timeout_total counter
divert_escaper_tcp_connect_timeout_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_traffic_in_bytes_total Bytes received from next proxies (download).
# TYPE divert_escaper_traffic_in_bytes_total counter
divert_escaper_traffic_in_bytes_total{escaper="edge",dc="par-1",le_="x"} 1000
# HELP divert_escaper_traffic_out_bytes_total Bytes sent to next proxies (upload).
# TYPE divert_escaper_traffic_out_bytes_total counter
divert_escaper_traffic_out_bytes_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tls_handshake_error_total TLS handshakes with the upstream that failed (https forward).
# TYPE divert_escaper_tls_handshake_error_total counter
divert_escaper_tls_handshake_error_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tls_handshake_timeout_total TLS handshakes with the upstream that timed out (https forward).
# TYPE divert_escaper_tls_handshake_timeout_total counter
divert_escaper_tls_handshake_timeout_total{escaper="edge",dc="par-1",le_="x"} 0
# HELP divert_escaper_tcp_connect_duration_seconds Duration of TCP connects to next proxies, in seconds (measured in microseconds).
# TYPE divert_escaper_tcp_connect_duration_seconds histogram
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="1e-06"} 1
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="2e-06"} 1
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="4e-06"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="8e-06"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="1.6e-05"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="3.2e-05"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="6.4e-05"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.000128"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.000256"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.000512"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.001024"} 2
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.002048"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.004096"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.008192"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.016384"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.032768"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.065536"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.131072"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.262144"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="0.524288"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="1.048576"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="2.097152"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="4.194304"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="8.388608"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="16.777216"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="33.554432"} 3
divert_escaper_tcp_connect_duration_seconds_bucket{escaper="edge",dc="par-1",le_="x",le="+Inf"} 4
divert_escaper_tcp_connect_duration_seconds_sum{escaper="edge",dc="par-1",le_="x"} 100.001503
divert_escaper_tcp_connect_duration_seconds_count{escaper="edge",dc="par-1",le_="x"} 4
# HELP divert_escaper_relays_open Relays running with this escaper's metrics.
# TYPE divert_escaper_relays_open gauge
divert_escaper_relays_open{escaper="edge",dc="par-1",le_="x"} 1
# HELP divert_escaper_connects_in_flight Connects to next proxies in progress.
# TYPE divert_escaper_connects_in_flight gauge
divert_escaper_connects_in_flight{escaper="edge",dc="par-1",le_="x"} 1
# HELP divert_escaper_next_proxy_attempt_total Connect attempts to this next proxy.
# TYPE divert_escaper_next_proxy_attempt_total counter
divert_escaper_next_proxy_attempt_total{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 5
divert_escaper_next_proxy_attempt_total{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 2
# HELP divert_escaper_next_proxy_establish_total Connections to this next proxy established (PROXY header written).
# TYPE divert_escaper_next_proxy_establish_total counter
divert_escaper_next_proxy_establish_total{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 4
divert_escaper_next_proxy_establish_total{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 0
# HELP divert_escaper_next_proxy_error_total Connects to this next proxy that failed with an error.
# TYPE divert_escaper_next_proxy_error_total counter
divert_escaper_next_proxy_error_total{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 1
divert_escaper_next_proxy_error_total{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 1
# HELP divert_escaper_next_proxy_timeout_total Connects to this next proxy that timed out (not counted as errors).
# TYPE divert_escaper_next_proxy_timeout_total counter
divert_escaper_next_proxy_timeout_total{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 0
divert_escaper_next_proxy_timeout_total{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 1
# HELP divert_escaper_next_proxy_up 1 unless an active health check marks this next proxy down.
# TYPE divert_escaper_next_proxy_up gauge
divert_escaper_next_proxy_up{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 1
divert_escaper_next_proxy_up{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 0
# HELP divert_escaper_next_proxy_ejected 1 while this next proxy is passively ejected after failures.
# TYPE divert_escaper_next_proxy_ejected gauge
divert_escaper_next_proxy_ejected{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 0
divert_escaper_next_proxy_ejected{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 1
# HELP divert_escaper_next_proxy_connects_in_flight Connects to this next proxy in progress.
# TYPE divert_escaper_next_proxy_connects_in_flight gauge
divert_escaper_next_proxy_connects_in_flight{escaper="edge",dc="par-1",le_="x",next_proxy="127.0.0.1:3128"} 1
divert_escaper_next_proxy_connects_in_flight{escaper="edge",dc="par-1",le_="x",next_proxy="[::1]:3129"} 0
)golden";
  const auto s = example_snapshot();
  CHECK(divert::format_prometheus(s) == expected);
  CHECK(divert::format_prometheus(s, "divert") == expected);
  CHECK(check_structure(expected) == 12 + 1 + 2 + 4 + 3);
}

TEST_CASE("prometheus: without next proxies there are no per-proxy families",
          "[metrics][prometheus]") {
  Metrics m("e");
  const auto text = divert::format_prometheus(m.snapshot());
  CHECK(check_structure(text) == 12 + 1 + 2);
  CHECK(text.find("next_proxy") == std::string::npos);
  CHECK(text.find("divert_escaper_task_total{escaper=\"e\"} 0\n") != std::string::npos);
  CHECK(text.find("divert_escaper_relays_open{escaper=\"e\"} 0\n") != std::string::npos);
}

TEST_CASE("prometheus: label values are escaped", "[metrics][prometheus]") {
  Metrics m("e");
  auto s = m.snapshot();
  s.proxies = {proxy("a\\b\"c\nd", {7, 0, 0, 0})};
  const auto text = divert::format_prometheus(s);
  CHECK(text.find(
            "divert_escaper_next_proxy_attempt_total{escaper=\"e\",next_proxy=\"a\\\\b\\\"c\\nd\"} "
            "7\n") != std::string::npos);
  // No raw newline inside a sample: every line is a comment or name{...} value.
  for (const auto& line : lines_of(text)) {
    INFO(line);
    CHECK((line.rfind("# ", 0) == 0 || line.rfind("divert_", 0) == 0));
  }
  check_structure(text);
}

TEST_CASE("prometheus: tag names become valid, distinct label names", "[metrics][prometheus]") {
  Metrics m("e", {{"a.b", "1"},
                  {"a-b", "2"},
                  {"9x", "3"},
                  {"r\xC3\xA9gion", "4"},
                  {"next_proxy", "5"},
                  {"a_b", "6"}});
  auto s = m.snapshot();
  s.proxies = {proxy("p:1", {})};
  const auto text = divert::format_prometheus(s);
  // Tags are in name order: 9x, a-b, a.b, a_b, next_proxy, région.
  CHECK(text.find("divert_escaper_next_proxy_up{escaper=\"e\",_9x=\"3\",a_b=\"2\",a_b_=\"1\","
                  "a_b__=\"6\",next_proxy_=\"5\",r_gion=\"4\",next_proxy=\"p:1\"} 1\n") !=
        std::string::npos);
  check_structure(text);
}

TEST_CASE("prometheus: prefix", "[metrics][prometheus]") {
  Metrics m("e");
  const auto s = m.snapshot();
  CHECK(divert::format_prometheus(s, "").rfind("# HELP escaper_task_total ", 0) == 0);
  CHECK(divert::format_prometheus(s, "my:app_2").rfind("# HELP my:app_2_escaper_task_total ", 0) ==
        0);
  CHECK_THROWS_AS(divert::format_prometheus(s, "2x"), std::invalid_argument);
  CHECK_THROWS_AS(divert::format_prometheus(s, "a-b"), std::invalid_argument);
  CHECK_THROWS_AS(divert::format_prometheus(s, "a b"), std::invalid_argument);
}

TEST_CASE("prometheus: the histogram is consistent", "[metrics][prometheus]") {
  Metrics m("e");
  std::uint64_t sum_us = 0;
  // Durations spread over every bucket, some twice, plus a few over the last bound.
  for (std::uint64_t us = 1, i = 0; i < 40; ++i, us = us * 3 / 2 + 1) {
    m.record_connect_latency(std::chrono::microseconds(us));
    sum_us += us;
    if (i % 3 == 0) {
      m.record_connect_latency(std::chrono::microseconds(us));
      sum_us += us;
    }
  }
  const auto text = divert::format_prometheus(m.snapshot());
  check_structure(text);
  const std::string hist = "divert_escaper_tcp_connect_duration_seconds";
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  for (const auto& line : lines_of(text)) {
    if (line.rfind(hist + "_bucket{", 0) != 0) continue;
    const auto le = line.find("le=\"") + 4;
    const auto bound = line.substr(le, line.find('"', le) - le);
    bounds.push_back(bound == "+Inf" ? HUGE_VAL : std::stod(bound));
    counts.push_back(std::stoull(line.substr(line.rfind(' ') + 1)));
  }
  REQUIRE(bounds.size() == divert::kLatencyBuckets);
  CHECK(bounds.back() == HUGE_VAL);
  for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
    CHECK(bounds[i] == Approx(static_cast<double>(divert::latency_bucket_bound_us(i)) / 1e6));
    CHECK(bounds[i] < bounds[i + 1]);
    CHECK(counts[i] <= counts[i + 1]);
  }
  const auto count = values_of(text, hist + "_count{");
  const auto sum = values_of(text, hist + "_sum{");
  REQUIRE(count.size() == 1);
  REQUIRE(sum.size() == 1);
  CHECK(std::stoull(count[0]) == counts.back());
  CHECK(counts.back() == 54);
  CHECK(std::stod(sum[0]) == Approx(static_cast<double>(sum_us) / 1e6));
  CHECK(counts.front() == 2);  // 1 us, twice
}

TEST_CASE("metrics: gauges", "[metrics][prometheus]") {
  Metrics m("e");
  CHECK(m.relays_open() == 0);
  CHECK(m.connects_in_flight() == 0);
  m.relay_opened();
  m.relay_opened();
  m.connect_started();
  auto s = m.snapshot();
  CHECK(s.relays_open == 2);
  CHECK(s.connects_in_flight == 1);
  CHECK(s.proxies.empty());
  m.relay_closed();
  m.connect_finished();
  CHECK(m.relays_open() == 1);
  CHECK(m.connects_in_flight() == 0);
  m.connect_finished();  // unpaired: clamped at 0, not 2^64 - 1
  CHECK(m.connects_in_flight() == 0);
  CHECK(m.snapshot().connects_in_flight == 0);
}

TEST_CASE("metrics: delta_since subtracts per-proxy counters by address, copies gauges",
          "[metrics][prometheus]") {
  Metrics m("e");
  auto before = m.snapshot();
  before.proxies = {proxy("a:1", {5, 4, 1, 0}), proxy("gone:1", {9, 9, 9, 9})};
  m.relay_opened();
  auto now = m.snapshot();
  now.proxies = {proxy("new:1", {1, 1, 0, 0}), proxy("a:1", {8, 6, 1, 1})};
  now.proxies[1].up = false;
  const auto d = now.delta_since(before);
  CHECK(d.relays_open == 1);
  REQUIRE(d.proxies.size() == 2);
  CHECK(d.proxies[0].next_proxy == "new:1");
  CHECK(d.proxies[0].counters == std::array<std::uint64_t, 4>{1, 1, 0, 0});
  CHECK(d.proxies[1].next_proxy == "a:1");
  CHECK(d.proxies[1].counters == std::array<std::uint64_t, 4>{3, 2, 0, 1});
  CHECK_FALSE(d.proxies[1].up);
}

TEST_CASE("metrics: StatsD lines for next proxies carry a next_proxy tag",
          "[metrics][prometheus]") {
  const auto text = divert::format_statsd(example_snapshot(), "p");
  const auto at = text.find("p.escaper.next_proxy.");
  REQUIRE(at != std::string::npos);
  CHECK(text.substr(at) ==
        "p.escaper.next_proxy.attempt:5|c|#escaper:edge,dc:par-1,le:x,next_proxy:127.0.0.1:3128\n"
        "p.escaper.next_proxy.establish:4|c|#escaper:edge,dc:par-1,le:x,next_proxy:127.0.0.1:3128\n"
        "p.escaper.next_proxy.error:1|c|#escaper:edge,dc:par-1,le:x,next_proxy:127.0.0.1:3128\n"
        "p.escaper.next_proxy.timeout:0|c|#escaper:edge,dc:par-1,le:x,next_proxy:127.0.0.1:3128\n"
        "p.escaper.next_proxy.attempt:2|c|#escaper:edge,dc:par-1,le:x,next_proxy:_::1_:3129\n"
        "p.escaper.next_proxy.establish:0|c|#escaper:edge,dc:par-1,le:x,next_proxy:_::1_:3129\n"
        "p.escaper.next_proxy.error:1|c|#escaper:edge,dc:par-1,le:x,next_proxy:_::1_:3129\n"
        "p.escaper.next_proxy.timeout:1|c|#escaper:edge,dc:par-1,le:x,next_proxy:_::1_:3129\n");
  // Everything before is the snapshot without proxies, unchanged.
  auto bare = example_snapshot();
  bare.proxies.clear();
  CHECK(text.substr(0, at) == divert::format_statsd(bare, "p"));
  // The visitor gives the address as is.
  std::vector<std::string> seen;
  divert::visit(example_snapshot(),
                [&](std::string_view name, const divert::MetricTags& tags, std::uint64_t) {
                  if (name == "escaper.next_proxy.attempt") seen.push_back(tags.back().second);
                });
  CHECK(seen == std::vector<std::string>{"127.0.0.1:3128", "[::1]:3129"});
}

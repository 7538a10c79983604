// Metrics: counters, histogram buckets, snapshots, the visitor, StatsD text
// and tag validation.
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "divert/error.hpp"
#include "divert/metrics.hpp"
#include "support/catch.hpp"

using divert::Metrics;
using divert::MetricsCounter;
using namespace std::chrono_literals;

namespace {
void fill_example(Metrics& m) {
  m.add(MetricsCounter::task_total, 3);
  m.add(MetricsCounter::connection_attempt, 2);
  m.add(MetricsCounter::connection_establish);
  m.add(MetricsCounter::tcp_connect_attempt, 4);
  m.add(MetricsCounter::tcp_connect_establish, 3);
  m.add(MetricsCounter::tcp_connect_success, 2);
  m.add(MetricsCounter::tcp_connect_error);
  m.add(MetricsCounter::tcp_connect_timeout);
  m.add(MetricsCounter::traffic_in_bytes, 1000);
  m.add(MetricsCounter::traffic_out_bytes, 2000);
  m.record_connect_latency(500ns);   // bucket le=1
  m.record_connect_latency(3us);     // le=4
  m.record_connect_latency(1500us);  // le=2048
  m.record_connect_latency(100s);    // +Inf
}

std::string config_error_key(const std::string& escaper,
                             const std::map<std::string, std::string>& tags) {
  try {
    Metrics m(escaper, tags);
  } catch (const divert::config_error& e) {
    return e.key() + "=" + e.value();
  }
  return "";
}
}  // namespace

TEST_CASE("metrics: names are g3proxy divert_tcp's escaper metric names", "[metrics]") {
  CHECK(divert::metric_name(MetricsCounter::task_total) == "escaper.task.total");
  CHECK(divert::metric_name(MetricsCounter::connection_attempt) == "escaper.connection.attempt");
  CHECK(divert::metric_name(MetricsCounter::connection_establish) ==
        "escaper.connection.establish");
  CHECK(divert::metric_name(MetricsCounter::tcp_connect_attempt) == "escaper.tcp.connect.attempt");
  CHECK(divert::metric_name(MetricsCounter::tcp_connect_establish) ==
        "escaper.tcp.connect.establish");
  CHECK(divert::metric_name(MetricsCounter::tcp_connect_success) == "escaper.tcp.connect.success");
  CHECK(divert::metric_name(MetricsCounter::tcp_connect_error) == "escaper.tcp.connect.error");
  CHECK(divert::metric_name(MetricsCounter::tcp_connect_timeout) == "escaper.tcp.connect.timeout");
  CHECK(divert::metric_name(MetricsCounter::traffic_in_bytes) == "escaper.traffic.in.bytes");
  CHECK(divert::metric_name(MetricsCounter::traffic_out_bytes) == "escaper.traffic.out.bytes");
  CHECK(divert::metric_name(MetricsCounter::tls_handshake_error) == "escaper.tls.handshake.error");
  CHECK(divert::metric_name(MetricsCounter::tls_handshake_timeout) ==
        "escaper.tls.handshake.timeout");
}

TEST_CASE("metrics: counters add up, also from several threads", "[metrics]") {
  Metrics m("div1");
  CHECK(m.escaper_name() == "div1");
  CHECK(m.value(MetricsCounter::task_total) == 0);
  m.add(MetricsCounter::task_total);
  m.add(MetricsCounter::task_total, 41);
  CHECK(m.value(MetricsCounter::task_total) == 42);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) m.add(MetricsCounter::traffic_in_bytes, 2);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(m.value(MetricsCounter::traffic_in_bytes) == 80000);
  CHECK(m.value(MetricsCounter::traffic_out_bytes) == 0);
}

TEST_CASE("metrics: latency buckets are log2 microseconds", "[metrics]") {
  using divert::latency_bucket_index;
  CHECK(latency_bucket_index(0) == 0);
  CHECK(latency_bucket_index(1) == 0);
  CHECK(latency_bucket_index(2) == 1);
  CHECK(latency_bucket_index(3) == 2);
  CHECK(latency_bucket_index(4) == 2);
  CHECK(latency_bucket_index(5) == 3);
  CHECK(latency_bucket_index(1024) == 10);
  CHECK(latency_bucket_index(1025) == 11);
  CHECK(latency_bucket_index(1u << 25) == 25);
  CHECK(latency_bucket_index((1u << 25) + 1) == 26);
  CHECK(latency_bucket_index(~0ull) == 26);
  CHECK(divert::latency_bucket_bound_us(0) == 1);
  CHECK(divert::latency_bucket_bound_us(25) == 33554432);

  Metrics m("div1");
  fill_example(m);
  m.record_connect_latency(-5ms);  // clock glitch: counted as 0
  const auto s = m.snapshot();
  CHECK(s.connect_latency.buckets[0] == 2);
  CHECK(s.connect_latency.buckets[2] == 1);
  CHECK(s.connect_latency.buckets[11] == 1);
  CHECK(s.connect_latency.buckets[26] == 1);
  CHECK(s.connect_latency.count == 5);
  CHECK(s.connect_latency.sum_us == 3 + 1500 + 100'000'000);
  std::uint64_t total = 0;
  for (auto b : s.connect_latency.buckets) total += b;
  CHECK(total == 5);
}

TEST_CASE("metrics: snapshot is a value, delta_since subtracts", "[metrics]") {
  Metrics m("div1", {{"site", "eu-1"}});
  m.add(MetricsCounter::task_total, 5);
  m.record_connect_latency(3us);
  const auto first = m.snapshot();
  m.add(MetricsCounter::task_total, 2);
  m.add(MetricsCounter::tcp_connect_timeout);
  m.record_connect_latency(3us);
  const auto second = m.snapshot();
  CHECK(first[MetricsCounter::task_total] == 5);  // unchanged by later adds
  CHECK(second[MetricsCounter::task_total] == 7);
  const auto d = second.delta_since(first);
  CHECK(d[MetricsCounter::task_total] == 2);
  CHECK(d[MetricsCounter::tcp_connect_timeout] == 1);
  CHECK(d.connect_latency.buckets[2] == 1);
  CHECK(d.connect_latency.count == 1);
  CHECK(d.connect_latency.sum_us == 3);
  CHECK(d.tags == second.tags);
  CHECK(first.delta_since(second)[MetricsCounter::task_total] == 0);  // never negative
  REQUIRE(second.tags.size() == 2);
  CHECK(second.tags[0] == std::pair<std::string, std::string>("escaper", "div1"));
  CHECK(second.tags[1] == std::pair<std::string, std::string>("site", "eu-1"));
}

TEST_CASE("metrics: the visitor sees every counter, then cumulative buckets", "[metrics]") {
  Metrics m("div1", {{"site", "eu-1"}});
  fill_example(m);
  struct Row {
    std::string name;
    divert::MetricTags tags;
    std::uint64_t value;
  };
  std::vector<Row> rows;
  m.visit([&](std::string_view name, const divert::MetricTags& tags, std::uint64_t v) {
    rows.push_back({std::string(name), tags, v});
  });
  REQUIRE(rows.size() == divert::kMetricsCounterCount + divert::kLatencyBuckets + 2);
  CHECK(rows[0].name == "escaper.task.total");
  CHECK(rows[0].value == 3);
  CHECK(rows[9].name == "escaper.traffic.out.bytes");
  CHECK(rows[9].value == 2000);
  CHECK(rows[0].tags == m.tags());
  CHECK(rows[11].name == "escaper.tls.handshake.timeout");
  const std::size_t c = divert::kMetricsCounterCount;  // the first bucket's row
  const Row& b0 = rows[c];
  CHECK(b0.name == "escaper.tcp.connect.duration_us.bucket");
  REQUIRE(b0.tags.size() == 3);
  CHECK(b0.tags[2] == std::pair<std::string, std::string>("le", "1"));
  CHECK(b0.value == 1);
  CHECK(rows[c + 2].value == 2);  // le=4, cumulative
  CHECK(rows[c + 2].tags[2].second == "4");
  CHECK(rows[c + 26].tags[2].second == "+Inf");
  CHECK(rows[c + 26].value == 4);
  CHECK(rows[c + 27].name == "escaper.tcp.connect.duration_us.count");
  CHECK(rows[c + 27].value == 4);
  CHECK(rows[c + 28].name == "escaper.tcp.connect.duration_us.sum");
  CHECK(rows[c + 28].value == 3 + 1500 + 100'000'000);
}

TEST_CASE("metrics: StatsD text, exact", "[metrics]") {
  Metrics m("div1", {{"site", "eu-1"}, {"pool", "a.b/c"}});
  fill_example(m);
  const std::string expected =
      "svc.escaper.task.total:3|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.connection.attempt:2|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.connection.establish:1|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.attempt:4|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.establish:3|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.success:2|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.error:1|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.timeout:1|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.traffic.in.bytes:1000|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.traffic.out.bytes:2000|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tls.handshake.error:0|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tls.handshake.timeout:0|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.duration_us.bucket:1|c|#escaper:div1,pool:a.b/c,site:eu-1,le:1\n"
      "svc.escaper.tcp.connect.duration_us.bucket:1|c|#escaper:div1,pool:a.b/c,site:eu-1,le:2\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:4\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:8\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:16\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:32\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:64\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:128\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:256\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:512\n"
      "svc.escaper.tcp.connect.duration_us.bucket:2|c|#escaper:div1,pool:a.b/c,site:eu-1,le:1024\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/c,site:eu-1,le:2048\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/c,site:eu-1,le:4096\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/c,site:eu-1,le:8192\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/c,site:eu-1,le:16384\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/c,site:eu-1,le:32768\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/c,site:eu-1,le:65536\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:131072\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:262144\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:524288\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:1048576\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:2097152\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:4194304\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:8388608\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:16777216\n"
      "svc.escaper.tcp.connect.duration_us.bucket:3|c|#escaper:div1,pool:a.b/"
      "c,site:eu-1,le:33554432\n"
      "svc.escaper.tcp.connect.duration_us.bucket:4|c|#escaper:div1,pool:a.b/c,site:eu-1,le:+Inf\n"
      "svc.escaper.tcp.connect.duration_us.count:4|c|#escaper:div1,pool:a.b/c,site:eu-1\n"
      "svc.escaper.tcp.connect.duration_us.sum:100001503|c|#escaper:div1,pool:a.b/c,site:eu-1\n";
  CHECK(divert::format_statsd(m.snapshot(), "svc") == expected);

  Metrics bare("x");
  const std::string text = divert::format_statsd(bare.snapshot(), "");
  CHECK(text.rfind("escaper.task.total:0|c|#escaper:x\n", 0) == 0);
}

TEST_CASE("metrics: tag validation", "[metrics]") {
  CHECK(config_error_key("div1", {{"a-b_c.d/e", "Zz09-_./"}}).empty());
  CHECK(config_error_key("div1", {{"région", "Zürich"}}).empty());  // letters beyond ASCII
  CHECK(config_error_key("div 1", {}) == "escaper=div 1");
  CHECK(config_error_key("", {}) == "escaper=");
  CHECK(config_error_key("div1", {{"bad tag", "v"}}) == "extra_metrics_tags=bad tag");
  CHECK(config_error_key("div1", {{"k", "a:b"}}) == "extra_metrics_tags=a:b");
  CHECK(config_error_key("div1", {{"k", "a,b"}}) == "extra_metrics_tags=a,b");
  CHECK(config_error_key("div1", {{"k", "a|b"}}) == "extra_metrics_tags=a|b");
  CHECK(config_error_key("div1", {{"k", "a#b"}}) == "extra_metrics_tags=a#b");
  CHECK(config_error_key("div1", {{"k", ""}}) == "extra_metrics_tags=");
  CHECK(config_error_key("div1", {{"", "v"}}) == "extra_metrics_tags=");
  CHECK(config_error_key("div1", {{"k", "\xff"}}) == "extra_metrics_tags=\xff");
  CHECK(config_error_key("div1", {{"k", "\xc3"}}) == "extra_metrics_tags=\xc3");  // cut
  CHECK(config_error_key("div1", {{"k", "\xc0\xaf"}}) ==
        "extra_metrics_tags=\xc0\xaf");  // overlong
  CHECK(config_error_key("div1", {{"escaper", "other"}}) == "extra_metrics_tags=escaper");
  try {
    divert::validate_metric_tag("extra_metrics_tags", "a b");
    FAIL("no throw");
  } catch (const divert::config_error& e) {
    CHECK(std::string(e.what()).find("' '") != std::string::npos);
  }
}

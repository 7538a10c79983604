// --metrics-listen (issue 20): divert-port-forward with two next proxies
// serves GET /metrics; after a few connections the scrape (fetched with curl)
// is parsed by a real Prometheus parser — Debian's python3-prometheus-client,
// run with Debian's /usr/bin/python3 (the python3 first on PATH may be another
// interpreter without Debian's modules) — in check_prometheus.py: every family
// typed, the histogram consistent, per-proxy series for both next proxies.
// divert-next-proxy's own /metrics (ReceiverMetrics) is parsed the same way,
// and its metrics address is no upstream (loop guard).
#include <sys/socket.h>

#include <string>
#include <vector>

#include "divert/ppv2/encoder.hpp"
#include "programs.hpp"
#include "support/catch.hpp"

using namespace divert::test;
using namespace std::chrono_literals;

namespace {

const char* const kPython = "/usr/bin/python3";

std::string checker() {
  return std::string(DIVERT_TEST_SOURCE_DIR) + "/reliability/check_prometheus.py";
}

// True when Debian's python3 has prometheus_client; in CI its absence fails
// (tests/deps.sh installs python3-prometheus-client), elsewhere it skips.
bool have_prometheus_parser() {
  const auto r =
      run_command({kPython, "-c", "import prometheus_client.parser"}, std::chrono::seconds(20));
  if (r.status == 0) return true;
  if (in_ci()) FAIL("python3-prometheus-client missing in CI (tests/deps.sh installs it)");
  WARN("SKIPPED: " << kPython << " cannot import prometheus_client (apt-get install "
                   << "python3-prometheus-client)");
  return false;
}

// Echoes everything until the client closes.
void echo(int fd, int) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || !send_all(fd, buf, static_cast<std::size_t>(n))) return;
  }
}

// One round trip through the port forward: "ping-i" comes back.
bool round_trip(unsigned short port, int i) {
  auto c = connect_to(port);
  if (c.fd < 0) return false;
  const std::string msg = "ping-" + std::to_string(i);
  if (!send_all(c.fd, msg)) return false;
  std::string got;
  while (got.size() < msg.size()) {
    const auto more = read_some(c.fd, 3000ms);
    if (more.empty()) break;
    got += more;
  }
  return got == msg;
}

// curl's output for url: {status, body}; headers go to `headers` when given.
struct Fetched {
  int code = 0;
  std::string body, headers;
};
Fetched fetch(const std::string& curl, const TempDir& dir, const std::string& url,
              const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{curl,         "-sS",
                                "--max-time", "5",
                                "-D",         (dir / "headers.txt").string(),
                                "-o",         (dir / "body.txt").string(),
                                "-w",         "%{http_code}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  const auto r = run_command(argv, 10s);
  Fetched f;
  if (r.status == 0) f.code = std::atoi(r.out.c_str());
  f.body = read_file(dir / "body.txt");
  f.headers = read_file(dir / "headers.txt");
  return f;
}

}  // namespace

TEST_CASE("--metrics-listen: /metrics parsed by prometheus_client, per-proxy series for both",
          "[metrics][live]") {
  auto curl = DIVERT_REQUIRE_TOOL("curl");
  if (!curl || !have_prometheus_parser()) return;
  TempDir dir;
  AcceptingPeer upstream(echo);
  const auto np1_metrics = free_port();
  NextProxy np1(dir, {"--metrics-listen", loopback(np1_metrics)}, 0, "np1");
  NextProxy np2(dir, {}, 0, "np2");
  const auto pf_port = free_port();
  const auto metrics_port = free_port();
  Process pf({bin("divert-port-forward"), "--listen", loopback(pf_port), "--upstream",
              loopback(upstream.port()), "--next-proxy", loopback(np1.port), "--next-proxy",
              loopback(np2.port), "--pick-policy", "round_robin", "--metrics-listen",
              loopback(metrics_port)},
             dir / "pf.out", dir / "pf.err");
  REQUIRE(wait_listening(dir, "pf.err"));
  CHECK(
      read_file(dir / "pf.err").find("metrics on http://" + loopback(metrics_port) + "/metrics") !=
      std::string::npos);

  constexpr int kConnections = 8;
  for (int i = 0; i < kConnections; ++i) REQUIRE(round_trip(pf_port, i));
  REQUIRE(wait_until([&] { return upstream.accepted() == kConnections; }));

  const std::string url = "http://" + loopback(metrics_port);
  const auto scrape = fetch(*curl, dir, url + "/metrics");
  REQUIRE(scrape.code == 200);
  CHECK(scrape.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") !=
        std::string::npos);
  CHECK(scrape.headers.find("Connection: close\r\n") != std::string::npos);
  CHECK(scrape.body.find("divert_escaper_task_total{escaper=\"divert-port-forward\"} " +
                         std::to_string(kConnections) + "\n") != std::string::npos);
  dir.write("metrics.txt", scrape.body);
  {
    const auto parsed = run_command({kPython, checker(), (dir / "metrics.txt").string(),
                                     loopback(np1.port), loopback(np2.port)},
                                    30s);
    INFO(parsed.out);
    INFO(scrape.body);
    CHECK(parsed.status == 0);
  }

  // Nothing else is served.
  CHECK(fetch(*curl, dir, url + "/").code == 404);
  CHECK(fetch(*curl, dir, url + "/metrics", {"-X", "POST"}).code == 405);
  const auto head = fetch(*curl, dir, url + "/metrics", {"-I"});  // curl -I: headers only
  CHECK(head.code == 200);
  CHECK(head.headers.find("Content-Length: ") != std::string::npos);
  CHECK(head.body.find("# HELP") == std::string::npos);

  // divert-next-proxy's own endpoint: the receiver's counters.
  // (A connection is counted when its relay has ended: wait for the first.)
  Fetched np_scrape;
  CHECK(wait_until([&] {
    np_scrape = fetch(*curl, dir, "http://" + loopback(np1_metrics) + "/metrics");
    return np_scrape.code == 200 &&
           np_scrape.body.find("{outcome=\"connected\"} 0\n") == std::string::npos;
  }));
  REQUIRE(np_scrape.code == 200);
  dir.write("np1.txt", np_scrape.body);
  const auto np_parsed =
      run_command({kPython, checker(), (dir / "np1.txt").string(), "--receiver"}, 30s);
  INFO(np_parsed.out);
  INFO(np_scrape.body);
  CHECK(np_parsed.status == 0);
}

TEST_CASE("--metrics-listen: divert-next-proxy refuses its metrics address as an upstream",
          "[metrics][live]") {
  TempDir dir;
  const auto metrics_port = free_port();
  // Loopback upstreams allowed: only the loop guard can refuse this one.
  NextProxy np(dir, {"--metrics-listen", loopback(metrics_port)});
  divert::ppv2::HeaderSpec h;
  h.src = *divert::ppv2::Endpoint::ip_literal("192.0.2.1", 40000);
  h.dst = *divert::ppv2::Endpoint::ip_literal("192.0.2.2", 3128);
  const std::string upstream = loopback(metrics_port);  // the spec holds views
  h.upstream = upstream;
  h.status_reply = true;
  std::vector<std::uint8_t> out(divert::ppv2::encoded_size(h).size);
  REQUIRE_FALSE(divert::ppv2::encode(h, out).ec);
  const std::string header(out.begin(), out.end());
  auto c = connect_to(np.port);
  REQUIRE(c.fd >= 0);
  REQUIRE(send_all(c.fd, header + "GET /metrics HTTP/1.1\r\n\r\n"));
  const auto r = read_until_close(c.fd, 5s);
  CHECK(r.closed);
  REQUIRE(r.data.size() == 8);  // the status reply only: no metrics came back
  CHECK(r.data.substr(0, 4) == "DVT1");
  CHECK(static_cast<int>(r.data[4]) == 5);  // denied
}

// TLS faults on the https forward path, through the programs:
//   client --GET https://localhost:<port>/--> divert-forward-proxy
//          --PROXY v2 (E0, E1)--> divert-next-proxy --TCP--> origin
// with the origin in turn: a good TLS server (the control), a peer that
// answers garbage (not TLS), one that never answers (handshake timeout), a
// certificate valid for another name, a self-signed certificate (not in the
// CA bundle given with --ca-file). Certificates are made with the openssl CLI.
// Every fault: 502 (504 for the timeout) within a bound, the connector's TLS
// metric counted, a clear log line, and no descriptor left in either program.
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "programs.hpp"

using namespace divert::test;
using namespace std::chrono_literals;

namespace {

// What the forward proxy did with one https request.
struct Outcome {
  int status = 0;
  std::chrono::milliseconds took{};
  std::string response;
  bool fp_fds_back = false, np_fds_back = false;
  std::string fp_err;  // its log and, after it stopped, its StatsD metrics
};

// Runs one https request to localhost:`origin_port` through a fresh forward
// proxy (trusting only `ca`, TLS handshake timeout 500 ms) and next proxy.
Outcome https_through_proxies(const std::filesystem::path& ca, unsigned short origin_port) {
  TempDir dir;
  // A silent origin never closes: the next proxy's relay (half-closed by the
  // forward proxy) ends at its idle timeout.
  NextProxy np(dir, {"--idle-timeout", "1s"});
  ForwardProxy fp(
      dir, loopback(np.port),
      {"--ca-file", ca.string(), "--set", "tls_handshake_timeout=500ms", "--log", "warn"});
  auto fp_fds = settled_fd_count(fp.proc->pid());
  auto np_fds = settled_fd_count(np.proc->pid());
  Outcome o;
  o.status = proxy_status(fp.port, get_request(origin_port, "localhost", "https"), 10s, &o.took,
                          &o.response);
  o.fp_fds_back = fds_back_to(fp.proc->pid(), fp_fds);
  o.np_fds_back = fds_back_to(np.proc->pid(), np_fds);
  int st = fp.proc->stop();
  CHECK(WIFEXITED(st));
  o.fp_err = read_file(dir / "fp.err");
  return o;
}

// `openssl s_server -www` on 127.0.0.1 with this certificate and key.
struct OpensslServer {
  unsigned short port = free_port();
  TempDir dir;
  std::unique_ptr<Process> proc;
  OpensslServer(const TestPki& pki,
                const std::pair<std::filesystem::path, std::filesystem::path>& cert_key) {
    proc = std::make_unique<Process>(
        std::vector<std::string>{pki.openssl(), "s_server", "-accept", loopback(port), "-cert",
                                 cert_key.first.string(), "-key", cert_key.second.string(), "-www",
                                 "-quiet"},
        dir / "out", dir / "err");
    REQUIRE(wait_for_port("127.0.0.1", port));
  }
};

// A TCP origin that is not TLS: answers the ClientHello with text and closes.
struct GarbageOrigin {
  AcceptingPeer peer{[](int fd, int) {
    read_some(fd, 2s);
    send_all(fd, "SSH-2.0-OpenSSH_9.2 this is not TLS\r\n\r\n");
    ::shutdown(fd, SHUT_WR);
    read_until_close(fd, 2s);
  }};
};

// The test PKI, or nullptr (skipped, or failed in CI) without openssl.
std::unique_ptr<TestPki> pki_or_skip() {
  auto openssl = DIVERT_REQUIRE_TOOL("openssl");
  return openssl ? std::make_unique<TestPki>(*openssl) : nullptr;
}

void check_fault(const Outcome& o, int status, const std::string& counter,
                 const std::string& log_text) {
  INFO(o.fp_err);
  INFO(o.response);
  CHECK(o.status == status);
  CHECK(o.took < 3s);
  CHECK(o.fp_fds_back);
  CHECK(o.np_fds_back);
  CHECK(statsd_value(o.fp_err, "escaper.task.total") == 1);
  CHECK(statsd_value(o.fp_err, "escaper.tcp.connect.success") == 1);  // the next proxy was reached
  CHECK(statsd_value(o.fp_err, "escaper.tls.handshake.error") == (counter == "error" ? 1u : 0u));
  CHECK(statsd_value(o.fp_err, "escaper.tls.handshake.timeout") ==
        (counter == "timeout" ? 1u : 0u));
  CHECK(o.fp_err.find("TLS handshake with localhost:") != std::string::npos);
  CHECK(o.fp_err.find(log_text) != std::string::npos);
}

}  // namespace

TEST_CASE("https forward control: a good certificate for the name -> 200 through both programs") {
  auto pki = pki_or_skip();
  if (!pki) return;
  OpensslServer origin(*pki, pki->issue("localhost", "DNS:localhost"));
  auto o = https_through_proxies(pki->ca(), origin.port);
  INFO(o.fp_err);
  CHECK(o.status == 200);
  CHECK(o.response.find("s_server") != std::string::npos);
  CHECK(o.fp_fds_back);
  CHECK(o.np_fds_back);
  CHECK(statsd_value(o.fp_err, "escaper.tls.handshake.error") == 0);
  CHECK(statsd_value(o.fp_err, "escaper.tls.handshake.timeout") == 0);
  // Every byte of the answer counted, though the first read is not relay()'s
  // (it was 0 for a one-read answer), and the request written before relay().
  CHECK(statsd_value(o.fp_err, "escaper.traffic.in.bytes") == o.response.size());
  CHECK(statsd_value(o.fp_err, "escaper.traffic.out.bytes") > 0);
}

TEST_CASE("https forward: the origin speaks garbage (not TLS) -> 502, TLS error counted") {
  auto pki = pki_or_skip();
  if (!pki) return;
  GarbageOrigin origin;
  check_fault(https_through_proxies(pki->ca(), origin.peer.port()), 502, "error",
              "wrong version number");
  CHECK(origin.peer.accepted() == 1);
}

TEST_CASE("https forward: the origin never answers the ClientHello -> 504 at the TLS timeout") {
  auto pki = pki_or_skip();
  if (!pki) return;
  Listener silent;  // the listen backlog completes the handshake; nobody accepts
  auto o = https_through_proxies(pki->ca(), silent.port);
  check_fault(o, 504, "timeout", "TLS handshake timed out");
  CHECK(o.took >= 450ms);  // tls_handshake_timeout=500ms, not the 10 s default
}

TEST_CASE("https forward: a certificate valid for another name -> 502, TLS error counted") {
  auto pki = pki_or_skip();
  if (!pki) return;
  OpensslServer origin(*pki, pki->issue("other", "DNS:other.test"));
  check_fault(https_through_proxies(pki->ca(), origin.port), 502, "error",
              "certificate verify failed");
}

TEST_CASE(
    "https forward: a self-signed certificate not in the CA bundle -> 502, TLS error counted") {
  auto pki = pki_or_skip();
  if (!pki) return;
  OpensslServer origin(*pki, pki->self_signed("localhost-self", "DNS:localhost"));
  check_fault(https_through_proxies(pki->ca(), origin.port), 502, "error",
              "certificate verify failed");
}

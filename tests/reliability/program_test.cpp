// The example programs under faults and attack, on loopback:
//  * divert-forward-proxy answers 502/504 (never hangs) when the next hop
//    refuses, black-holes SYNs (network namespace), closes right after the
//    header, or when the upstream behind divert-next-proxy is unreachable;
//  * divert-next-proxy under attack: untrusted source, slowloris, oversized
//    headers, 10,000 malformed headers — no crash, still serving, and its
//    upstream never sees a connection for any of them;
//  * graceful shutdown: SIGTERM mid-transfer through divert-port-forward ->
//    divert-next-proxy -> sink; the transfer completes byte-exact, new
//    connections are refused, and the programs exit.
#define XXH_INLINE_ALL
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "netns.hpp"
#include "programs.hpp"
#include "support/live.hpp"

namespace test = divert::test;
using namespace divert::test;
using namespace std::chrono_literals;

namespace {

// ---- PROXY v2 headers built by hand (so the malformed ones can be made)

const unsigned char kSig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// A valid v2 PROXY TCP4 header whose TLV 0xE0 names `upstream`, plus `pad`
// bytes of an extra TLV (type 0xEE, ignored by the receiver).
std::string v2_header(const std::string& upstream, std::size_t pad = 0) {
  std::string body;
  body += std::string("\x7f\x00\x00\x09", 4) + std::string("\x7f\x00\x00\x01", 4);  // src, dst
  body += std::string("\x9c\x40", 2) + std::string("\x1f\x90", 2);                  // 40000, 8080
  auto tlv = [&](unsigned char type, const std::string& v) {
    body.push_back(static_cast<char>(type));
    body.push_back(static_cast<char>(v.size() >> 8));
    body.push_back(static_cast<char>(v.size() & 0xff));
    body += v;
  };
  tlv(0xE0, upstream);
  if (pad) tlv(0xEE, std::string(pad, 'p'));
  std::string h(reinterpret_cast<const char*>(kSig), 12);
  h.push_back(0x21);  // v2, PROXY
  h.push_back(0x11);  // TCP over IPv4
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

// Deterministic generator of headers the receiver must refuse, whatever the
// draw: none of them can decode into a header with an upstream.
struct Malformed {
  std::uint64_t x;
  explicit Malformed(std::uint64_t seed) : x(seed * 2654435761u + 1) {}
  std::uint64_t next() {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  }
  std::string make(const std::string& valid) {
    std::string h = valid;
    switch (next() % 8) {
      case 0: {  // random bytes (never the v2 signature: first byte is not 0x0D)
        std::string r(1 + next() % 200, '\0');
        for (auto& c : r) c = static_cast<char>(next());
        if (r[0] == 0x0D) r[0] = 0x0E;
        return r;
      }
      case 1:  // truncated valid header (the sender then half-closes)
        return h.substr(0, 1 + next() % (h.size() - 1));
      case 2:  // bad signature
        h[next() % 12] ^= static_cast<char>(1 + next() % 255);
        return h;
      case 3:  // bad version (0, 1, 3..14) or bad command (2..15)
        if (next() % 2) {
          unsigned v = static_cast<unsigned>(next() % 13);
          v = v < 2 ? v : v + 1;
          h[12] = static_cast<char>((v << 4) | 1);
        } else {
          h[12] = static_cast<char>(0x20 | (2 + next() % 14));
        }
        return h;
      case 4:  // bad family / transport nibble (3..15)
        h[13] = static_cast<char>(next() % 2 ? (((3 + next() % 13) << 4) | 1)
                                             : (0x10 | (3 + next() % 13)));
        return h;
      case 5: {  // TLV overrun: E0's length runs past the end of the header
        std::size_t add = 1 + next() % 600;
        std::size_t len = (static_cast<unsigned char>(h[16 + 12 + 1]) << 8) |
                          static_cast<unsigned char>(h[16 + 12 + 2]);
        len += add;
        h[16 + 12 + 1] = static_cast<char>(len >> 8);
        h[16 + 12 + 2] = static_cast<char>(len & 0xff);
        return h;
      }
      case 6: {  // huge length (over the 4096-byte maximum), with some bytes after
        std::size_t len = 4096 + next() % (65536 - 4096);
        h[14] = static_cast<char>(len >> 8);
        h[15] = static_cast<char>(len & 0xff);
        return h;
      }
      default: {  // length shorter than the IPv4 address block
        std::size_t len = next() % 12;
        h[14] = 0;
        h[15] = static_cast<char>(len);
        return h.substr(0, 16 + len);
      }
    }
  }
};

// ---- a local upstream: counts connections; answers "upstream-ok <n>\n" after
// reading a line (or EOF).
class Upstream {
 public:
  unsigned short port() const { return peer_.port(); }
  int accepted() const { return peer_.accepted(); }

 private:
  static std::string read_line(int fd) {
    std::string s;
    auto deadline = Clock::now() + 3s;
    char ch;
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (::recv(fd, &ch, 1, 0) != 1 || ch == '\n') break;
      s.push_back(ch);
    }
    return s;
  }
  AcceptingPeer peer_{[](int fd, int n) {
    auto r = read_line(fd);
    send_all(fd, "upstream-ok " + std::to_string(n) + " " + r + "\n");
    ::shutdown(fd, SHUT_WR);
    read_until_close(fd, 2s);
  }};
};

// Sends a valid header naming the upstream, then "ping\n"; returns what came back.
std::string valid_request(unsigned short np_port, unsigned short upstream_port) {
  auto s = connect_to(np_port);
  if (s.fd < 0) return "<connect failed>";
  send_all(s.fd, v2_header(loopback(upstream_port)) + "ping\n");
  return read_until_close(s.fd, 5s).data;
}

}  // namespace

// ------------------------------------------------------------ forward proxy

TEST_CASE("forward proxy: next proxy refuses -> 502 at once, error metric counted") {
  test::TempDir dir;
  auto dead = test::free_port();
  auto fp_port = test::free_port();
  test::Process fp(
      with_loopback_allowed({bin("divert-forward-proxy"), "--listen", loopback(fp_port),
                             "--next-proxy", loopback(dead), "--set", "tcp_connect.max_retry=0",
                             "--set", "proxy_failover=0"}),
      dir / "fp.out", dir / "fp.err");
  REQUIRE(wait_listening(dir, "fp.err"));
  auto fds = settled_fd_count(fp.pid());
  std::chrono::milliseconds took{};
  CHECK(proxy_status(fp_port, get_request(80), 10s, &took) == 502);
  CHECK(took < 3s);
  CHECK(proxy_status(fp_port, connect_request(443), 10s, &took) == 502);
  CHECK(took < 3s);
  CHECK(fds_back_to(fp.pid(), fds));
  int st = fp.stop();
  CHECK(WIFEXITED(st));
  auto err = test::read_file(dir / "fp.err");
  INFO(err);
  CHECK(statsd_value(err, "escaper.tcp.connect.error") == 2);
  CHECK(statsd_value(err, "escaper.tcp.connect.timeout") == 0);
  CHECK(statsd_value(err, "escaper.task.total") == 2);
}

TEST_CASE("forward proxy: next proxy black-holes SYNs (netns) -> 504, timeout metric counted") {
  auto np_port = test::free_port();
  test::TempDir dir;
  int get_status = 0, connect_status = 0, exit_status = -1;
  bool fds_closed = false;
  std::chrono::milliseconds took_get{}, took_connect{};
  std::string err;
  auto why = test::run_in_blackhole_netns(np_port, [&] {
    // Everything here (the program and our sockets) lives in the namespace.
    auto fp_port = test::free_port();
    test::Process fp(
        with_loopback_allowed({bin("divert-forward-proxy"), "--listen", loopback(fp_port),
                               "--next-proxy", loopback(np_port), "--set",
                               "tcp_connect.each_timeout=300ms", "--set", "tcp_connect.max_retry=0",
                               "--set", "proxy_failover=0"}),
        dir / "fp.out", dir / "fp.err");
    if (!wait_listening(dir, "fp.err")) return;
    auto fds = settled_fd_count(fp.pid());
    get_status = proxy_status(fp_port, get_request(80), 10s, &took_get);
    connect_status = proxy_status(fp_port, connect_request(443), 10s, &took_connect);
    fds_closed = fds_back_to(fp.pid(), fds);
    exit_status = fp.stop();
    err = test::read_file(dir / "fp.err");
  });
  DIVERT_REQUIRE_NETNS(why);
  INFO(err);
  CHECK(get_status == 504);
  CHECK(connect_status == 504);
  CHECK(took_get < 2s);
  CHECK(took_connect < 2s);
  CHECK(fds_closed);
  CHECK(WIFEXITED(exit_status));
  CHECK(statsd_value(err, "escaper.tcp.connect.timeout") == 2);
  CHECK(statsd_value(err, "escaper.tcp.connect.error") == 0);
}

TEST_CASE("forward proxy: next proxy closes right after the header -> 502") {
  test::TempDir dir;
  // A next hop that reads whatever arrives (header + request) and closes.
  AcceptingPeer hop([](int fd, int) {
    read_some(fd, 2s);
    ::shutdown(fd, SHUT_WR);  // FIN, no byte
    read_until_close(fd, 5s);
  });
  ForwardProxy fp(dir, loopback(hop.port()));
  auto fds = settled_fd_count(fp.proc->pid());
  std::chrono::milliseconds took{};
  CHECK(proxy_status(fp.port, get_request(80), 10s, &took) == 502);
  CHECK(took < 3s);
  CHECK(hop.accepted() == 1);
  CHECK(fds_back_to(fp.proc->pid(), fds));
}

TEST_CASE(
    "forward proxy: next proxy accepts but never reads or answers -> 504 at the response timeout") {
  test::TempDir dir;
  // The kernel completes the handshake (listen backlog); nobody ever accepts.
  Listener lst;
  auto fp_port = test::free_port();
  test::Process fp(
      with_loopback_allowed({bin("divert-forward-proxy"), "--listen", loopback(fp_port),
                             "--next-proxy", loopback(lst.port), "--response-timeout", "500ms"}),
      dir / "fp.out", dir / "fp.err");
  REQUIRE(wait_listening(dir, "fp.err"));
  auto fds = settled_fd_count(fp.pid());
  std::chrono::milliseconds took{};
  CHECK(proxy_status(fp_port, get_request(80), 10s, &took) == 504);
  CHECK(took >= 450ms);
  CHECK(took < 3s);
  CHECK(fds_back_to(fp.pid(), fds));  // the socket to the stuck next hop is closed too
  fp.stop();
  auto err = test::read_file(dir / "fp.err");
  INFO(err);
  CHECK(statsd_value(err, "escaper.tcp.connect.success") == 1);  // the hop itself was reachable
}

TEST_CASE("forward proxy -> next proxy -> unreachable upstream: 502, and next proxy logs it") {
  test::TempDir dir;
  NextProxy np(dir);
  auto fp_port = test::free_port();
  test::Process fp(with_loopback_allowed({bin("divert-forward-proxy"), "--listen",
                                          loopback(fp_port), "--next-proxy", loopback(np.port)}),
                   dir / "fp.out", dir / "fp.err");
  REQUIRE(wait_listening(dir, "fp.err"));
  auto fp_fds = settled_fd_count(fp.pid());
  auto np_fds = settled_fd_count(np.proc->pid());
  auto dead = test::free_port();
  std::chrono::milliseconds took{};
  CHECK(proxy_status(fp_port, get_request(dead), 10s, &took) == 502);
  CHECK(took < 3s);
  CHECK(fds_back_to(fp.pid(), fp_fds));
  CHECK(fds_back_to(np.proc->pid(), np_fds));
  REQUIRE(
      test::wait_until([&] { return lines_of(test::read_file(dir / "np.jsonl")).size() == 1; }));
  auto line = lines_of(test::read_file(dir / "np.jsonl"))[0];
  INFO(line);
  CHECK(line.find("\"error\":\"upstream: ") != std::string::npos);
  CHECK(line.find("refused") != std::string::npos);
}

TEST_CASE("forward proxy: a CR in the request target is refused with 400, nothing diverted") {
  test::TempDir dir;
  auto np_port = test::free_port();  // never contacted
  auto fp_port = test::free_port();
  test::Process fp(with_loopback_allowed({bin("divert-forward-proxy"), "--listen",
                                          loopback(fp_port), "--next-proxy", loopback(np_port)}),
                   dir / "fp.out", dir / "fp.err");
  REQUIRE(wait_listening(dir, "fp.err"));
  CHECK(proxy_status(fp_port, "GET http://127.0.0.1:80/a\rX-Injected:1 HTTP/1.1\r\nHost: x\r\n\r\n",
                     5s) == 400);
  fp.stop();
  auto err = test::read_file(dir / "fp.err");
  INFO(err);
  CHECK(statsd_value(err, "escaper.task.total") == 0);
}

// ------------------------------------------------------------ next proxy under attack

TEST_CASE("next proxy: untrusted source closed before reading, no upstream connect") {
  test::TempDir dir;
  Upstream up;
  NextProxy np(dir, {"--trust", "127.0.0.2/32"});
  auto s = connect_to(np.port, "127.0.0.1");
  REQUIRE(s.fd >= 0);
  send_all(s.fd, v2_header(loopback(up.port())) + "ping\n");
  auto r = read_until_close(s.fd, 3s);
  CHECK(r.closed);
  CHECK(r.data.empty());
  // From a trusted source the same bytes go through (the header is valid).
  auto t = connect_to(np.port, "127.0.0.2");
  REQUIRE(t.fd >= 0);
  send_all(t.fd, v2_header(loopback(up.port())) + "ping\n");
  auto ok = read_until_close(t.fd, 5s);
  CHECK(ok.data == "upstream-ok 1 ping\n");
  CHECK(up.accepted() == 1);
  auto lines = lines_of(test::read_file(dir / "np.jsonl"));
  REQUIRE(lines.size() >= 1);
  CHECK(lines[0].find("untrusted source") != std::string::npos);
}

TEST_CASE("next proxy: slowloris (one byte every 300 ms) is closed at the header timeout") {
  test::TempDir dir;
  Upstream up;
  NextProxy np(dir, {"--header-timeout", "1s"});
  auto header = v2_header(loopback(up.port()));
  auto s = connect_to(np.port);
  REQUIRE(s.fd >= 0);
  auto t0 = Clock::now();
  bool closed = false;
  std::size_t sent = 0;
  for (std::size_t i = 0; i < header.size() && !closed; ++i) {
    if (!send_all(s.fd, &header[i], 1)) {
      closed = true;
      break;
    }
    ++sent;
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, 300) > 0) {
      char c;
      closed = ::recv(s.fd, &c, 1, 0) <= 0;
    }
  }
  auto took = Clock::now() - t0;
  CHECK(closed);
  CHECK(sent < header.size());
  CHECK(took >= 900ms);
  CHECK(took < 1800ms);
  CHECK(up.accepted() == 0);
}

TEST_CASE("next proxy: headers over the maximum size are refused at once") {
  test::TempDir dir;
  Upstream up;
  NextProxy np(dir, {"--header-timeout", "3s"});
  // A complete, well-formed header of about 5000 bytes (over 4096).
  auto big = v2_header(loopback(up.port()), 5000);
  // A prefix announcing 65535 bytes of addresses and TLVs.
  auto huge = v2_header(loopback(up.port())).substr(0, 14) + std::string("\xff\xff", 2);
  for (auto* h : {&big, &huge}) {
    auto s = connect_to(np.port);
    REQUIRE(s.fd >= 0);
    auto t0 = Clock::now();
    send_all(s.fd, *h);  // may fail part way once the peer closed: fine
    auto r = read_until_close(s.fd, 5s);
    CHECK(r.closed);
    CHECK(r.data.empty());
    CHECK(r.when_closed - t0 < 1s);  // not the 3 s header timeout
  }
  REQUIRE(
      test::wait_until([&] { return lines_of(test::read_file(dir / "np.jsonl")).size() == 2; }));
  for (auto& l : lines_of(test::read_file(dir / "np.jsonl"))) {
    INFO(l);
    CHECK(l.find("\"error\":\"header: ") != std::string::npos);
  }
  CHECK(up.accepted() == 0);
  CHECK(valid_request(np.port, up.port()) == "upstream-ok 1 ping\n");
}

TEST_CASE("next proxy: 10,000 malformed headers — no crash, no upstream connect, still serving") {
  constexpr int kHeaders = 10'000;
  constexpr int kConcurrency = 8;
  test::TempDir dir;
  Upstream up;
  NextProxy np(dir, {"--header-timeout", "2s"});
  auto np_fds = settled_fd_count(np.proc->pid());
  auto valid = v2_header(loopback(up.port()));
  std::atomic<int> done{0}, closed{0}, unexpected_data{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kConcurrency; ++w) {
    workers.emplace_back([&, w] {
      Malformed gen(static_cast<std::uint64_t>(w) + 1);
      for (int i = w; i < kHeaders; i += kConcurrency) {
        auto bytes = gen.make(valid);
        auto s = connect_to(np.port);
        if (s.fd < 0) continue;
        send_all(s.fd, bytes);
        ::shutdown(s.fd, SHUT_WR);
        auto r = read_until_close(s.fd, 5s);
        if (r.closed) ++closed;
        if (!r.data.empty()) ++unexpected_data;
        ++done;
      }
    });
  }
  for (auto& t : workers) t.join();
  CHECK(done == kHeaders);
  CHECK(closed == kHeaders);
  CHECK(unexpected_data == 0);
  CHECK(np.proc->running());
  CHECK(up.accepted() == 0);
  REQUIRE(test::wait_until(
      [&] { return lines_of(test::read_file(dir / "np.jsonl")).size() == kHeaders; }, 10s));
  for (auto& l : lines_of(test::read_file(dir / "np.jsonl"))) {
    if (l.find("\"error\":\"header: ") == std::string::npos) {
      FAIL("a malformed header was not refused as such: " << l);
    }
  }
  // Still serving a valid request afterwards, which is the upstream's only connection.
  CHECK(valid_request(np.port, up.port()) == "upstream-ok 1 ping\n");
  CHECK(up.accepted() == 1);
  CHECK(fds_back_to(np.proc->pid(), np_fds));
}

// ------------------------------------------------------------ graceful shutdown

TEST_CASE("graceful shutdown: SIGTERM mid-transfer, the 8 MiB transfer completes byte-exact") {
  constexpr std::size_t kTotal = 8 << 20;
  test::TempDir dir;
  // Sink: reads everything until EOF, answers "<count> <xxh3 hex>\n".
  Listener lst;
  auto sink_port = lst.port;
  std::atomic<int> sink_conns{0};
  std::thread sink([&] {
    pollfd p{lst.fd.fd, POLLIN, 0};
    if (::poll(&p, 1, 15000) <= 0) return;
    Fd c(::accept4(lst.fd.fd, nullptr, nullptr, SOCK_CLOEXEC));
    ++sink_conns;
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    std::size_t count = 0;
    char buf[65536];
    auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      pollfd q{c.fd, POLLIN, 0};
      if (::poll(&q, 1, 100) <= 0) continue;
      auto n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      XXH3_64bits_update(st, buf, static_cast<std::size_t>(n));
      count += static_cast<std::size_t>(n);
    }
    char line[64];
    std::snprintf(line, sizeof line, "%zu %016llx\n", count,
                  static_cast<unsigned long long>(XXH3_64bits_digest(st)));
    XXH3_freeState(st);
    send_all(c.fd, std::string(line));
    ::shutdown(c.fd, SHUT_WR);
  });

  NextProxy np(dir);
  auto pf_port = test::free_port();
  test::Process pf({bin("divert-port-forward"), "--listen", loopback(pf_port), "--upstream",
                    loopback(sink_port), "--next-proxy", loopback(np.port)},
                   dir / "pf.out", dir / "pf.err");
  REQUIRE(wait_listening(dir, "pf.err"));

  std::string data(kTotal, '\0');
  std::uint64_t x = 88172645463325252ull;
  for (auto& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  char expect[64];
  std::snprintf(expect, sizeof expect, "%zu %016llx\n", kTotal,
                static_cast<unsigned long long>(XXH3_64bits(data.data(), data.size())));

  auto s = connect_to(pf_port);
  REQUIRE(s.fd >= 0);
  // First half, then SIGTERM to both programs, then the rest (paced a little).
  REQUIRE(send_all(s.fd, data.data(), kTotal / 2));
  REQUIRE(test::wait_until([&] { return sink_conns.load() == 1; }));
  ::kill(pf.pid(), SIGTERM);
  ::kill(np.proc->pid(), SIGTERM);
  auto t_term = Clock::now();
  std::this_thread::sleep_for(300ms);  // the signal closes the acceptors (a probe must not race it)
  // New connections are refused once the acceptors are closed.
  int refused_err = 0;
  bool refused = test::wait_until(
      [&] {
        auto n = connect_to(pf_port, "", &refused_err);
        return n.fd < 0 && refused_err == ECONNREFUSED;
      },
      2s);
  CHECK(refused);
  int np_refused_err = 0;
  CHECK(test::wait_until(
      [&] {
        auto n = connect_to(np.port, "", &np_refused_err);
        return n.fd < 0 && np_refused_err == ECONNREFUSED;
      },
      2s));
  for (std::size_t off = kTotal / 2; off < kTotal; off += 256 * 1024) {
    REQUIRE(send_all(s.fd, data.data() + off, std::min<std::size_t>(256 * 1024, kTotal - off)));
    std::this_thread::sleep_for(20ms);
  }
  ::shutdown(s.fd, SHUT_WR);
  auto r = read_until_close(s.fd, 10s);
  auto took = Clock::now() - t_term;
  sink.join();
  CHECK(r.closed);
  CHECK(r.data == expect);
  CHECK(took < 5s);  // within the programs' drain deadline (5 s)
  CHECK(sink_conns == 1);
  // Both programs exit on their own once the relay is done.
  CHECK(test::wait_until([&] { return !pf.running(); }, 3s));
  CHECK(test::wait_until([&] { return !np.proc->running(); }, 3s));
  auto np_lines = lines_of(test::read_file(dir / "np.jsonl"));
  REQUIRE(np_lines.size() == 1);
  INFO(np_lines[0]);
  CHECK(np_lines[0].find("\"bytes_up\":" + std::to_string(kTotal)) != std::string::npos);
  CHECK(np_lines[0].find("\"error\":null") != std::string::npos);
}

TEST_CASE("graceful shutdown: a relay still open at the drain deadline is closed") {
  test::TempDir dir;
  // An upstream that completes the handshake (listen backlog) and never answers.
  Listener lst;
  NextProxy np(dir);
  // A client holding a relay open without finishing it.
  auto s = connect_to(np.port);
  REQUIRE(s.fd >= 0);
  send_all(s.fd, v2_header(loopback(lst.port)) + "hello");
  pollfd p{lst.fd.fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);  // the next proxy connected upstream
  std::this_thread::sleep_for(100ms);
  auto t0 = Clock::now();
  ::kill(np.proc->pid(), SIGTERM);
  auto r = read_until_close(s.fd, 10s);
  auto took = Clock::now() - t0;
  CHECK(r.closed);
  CHECK(took >= 4500ms);  // drain deadline: 5 s
  CHECK(took < 7s);
  CHECK(test::wait_until([&] { return !np.proc->running(); }, 3s));
  CHECK(test::read_file(dir / "np.err").find("still open after the drain deadline") !=
        std::string::npos);
}

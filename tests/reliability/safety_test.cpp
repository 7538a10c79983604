// Safe defaults of divert-forward-proxy (issue 16): the destination policy and
// loop guard (403, nothing diverted), idle tunnels closed, half-open clients
// not holding descriptors, --max-connections, and JSON log lines that parse
// whatever bytes a client sent.
//
// No packet may leave loopback even if the policy regressed: every forward
// proxy whose targets include a non-loopback address (169.254.169.254, fe80::1,
// multicast) diverts to a sink on loopback that counts connections and never
// connects anywhere.
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>

#include "programs.hpp"
#include "support/catch.hpp"

using namespace divert::test;
using namespace std::chrono_literals;

namespace {

// A next hop that reads what arrives (PROXY header and request) and answers
// one canned response, then closes: it counts diverted connections and
// connects nowhere.
AcceptingPeer counting_sink() {
  return AcceptingPeer([](int fd, int) {
    read_some(fd, 2s);
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    ::shutdown(fd, SHUT_WR);
    read_until_close(fd, 2s);
  });
}

std::string http_get(const std::string& authority) {
  return "GET http://" + authority + "/x HTTP/1.1\r\nHost: " + authority +
         "\r\nConnection: close\r\n\r\n";
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += t[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace

TEST_CASE("forward proxy destination policy: 403 and nothing diverted; allowed with --allow",
          "[safety][policy]") {
  TempDir dir;
  auto sink = counting_sink();
  const std::string next = loopback(sink.port());
  // Default policy; loopback allowed; loopback allowed but 127.0.0.2 denied.
  ForwardProxy strict(dir, next, {}, 0, "strict", false);
  ForwardProxy loose(dir, next, {}, 0, "loose");
  ForwardProxy mixed(dir, next, {"--allow", "127.0.0.0/8", "--deny", "127.0.0.2/32"}, 0, "mixed",
                     false);
  for (const char* tag : {"strict.err", "loose.err", "mixed.err"})
    REQUIRE(wait_listening(dir, tag));
  const std::string port = "9";  // any port: the sink answers for every diverted target
  const std::string own = "127.0.0.1:" + std::to_string(loose.port);

  struct Case {
    std::string authority;
    int strict, loose;  // expected status; 200 means diverted (the sink answered)
  };
  const std::vector<Case> cases = {
      {"127.0.0.1:" + port, 403, 200},
      {"127.0.0.9:" + port, 403, 200},
      {"[::ffff:127.0.0.1]:" + port, 403, 200},
      {"[::1]:" + port, 403, 200},
      {"localhost:" + port, 403, 200},
      {"LocalHost.:" + port, 403, 200},
      {"foo.localhost:" + port, 403, 200},
      {"169.254.169.254:80", 403, 403},
      {"[::ffff:169.254.169.254]:80", 403, 403},
      {"[fe80::1]:80", 403, 403},
      {"224.0.0.1:80", 403, 403},
      {"[ff02::1]:80", 403, 403},
      {own, 403, 403},   // loose's own listen address: loop guard, no allow lifts it
      {next, 403, 403},  // its next proxy: loop guard
      // A next proxy on loopback may listen on every address of the host.
      {"127.0.0.2:" + std::to_string(sink.port()), 403, 403},
      {"[::1]:" + std::to_string(sink.port()), 403, 403},
      // Not valid hosts: IPv4 shorthand and the unspecified address are
      // refused as requests (400) before any policy: nothing is diverted.
      {"0.0.0.0:" + port, 400, 400},
      {"[::]:" + port, 400, 400},
      {"127.1:" + port, 400, 400},
      {"2130706433:" + port, 400, 400},
      {"0x7f.1:" + port, 400, 400},
      {"017700000001:" + port, 400, 400},
      {"0177.0.0.1:" + port, 400, 400},
      {"127.000.000.001:" + port, 400, 400},
  };
  int diverted = 0;
  for (const auto& c : cases) {
    for (bool connect : {true, false}) {
      const auto req = connect ? http_connect(c.authority) : http_get(c.authority);
      for (auto [fp, want] : {std::pair{&strict, c.strict}, std::pair{&loose, c.loose}}) {
        INFO((connect ? "CONNECT " : "GET ")
             << c.authority << " via " << (fp == &strict ? "strict" : "loose"));
        const int before = sink.accepted();
        std::string resp;
        CHECK(proxy_status(fp->port, req, 5s, nullptr, &resp) == want);
        if (want == 200) ++diverted;
        // A refusal connects nothing: wait a little for a wrong late connect to show.
        if (want != 200) std::this_thread::sleep_for(20ms);
        CHECK(sink.accepted() - before == (want == 200 ? 1 : 0));
      }
    }
  }
  CHECK(sink.accepted() == diverted);
  // Most specific rule wins: 127.0.0.2 denied, the rest of 127/8 allowed.
  CHECK(proxy_status(mixed.port, http_connect("127.0.0.2:" + port), 5s) == 403);
  CHECK(proxy_status(mixed.port, http_get("127.0.0.3:" + port), 5s) == 200);
  CHECK(proxy_status(mixed.port, http_get("[::1]:" + port), 5s) == 403);  // ::1 not allowed there
  CHECK(sink.accepted() == diverted + 1);
  // A bad CIDR is a usage error naming the value.
  auto bad = run_command(
      {bin("divert-forward-proxy"), "--next-proxy", next, "--allow", "10.0.0.0/33"}, 10s);
  CHECK(bad.status == 2);
}

TEST_CASE("forward proxy: an idle CONNECT tunnel is closed at --idle-timeout", "[safety][idle]") {
  TempDir dir;
  NextProxy np(dir);
  Listener origin(64);  // completes handshakes, never accepts, never sends: a silent upstream
  ForwardProxy fp(dir, loopback(np.port), {"--idle-timeout", "1s"});
  REQUIRE(wait_listening(dir, "np.err"));
  REQUIRE(wait_listening(dir, "fp.err"));
  auto c = connect_to(fp.port);
  REQUIRE(c.fd >= 0);
  REQUIRE(send_all(c.fd, http_connect("127.0.0.1:" + std::to_string(origin.port))));
  const auto t0 = Clock::now();
  auto r = read_until_close(c.fd, 6s);
  INFO(r.data);
  CHECK(http_status(r.data) == 200);
  REQUIRE(r.closed);
  const auto took = r.when_closed - t0;
  CHECK(took >= 900ms);
  CHECK(took < 4s);
}

TEST_CASE("forward proxy: half-open clients do not hold descriptors past --idle-timeout",
          "[safety][idle]") {
  TempDir dir;
  NextProxy np(dir);
  Listener origin(64);  // silent upstream: never closes its side
  ForwardProxy fp(dir, loopback(np.port), {"--idle-timeout", "1s"});
  REQUIRE(wait_listening(dir, "np.err"));
  REQUIRE(wait_listening(dir, "fp.err"));
  const auto baseline = settled_fd_count(fp.proc->pid());
  std::vector<Fd> clients;
  for (int i = 0; i < 10; ++i) {
    auto c = connect_to(fp.port);
    REQUIRE(c.fd >= 0);
    REQUIRE(send_all(c.fd, http_connect("127.0.0.1:" + std::to_string(origin.port))));
    REQUIRE(http_status(read_some(c.fd, 3s)) == 200);
    ::shutdown(c.fd, SHUT_WR);  // the client is done sending; it never reads again
    clients.push_back(std::move(c));
  }
  CHECK(proc_fds(fp.proc->pid()).sockets >= baseline.sockets + 10);  // the tunnels are up
  // Idle timeout 1 s after the last byte; the half-close carries no byte.
  CHECK(fds_back_to(fp.proc->pid(), baseline, 4s));
}

TEST_CASE(
    "forward proxy --max-connections: descriptors bounded, a request succeeds once load drops",
    "[safety][max-connections]") {
  TempDir dir;
  auto sink = counting_sink();
  constexpr int kCap = 20, kIdle = 60, kMargin = 8;
  ForwardProxy fp(dir, loopback(sink.port()), {"--max-connections", std::to_string(kCap)});
  REQUIRE(wait_listening(dir, "fp.err"));
  const int pid = fp.proc->pid();
  const int baseline = settled_fd_count(pid).total();
  int peak = baseline;
  auto sample = [&] { peak = std::max(peak, proc_fd_count(pid)); };
  // Connections that send nothing: each holds a handler (head timeout 30 s).
  std::vector<Fd> idle;
  for (int i = 0; i < kIdle; ++i) {
    auto c = connect_to(fp.port);
    REQUIRE(c.fd >= 0);  // the backlog completes the handshake even at the cap
    idle.push_back(std::move(c));
    sample();
  }
  // A legitimate request, made while the proxy is at its cap: it waits.
  int status = -2;
  std::thread legit([&] { status = proxy_status(fp.port, http_get("127.0.0.1:9"), 10s); });
  const auto until = Clock::now() + 500ms;
  while (Clock::now() < until) {
    sample();
    std::this_thread::sleep_for(10ms);
  }
  CHECK(status == -2);  // not served yet
  CHECK(sink.accepted() == 0);
  idle.clear();  // the load drops
  for (int i = 0; i < 100 && status == -2; ++i) {
    sample();
    std::this_thread::sleep_for(10ms);
  }
  legit.join();
  CHECK(status == 200);
  CHECK(sink.accepted() == 1);
  INFO("baseline " << baseline << ", peak " << peak);
  CHECK(peak <= baseline + kCap + kMargin);
}

// A user name travels in TLV 0xE2, which carries UTF-8 only (design.md): the
// characters U+007F-U+00FF go as UTF-8, and a name with bytes that are not
// UTF-8 is refused when the forward proxy starts (it could never be sent).
TEST_CASE("next proxy log line parses as JSON for a user name with U+007F-U+00FF and quotes",
          "[safety][json]") {
  std::string python = "/usr/bin/python3";
  if (!std::filesystem::exists(python)) {
    auto found = DIVERT_REQUIRE_TOOL("python3");
    if (!found) return;
    python = *found;
  }
  TempDir dir;
  std::string name = "al\"ice\\";
  for (unsigned cp = 0x7F; cp <= 0xFF; ++cp) {
    if (cp < 0x80) {
      name.push_back(static_cast<char>(cp));
    } else {
      name.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      name.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  name += "\xc3\xa9'end";
  const std::string password = "pw";
  AcceptingPeer origin([](int fd, int) {
    read_some(fd, 2s);
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  NextProxy np(dir);
  ForwardProxy fp(dir, loopback(np.port), {"--user", name + ":" + password});
  REQUIRE(wait_listening(dir, "np.err"));
  REQUIRE(wait_listening(dir, "fp.err"));
  const std::string authority = "127.0.0.1:" + std::to_string(origin.port());
  const std::string req = "GET http://" + authority + "/ HTTP/1.1\r\nHost: " + authority +
                          "\r\nProxy-Authorization: Basic " + base64(name + ":" + password) +
                          "\r\n\r\n";
  CHECK(proxy_status(fp.port, req, 5s) == 200);
  REQUIRE(wait_until([&] { return !lines_of(read_file(dir / "np.jsonl")).empty(); }));
  const auto line = lines_of(read_file(dir / "np.jsonl"))[0];
  auto file = dir.write("line.json", line);
  // json.loads on the raw bytes: fails on invalid UTF-8 or a bad escape.
  auto r = run_command({python, "-c",
                        "import json,sys; d=json.loads(open(sys.argv[1],'rb').read()); "
                        "print(d['username'].encode('unicode_escape').decode())",
                        file.string()},
                       10s);
  INFO(line);
  CHECK(r.status == 0);
  // Quotes, backslash and every character kept (DEL and C1 controls escaped in the line).
  CHECK(r.out.rfind("al\"ice\\\\\\x7f\\x80\\x81", 0) == 0);
  CHECK(r.out.find("\\x9f\\xa0") != std::string::npos);
  CHECK(r.out.find("\\xfe\\xff\\xe9'end") != std::string::npos);
  CHECK(line.find("\\u0085") != std::string::npos);  // NEL, a line break to some readers

  // Raw bytes 0x7F-0xFF are no UTF-8: such a name is a usage error at start.
  std::string raw = "bad";
  for (int b = 0x7F; b <= 0xFF; ++b) raw.push_back(static_cast<char>(b));
  auto bad = run_command({bin("divert-forward-proxy"), "--listen", "127.0.0.1:0", "--next-proxy",
                          loopback(np.port), "--user", raw + ":pw"},
                         10s);
  INFO(bad.out);
  CHECK(bad.status == 2);
}

namespace {

std::string python_for_json() {
  if (std::filesystem::exists("/usr/bin/python3")) return "/usr/bin/python3";
  auto found = DIVERT_REQUIRE_TOOL("python3");
  return found ? *found : std::string();
}

// json.loads on the raw bytes of `line` (fails on invalid UTF-8 or a bad
// escape); prints `field` with non-ASCII as \x/\u escapes.
RunResult parse_json_line(const TempDir& dir, const std::string& python, const std::string& line,
                          const std::string& field) {
  auto file = dir.write("line.json", line);
  return run_command({python, "-c",
                      "import json,sys; d=json.loads(open(sys.argv[1],'rb').read()); "
                      "print(str(d[sys.argv[2]]).encode('unicode_escape').decode())",
                      file.string(), field},
                     10s);
}

}  // namespace

// A trusted peer that writes the header itself can put any bytes in 0xE2: the
// next proxy refuses the header (not UTF-8) and its log line is still JSON.
TEST_CASE("next proxy log line parses as JSON for raw bytes 0x7F-0xFF and quotes in 0xE2",
          "[safety][json]") {
  const std::string python = python_for_json();
  if (python.empty()) return;
  TempDir dir;
  AcceptingPeer origin([](int fd, int) { read_some(fd, 2s); });
  NextProxy np(dir);
  REQUIRE(wait_listening(dir, "np.err"));
  std::string user = "al\"ice\\";
  for (int b = 0x7F; b <= 0xFF; ++b) user.push_back(static_cast<char>(b));
  const std::string upstream = "127.0.0.1:" + std::to_string(origin.port());
  auto tlv = [](unsigned char type, const std::string& value) {
    std::string t{static_cast<char>(type), static_cast<char>(value.size() >> 8),
                  static_cast<char>(value.size() & 0xFF)};
    return t + value;
  };
  const std::string tlvs = tlv(0xE0, upstream) + tlv(0xE2, user);
  const std::size_t len = 12 + tlvs.size();
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header += "\x21\x11";
  header.push_back(static_cast<char>(len >> 8));
  header.push_back(static_cast<char>(len & 0xFF));
  header += std::string("\x7f\x00\x00\x01\x7f\x00\x00\x01\x30\x39\x00\x50", 12) + tlvs;
  auto c = connect_to(np.port);
  REQUIRE(send_all(c.fd, header));
  read_some(c.fd, 3s);  // the next proxy closes
  REQUIRE(wait_until([&] { return !lines_of(read_file(dir / "np.jsonl")).empty(); }));
  const auto line = lines_of(read_file(dir / "np.jsonl"))[0];
  INFO(line);
  auto r = parse_json_line(dir, python, line, "error");
  CHECK(r.status == 0);
  CHECK(r.out.find("header") != std::string::npos);
  CHECK(origin.accepted() == 0);
}

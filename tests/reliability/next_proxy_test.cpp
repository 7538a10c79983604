// divert-next-proxy as the receiving side (issue 19), driven with raw PROXY v2
// headers and real peers on loopback: the destination policy against SSRF
// targets (the target listener's accepts counted: denied means no connect),
// the loop guard (a CONNECT to the next proxy's own port through the forward
// proxy), the upstream status reply on the bytes, idle timeout, max
// connections, LOCAL health checks, the real peer beside UNSPEC sources, the
// untrusted-peer log rate limit and JSON lines for any TLV bytes.
//
// Targets that are not loopback (169.254.169.254) are only ever sent to a next
// proxy running inside a network namespace of its own with nothing but lo, so
// a regressed policy could not send a packet off this host.
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/status_reply.hpp"
#include "netns.hpp"
#include "programs.hpp"
#include "support/catch.hpp"

using namespace divert::test;
using namespace std::chrono_literals;
namespace ppv2 = divert::ppv2;

namespace {

struct HeaderOpts {
  bool status_reply = false;
  std::optional<std::string> tls_name, username;
};

HeaderOpts asking_reply() {
  HeaderOpts o;
  o.status_reply = true;
  return o;
}

// A PROXY v2 header (TCP4, 192.0.2.1:40000 -> 192.0.2.2:3128) with 0xE0 = upstream.
std::string v2(const std::string& upstream, const HeaderOpts& o = {}) {
  ppv2::HeaderSpec s;
  s.src = *ppv2::Endpoint::ip_literal("192.0.2.1", 40000);
  s.dst = *ppv2::Endpoint::ip_literal("192.0.2.2", 3128);
  s.upstream = upstream;
  s.status_reply = o.status_reply;
  if (o.tls_name) s.tls_name = *o.tls_name;
  if (o.username) s.username = *o.username;
  std::vector<std::uint8_t> out(ppv2::encoded_size(s).size);
  REQUIRE_FALSE(ppv2::encode(s, out).ec);
  return std::string(out.begin(), out.end());
}

// Raw header bytes: signature, ver_cmd, family, then `body` (length filled in).
std::string raw_header(unsigned char ver_cmd, unsigned char family, const std::string& body) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(family));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xFF));
  return h + body;
}
std::string tlv(unsigned char type, const std::string& value) {
  std::string t{static_cast<char>(type), static_cast<char>(value.size() >> 8),
                static_cast<char>(value.size() & 0xFF)};
  return t + value;
}

// Status byte of an 8-byte reply, or -1 when `got` is not one.
int reply_status(const std::string& got) {
  if (got.size() < 8) return -1;
  std::array<std::uint8_t, 8> b;
  std::copy_n(got.begin(), 8, b.begin());
  auto r = ppv2::parse_status_reply(b);
  return r ? static_cast<int>(r->status) : -1;
}

// Sends `bytes` to the next proxy and reads until it closes (bounded).
ReadResult send_and_read(unsigned short port, const std::string& bytes,
                         std::chrono::milliseconds bound = 5s) {
  auto c = connect_to(port);
  REQUIRE(c.fd >= 0);
  REQUIRE(send_all(c.fd, bytes));
  return read_until_close(c.fd, bound);
}

// A listener that counts accepts and answers "origin\n".
AcceptingPeer counting_origin() {
  return AcceptingPeer([](int fd, int) {
    send_all(fd, "origin\n");
    read_until_close(fd, 2s);
  });
}

std::string field(const std::string& line, const std::string& name) {
  auto k = "\"" + name + "\":";
  auto p = line.find(k);
  if (p == std::string::npos) return "<absent>";
  p += k.size();
  if (line[p] == '"') return line.substr(p + 1, line.find('"', p + 1) - p - 1);
  return line.substr(p, line.find_first_of(",}", p) - p);
}

std::string python() {
  if (std::filesystem::exists("/usr/bin/python3")) return "/usr/bin/python3";
  auto found = DIVERT_REQUIRE_TOOL("python3");
  return found ? *found : std::string();
}

// Every line of `file` is a JSON object (json.loads on the raw bytes: fails on
// invalid UTF-8 or a bad escape); returns python's exit status.
int json_lines_status(const std::filesystem::path& file) {
  auto py = python();
  if (py.empty()) return 0;
  return run_command({py, "-c",
                      "import json,sys\n"
                      "for l in open(sys.argv[1],'rb').read().split(b'\\n'):\n"
                      "  if l: assert isinstance(json.loads(l), dict)\n",
                      file.string()},
                     10s)
      .status;
}

// The metrics a next proxy prints on stderr at exit.
std::string stop_and_metrics(NextProxy& np, const TempDir& dir, const std::string& tag = "np") {
  np.proc->stop();
  return read_file(dir / (tag + ".err"));
}

}  // namespace

TEST_CASE("next proxy: SSRF targets in 0xE0 are denied, nothing connected; allowed by rule",
          "[next-proxy][policy]") {
  // Everything runs in a namespace with only lo (see the top of the file).
  struct Row {
    std::string upstream;
    int with_reply = -2;  // status byte read (or -1: no reply)
    bool without_reply_data = true;
  };
  std::vector<Row> strict_rows, allowed_rows;
  int strict_accepts = -1, allowed_accepts = -1;
  std::string strict_log, allowed_log, metrics;
  TempDir dir;
  auto why = run_in_netns({}, [&] {
    auto origin = counting_origin();
    const std::string p = std::to_string(origin.port());
    const std::vector<std::string> targets = {
        "127.0.0.1:" + p,     "127.1:" + p,     "2130706433:" + p,
        "0.0.0.0:" + p,       "[::1]:" + p,     "[::ffff:127.0.0.1]:" + p,
        "169.254.169.254:80", "localhost:" + p,
        "loopy.test:" + p,  // the stub table resolves it to loopback
        "mixed.test:" + p,  // one public address, one loopback: denied as a whole
    };
    const std::vector<std::string> resolve = {"--resolve", "loopy.test=127.0.0.1", "--resolve",
                                              "mixed.test=192.0.2.9,127.0.0.1"};
    {
      NextProxy np(dir, resolve, 0, "strict", false);
      if (!wait_listening(dir, "strict.err")) return;
      for (const auto& t : targets) {
        Row r{t};
        r.with_reply = reply_status(send_and_read(np.port, v2(t, asking_reply()) + "GET").data);
        r.without_reply_data = !send_and_read(np.port, v2(t) + "GET").data.empty();
        strict_rows.push_back(r);
      }
      std::this_thread::sleep_for(50ms);  // a wrong late connect would show
      strict_accepts = origin.accepted();
      metrics = stop_and_metrics(np, dir, "strict");
      strict_log = read_file(dir / "strict.jsonl");
    }
    {
      auto allow = resolve;
      for (const char* a : {"--allow-upstream", "127.0.0.0/8", "--allow-upstream", "::1"})
        allow.emplace_back(a);
      NextProxy np(dir, allow, 0, "allowed", false);
      if (!wait_listening(dir, "allowed.err")) return;
      for (const auto& t : targets) {
        Row r{t};
        r.with_reply = reply_status(send_and_read(np.port, v2(t, asking_reply())).data);
        allowed_rows.push_back(r);
      }
      allowed_accepts = origin.accepted();
      allowed_log = read_file(dir / "allowed.jsonl");
    }
  });
  DIVERT_REQUIRE_NETNS(why);
  INFO(strict_log);
  REQUIRE(strict_rows.size() == 10);
  for (const auto& r : strict_rows) {
    INFO(r.upstream);
    CHECK(r.with_reply == 5);           // denied
    CHECK_FALSE(r.without_reply_data);  // closed, nothing relayed
  }
  CHECK(strict_accepts == 0);
  CHECK(statsd_value(metrics, "receiver.connection.denied") == 20);
  for (const auto& l : lines_of(strict_log)) CHECK(field(l, "outcome") == "denied");
  // Allowed by --allow-upstream: the dotted quad, ::ffff:127.0.0.1, localhost,
  // the stub name and mixed.test (192.0.2.9 is unreachable in the namespace,
  // then 127.0.0.1 connects) reach the origin (status 0); [::1] is allowed but
  // nothing listens there (1: refused). 127.1 and 2130706433 are no valid
  // hosts, 0.0.0.0 reaches this host (loop guard) and 169.254.169.254 is not
  // covered by the rules: still denied (5).
  INFO(allowed_log);
  REQUIRE(allowed_rows.size() == 10);
  const std::vector<int> want = {0, 5, 5, 5, 1, 0, 5, 0, 0, 0};
  for (std::size_t i = 0; i < allowed_rows.size(); ++i) {
    INFO(allowed_rows[i].upstream);
    CHECK(allowed_rows[i].with_reply == want[i]);
  }
  CHECK(allowed_accepts == 5);
}

// Debian's haproxy as (1) an independent PROXY v2 producer whose headers we decode,
// and (2) a strict receiver (accept-proxy) that must accept every shape we encode.
// Loopback only; every wait is bounded.
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "divert/ppv2/errc.hpp"
#include "divert/ppv2/read_header.hpp"
#include "support/catch.hpp"
#include "support/live.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;
using asio::ip::tcp;
using divert::test::free_port;
using divert::test::Process;
using divert::test::TempDir;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Process> start_haproxy(const std::string& haproxy, const TempDir& dir,
                                       const std::string& cfg_text) {
  const auto cfg = dir.write("haproxy.cfg", cfg_text);
  auto check = divert::test::run_command({haproxy, "-c", "-f", cfg.string()}, 10s);
  INFO(check.out);
  REQUIRE(check.status == 0);
  return std::make_unique<Process>(std::vector<std::string>{haproxy, "-db", "-f", cfg.string()},
                                   dir / "stdout.log", dir / "stderr.log");
}

// Connects a client to haproxy's frontend, sends "ping", and captures the PROXY
// header haproxy sends to our listener for that client.
struct Capture {
  std::optional<ReceivedHeader> got;
  tcp::endpoint client_local;
  tcp::endpoint frontend;
};

Capture capture_one(tcp::acceptor& acc, asio::io_context& io, const tcp::endpoint& frontend) {
  Capture c;
  c.frontend = frontend;
  tcp::socket client(io);
  client.connect(frontend);
  c.client_local = client.local_endpoint();
  asio::write(client, asio::buffer(std::string("ping")));
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Skip connections that are not this client's (e.g. wait_for_port probes).
        for (int i = 0; i < 8; ++i) {
          tcp::socket s = co_await acc.async_accept(asio::use_awaitable);
          ReceivedHeader h;
          auto ec = co_await read_proxy_header(s, h, {.timeout = 3s});
          if (ec) {
            UNSCOPED_INFO("decode error: " << ec.message());
            continue;
          }
          if (h.header().src.port == c.client_local.port()) {
            c.got = std::move(h);
            co_return;
          }
        }
      },
      asio::detached);
  io.restart();
  io.run_for(10s);
  return c;
}

Endpoint to_ep(const tcp::endpoint& e) {
  return *Endpoint::ip_literal(e.address().to_string(), e.port());
}

}  // namespace

TEST_CASE("haproxy send-proxy-v2 (crc32c, unique-id) headers decode exactly", "[live]") {
  auto haproxy = DIVERT_REQUIRE_TOOL("haproxy");
  if (!haproxy) return;
  TempDir dir;
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const unsigned short f4 = free_port("127.0.0.1"), f6 = free_port("::1");
  const std::string cfg =
      "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
      "frontend fe\n  bind 127.0.0.1:" +
      std::to_string(f4) + "\n  bind ::1:" + std::to_string(f6) +
      "\n  unique-id-format divert-%ci-%cp\n  default_backend be\n"
      "backend be\n  server s 127.0.0.1:" +
      std::to_string(acc.local_endpoint().port()) +
      " send-proxy-v2 proxy-v2-options crc32c,unique-id\n";
  auto proc = start_haproxy(*haproxy, dir, cfg);
  REQUIRE(divert::test::wait_for_port("127.0.0.1", f4, 5s));
  REQUIRE(divert::test::wait_for_port("::1", f6, 5s));

  for (const char* host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    const tcp::endpoint fe(asio::ip::make_address(host), std::string(host) == "::1" ? f6 : f4);
    Capture c = capture_one(acc, io, fe);
    INFO(divert::test::read_file(dir / "stderr.log"));
    REQUIRE(c.got);
    const HeaderView& h = c.got->header();
    UNSCOPED_INFO("captured from haproxy: " << to_hex(h.raw));
    CHECK(h.version == 2);
    CHECK(h.command == Command::proxy);
    CHECK(h.transport == Transport::stream);
    CHECK(h.family == (fe.address().is_v6() ? AddressFamily::inet6 : AddressFamily::inet));
    CHECK(h.src == to_ep(c.client_local));
    CHECK(h.dst == to_ep(fe));
    REQUIRE(h.crc32c);  // present, and verified by the decoder (it would have failed otherwise)
    auto uid = h.find(tlv::unique_id);
    REQUIRE(uid);
    CHECK(uid->text() == "divert-" + c.client_local.address().to_string() + "-" +
                             std::to_string(c.client_local.port()));
    // Re-decode the captured bytes with the stateless parser and byte by byte.
    Bytes raw(h.raw.begin(), h.raw.end());
    auto r = parse(raw);
    REQUIRE(r.complete());
    CHECK(r.consumed == raw.size());
    Decoder d;
    ParseResult last;
    for (std::size_t i = 0; i < raw.size(); ++i) last = d.feed(std::span(raw).subspan(i, 1));
    CHECK(last.complete());
    // And a corrupted copy is refused.
    raw[20] ^= 0x80;
    CHECK(parse(raw).ec == errc::crc_mismatch);
  }
  proc->stop();
}

namespace {

// Sends `bytes` then an HTTP request to haproxy, returns whatever it answers
// (empty when it drops the connection). Bounded by 5 s.
std::string http_exchange(unsigned short port, const Bytes& header,
                          tcp::endpoint* local = nullptr) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  if (local) *local = s.local_endpoint();
  Bytes all = header;
  const std::string req = "GET / HTTP/1.0\r\n\r\n";
  all.insert(all.end(), req.begin(), req.end());
  divert::error_code ec;
  asio::write(s, asio::buffer(all), ec);
  std::string out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        char buf[4096];
        for (;;) {
          divert::error_code rec;
          std::size_t n = co_await s.async_read_some(
              asio::buffer(buf), asio::redirect_error(asio::use_awaitable, rec));
          out.append(buf, n);
          if (rec) co_return;
        }
      },
      asio::detached);
  io.run_for(5s);
  return out;
}

std::string body_of(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? std::string{} : response.substr(p + 4);
}

}  // namespace

TEST_CASE("haproxy accept-proxy accepts every shape our encoder produces", "[live]") {
  auto haproxy = DIVERT_REQUIRE_TOOL("haproxy");
  if (!haproxy) return;
  TempDir dir;
  const unsigned short port = free_port("127.0.0.1");
  // The answer echoes what haproxy understood; the log line records it too.
  const std::string fields =
      "src=%[src] port=%[src_port] auth=%[fc_pp_authority] uid=%[fc_pp_unique_id]";
  const std::string cfg =
      "global\n  log stdout format raw local0\n"
      "defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 5s\n"
      "  timeout server 5s\n"
      "frontend fe\n  bind 127.0.0.1:" +
      std::to_string(port) +
      " accept-proxy\n"
      "  log-format \"LOG " +
      fields +
      " err=%[fc_err_str]\"\n"
      "  http-request return status 200 content-type text/plain lf-string \"" +
      fields + "\"\n";
  auto proc = start_haproxy(*haproxy, dir, cfg);
  REQUIRE(divert::test::wait_for_port("127.0.0.1", port, 5s));
  const std::string big_upstream = std::string(1996, 'u') + ":443";  // a 2000-byte 0xE0
  REQUIRE(big_upstream.size() == 2000);
  const std::uint8_t uid[] = {'u', 'i', 'd', '-', '4', '2'};

  struct Shape {
    std::string name;
    HeaderSpec spec;
    std::string want_src;  // empty: the real client endpoint (LOCAL)
    std::string want_extra;
  };
  std::vector<Shape> shapes;
  auto base = [](const char* src, std::uint16_t sport, const char* dst) {
    HeaderSpec s;
    s.src = ep(src, sport);
    s.dst = ep(dst, 443);
    return s;
  };
  shapes.push_back({"ipv4", base("192.0.2.1", 1001, "192.0.2.100"), "src=192.0.2.1 port=1001", ""});
  shapes.push_back(
      {"ipv6", base("2001:db8::1", 1002, "2001:db8::100"), "src=2001:db8::1 port=1002", ""});
  shapes.push_back({"mixed promoted", base("192.0.2.3", 1003, "2001:db8::100"),
                    "src=::ffff:192.0.2.3 port=1003", ""});
  shapes.push_back({"v4-mapped folded", base("::ffff:192.0.2.4", 1004, "::ffff:192.0.2.100"),
                    "src=192.0.2.4 port=1004", ""});
  {
    HeaderSpec s;
    s.command = Command::local;
    shapes.push_back({"LOCAL", s, "", ""});
  }
  {
    auto s = base("192.0.2.5", 1005, "192.0.2.100");
    s.crc32c = true;
    shapes.push_back({"crc32c", s, "src=192.0.2.5 port=1005", ""});
  }
  {
    auto s = base("192.0.2.6", 1006, "192.0.2.100");
    s.upstream = big_upstream;
    s.crc32c = true;
    shapes.push_back({"2000-byte 0xE0", s, "src=192.0.2.6 port=1006", ""});
  }
  {
    auto s = base("192.0.2.7", 1007, "192.0.2.100");
    s.authority = "example.com";
    s.unique_id = std::span<const std::uint8_t>(uid);
    shapes.push_back(
        {"authority + unique_id", s, "src=192.0.2.7 port=1007", " auth=example.com uid=uid-42"});
  }
  {
    auto s = base("192.0.2.8", 1008, "192.0.2.100");
    s.upstream = "example.com:443";
    s.tls_name = "example.com";
    s.username = "alice";
    s.task_id = *Uuid::parse("0192f0c1-2b3c-7d4e-8f50-6172839405a6");
    s.noop_padding = 3;
    s.crc32c = true;
    shapes.push_back({"full divert header", s, "src=192.0.2.8 port=1008", ""});
  }

  for (const auto& sh : shapes) {
    CAPTURE(sh.name);
    Bytes h = encode_ok(sh.spec);
    tcp::endpoint local;
    const std::string resp = http_exchange(port, h, &local);
    INFO("response: " << resp);
    REQUIRE(resp.rfind("HTTP/1.1 200", 0) == 0);
    const std::string want =
        sh.want_src.empty() ? "src=127.0.0.1 port=" + std::to_string(local.port()) : sh.want_src;
    const std::string body = body_of(resp);
    CHECK(body.rfind(want + " ", 0) == 0);
    if (!sh.want_extra.empty()) CHECK(body.find(sh.want_extra) != std::string::npos);
    const std::string log_line = "LOG " + want + " ";
    CHECK(divert::test::wait_until(
        [&] {
          return divert::test::read_file(dir / "stdout.log").find(log_line) != std::string::npos;
        },
        3s));
  }

  // A corrupted CRC is refused: no answer, and haproxy logs the reason (haproxy 2.6
  // logs handshake failures in its own format, not the frontend's log-format).
  {
    auto s = base("192.0.2.66", 1066, "192.0.2.100");
    s.crc32c = true;
    Bytes h = encode_ok(s);
    h.back() ^= 0x01;
    const std::string resp = http_exchange(port, h);
    CHECK(resp.find("200") == std::string::npos);
    const bool logged = divert::test::wait_until(
        [&] {
          return divert::test::read_file(dir / "stdout.log")
                     .find("Received an invalid PROXY protocol header") != std::string::npos;
        },
        3s);
    const std::string log = divert::test::read_file(dir / "stdout.log");
    INFO(log);
    CHECK(logged);
    CHECK(log.find("LOG src=192.0.2.66") == std::string::npos);  // never accepted
  }
  proc->stop();
}

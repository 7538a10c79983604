// The upstream status reply end to end with the real programs (issue 19, Build
// item 2): divert-forward-proxy with --set next_proxy_status_reply=true in
// front of divert-next-proxy answers a CONNECT 403 / 502 / 504 from what the
// next proxy reported, and 200 only once the upstream is connected; the
// connector (library) sees each status of the real divert-next-proxy as
// condition::upstream_failed with the specific errc.
#include <asio.hpp>

#include <optional>
#include <string>

#include "divert/connector.hpp"
#include "divert/error.hpp"
#include "netns.hpp"
#include "programs.hpp"
#include "support/catch.hpp"

using namespace divert::test;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kStatusReply{"--set", "next_proxy_status_reply=true"};

// A loopback port nothing listens on.
unsigned short dead_port() {
  Listener l;
  return l.port;  // closed when l goes
}

// An origin that answers "origin\n" then echoes until the client closes.
AcceptingPeer echo_origin() {
  return AcceptingPeer([](int fd, int) {
    send_all(fd, "origin\n");
    for (int i = 0; i < 20; ++i) {
      auto got = read_some(fd, 200ms);
      if (!got.empty()) send_all(fd, got);
    }
  });
}

// One tcp_connect of the library connector (key on) through `np_port`; nullopt
// when it did not complete within 10 s (no Catch2 macro: also runs on a netns
// thread).
std::optional<divert::error_code> library_connect(unsigned short np_port,
                                                  const std::string& upstream) {
  asio::io_context io;
  auto connector = divert::DivertTcpConnector::builder()
                       .next_proxy_status_reply(true)
                       .tcp_connect({.max_retry = 0, .each_timeout = 5000ms})
                       .proxy_addr({{loopback(np_port), 1.0}})
                       .build();
  std::optional<divert::error_code> out;
  divert::Task task{.client = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
                    .server = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
                    .upstream = divert::UpstreamAddr::parse(upstream, 0)};
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        divert::error_code ec;
        auto s = co_await connector.tcp_connect(task, ec);
        out = ec;
      },
      asio::detached);
  const auto deadline = Clock::now() + 10s;
  while (!out && Clock::now() < deadline) io.run_one_for(100ms);
  return out;
}

}  // namespace

TEST_CASE("forward proxy with the status reply: 403 denied, 502 refused, 200 connected",
          "[status-reply][forward-proxy]") {
  TempDir dir;
  auto origin = echo_origin();
  const auto dead = dead_port();
  NextProxy np(dir, {"--deny-upstream", "127.0.0.9/32"});
  REQUIRE(wait_listening(dir, "np.err"));
  ForwardProxy fp(dir, loopback(np.port), kStatusReply);
  REQUIRE(wait_listening(dir, "fp.err"));

  SECTION("denied by the next proxy's policy: 403, no 200 first") {
    std::string resp;
    CHECK(proxy_status(fp.port, http_connect("127.0.0.9:" + std::to_string(origin.port())), 5s,
                       nullptr, &resp) == 403);
    CHECK(resp.find("200") == std::string::npos);
    CHECK(origin.accepted() == 0);
  }
  SECTION("refused upstream: 502, no 200 first") {
    std::string resp;
    CHECK(proxy_status(fp.port, connect_request(dead), 5s, nullptr, &resp) == 502);
    CHECK(resp.rfind("HTTP/1.1 502", 0) == 0);
  }
  SECTION("plain-HTTP forward to a denied upstream: 403") {
    CHECK(proxy_status(fp.port, get_request(origin.port(), "127.0.0.9"), 5s) == 403);
    CHECK(origin.accepted() == 0);
  }
  SECTION("connected: 200, then the tunnel relays both ways") {
    auto c = connect_to(fp.port);
    REQUIRE(c.fd >= 0);
    REQUIRE(send_all(c.fd, connect_request(origin.port())));
    std::string got;
    const auto until = Clock::now() + 5s;
    while (got.find("origin\n") == std::string::npos && Clock::now() < until)
      got += read_some(c.fd, 200ms);
    CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(got.find("origin\n") != std::string::npos);
    REQUIRE(send_all(c.fd, "ping\n"));
    std::string echoed;
    while (echoed.find("ping\n") == std::string::npos && Clock::now() < until + 2s)
      echoed += read_some(c.fd, 200ms);
    CHECK(echoed == "ping\n");
  }
}

TEST_CASE("forward proxy without the key: unchanged, a refused upstream gets 200 then a close",
          "[status-reply][forward-proxy]") {
  TempDir dir;
  const auto dead = dead_port();
  NextProxy np(dir);
  REQUIRE(wait_listening(dir, "np.err"));
  ForwardProxy fp(dir, loopback(np.port));
  REQUIRE(wait_listening(dir, "fp.err"));
  CHECK(proxy_status(fp.port, connect_request(dead), 5s) == 200);
}

TEST_CASE("forward proxy with the status reply: 504 when the next proxy's connect times out",
          "[status-reply][forward-proxy][netns]") {
  TempDir dir;
  const unsigned short port = free_port();
  int status = 0;
  std::chrono::milliseconds took{0};
  auto why = run_in_blackhole_netns(port, [&] {
    NextProxy np(dir, {"--connect-timeout", "1s"});
    if (!wait_listening(dir, "np.err")) return;
    ForwardProxy fp(dir, loopback(np.port), kStatusReply);
    if (!wait_listening(dir, "fp.err")) return;
    status = proxy_status(fp.port, connect_request(port), 8s, &took);
  });
  DIVERT_REQUIRE_NETNS(why);
  CHECK(status == 504);
  CHECK(took >= 900ms);
  CHECK(took < 5s);
}

TEST_CASE("connector against the real divert-next-proxy: each status as its errc, upstream_failed",
          "[status-reply][connector]") {
  TempDir dir;
  auto origin = echo_origin();
  const auto dead = dead_port();
  NextProxy np(dir, {"--resolve", "origin.test=127.0.0.1", "--deny-upstream", "127.0.0.9/32"});
  REQUIRE(wait_listening(dir, "np.err"));
  const std::string p = std::to_string(origin.port());

  const auto connected = library_connect(np.port, "origin.test:" + p);
  REQUIRE(connected);
  CHECK_FALSE(*connected);
  const std::pair<std::string, divert::errc> table[] = {
      {"127.0.0.1:" + std::to_string(dead), divert::errc::upstream_refused},
      {"unknown.test:" + p, divert::errc::upstream_resolve_failed},
      {"127.0.0.9:" + p, divert::errc::upstream_denied},
      {"127.0.0.1:" + std::to_string(np.port), divert::errc::upstream_denied},  // loop guard
  };
  for (const auto& [upstream, code] : table) {
    INFO(upstream);
    const auto got = library_connect(np.port, upstream);
    REQUIRE(got);
    const auto ec = *got;
    CHECK(ec == code);
    CHECK(ec == divert::condition::upstream_failed);
    CHECK_FALSE(ec == divert::condition::next_proxy_failed);
  }
  CHECK(origin.accepted() == 1);
}

TEST_CASE(
    "connector against the real divert-next-proxy: a black-holed upstream is upstream_timed_out",
    "[status-reply][connector][netns]") {
  TempDir dir;
  const unsigned short port = free_port();
  std::optional<divert::error_code> ec;
  auto why = run_in_blackhole_netns(port, [&] {
    NextProxy np(dir, {"--connect-timeout", "1s"});
    if (!wait_listening(dir, "np.err")) return;
    ec = library_connect(np.port, "127.0.0.1:" + std::to_string(port));
  });
  DIVERT_REQUIRE_NETNS(why);
  REQUIRE(ec);
  CHECK(*ec == divert::errc::upstream_timed_out);
  CHECK(*ec == divert::condition::upstream_failed);
  CHECK(*ec == divert::condition::timeout);
}

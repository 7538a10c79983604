// The connector side of the upstream status reply (next_proxy_status_reply),
// live on loopback: an in-test receiver answering each status, bad replies,
// and HAProxy (accept-proxy, which ignores TLV 0xE7) as a silent next proxy.
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include "divert/connector.hpp"
#include "divert/ppv2/read_header.hpp"
#include "divert/ppv2/status_reply.hpp"
#include "support/live.hpp"

using namespace divert;
using namespace std::chrono_literals;
using asio::ip::tcp;
namespace test = divert::test;

namespace {

Task task_to(const std::string& upstream, std::string initial_data = "PING") {
  return Task{.client = tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
              .server = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
              .upstream = UpstreamAddr::parse(upstream, 0),
              .initial_data = std::move(initial_data)};
}

std::string addr_of(const tcp::acceptor& acc) {
  return "127.0.0.1:" + std::to_string(acc.local_endpoint().port());
}

// A next proxy that reads one header and answers with `answer` (in one write,
// or one byte every `drip`), then closes unless `hold` (the stream stays open
// until the io_context ends).
struct ScriptedNextProxy {
  tcp::acceptor acc;
  std::string answer;
  bool hold = false;
  std::chrono::milliseconds drip{0};
  int accepted = 0;
  std::optional<std::uint8_t> e7;  // the 0xE7 value received
  std::string extra;               // bytes received after the header
  std::vector<tcp::socket> held;

  ScriptedNextProxy(asio::io_context& io, std::string a, bool h = false)
      : acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        answer(std::move(a)),
        hold(h) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  asio::awaitable<void> serve() {
    for (;;) {
      auto s = co_await acc.async_accept(asio::use_awaitable);
      ++accepted;
      auto got = co_await ppv2::read_proxy_header(s);
      ppv2::DivertTlvs t;
      CHECK_FALSE(ppv2::read_divert_tlvs(got.header(), t));
      e7 = t.status_reply;
      auto x = got.extra();
      extra.assign(reinterpret_cast<const char*>(x.data()), x.size());
      if (drip.count() == 0) {
        co_await asio::async_write(s, asio::buffer(answer), asio::use_awaitable);
      } else {
        asio::steady_timer t(s.get_executor());
        for (char c : answer) {
          t.expires_after(drip);
          co_await t.async_wait(asio::use_awaitable);
          co_await asio::async_write(s, asio::buffer(&c, 1), asio::use_awaitable);
        }
      }
      if (hold) held.push_back(std::move(s));
    }
  }
};

std::string reply_text(ppv2::UpstreamStatus status) {
  auto b = ppv2::encode_status_reply({status, 12});
  return std::string(b.begin(), b.end());
}

struct Outcome {
  divert::error_code ec;
  tcp::socket stream;
  std::chrono::steady_clock::duration took;
};

// One tcp_connect (initial data "PING" unless given), running `io` until it
// completes (at most `limit`).
Outcome connect_once(asio::io_context& io, const DivertTcpConnector& connector,
                     std::chrono::milliseconds limit = 10s, std::string initial_data = "PING") {
  std::optional<Outcome> out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const auto t0 = std::chrono::steady_clock::now();
        error_code ec;
        auto s = co_await connector.tcp_connect(task_to("origin.test:443", initial_data), ec);
        out.emplace(Outcome{ec, std::move(s), std::chrono::steady_clock::now() - t0});
      },
      asio::detached);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!out && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  REQUIRE(out);
  return std::move(*out);
}

DivertTcpConnector::Builder status_reply_connector() {
  return std::move(DivertTcpConnector::builder().next_proxy_status_reply(true).tcp_connect(
      {.max_retry = 0, .each_timeout = 1500ms}));
}

}  // namespace

TEST_CASE("status reply: each status reaches the host as its error, upstream_failed; no failover") {
  const std::pair<ppv2::UpstreamStatus, errc> table[] = {
      {ppv2::UpstreamStatus::refused, errc::upstream_refused},
      {ppv2::UpstreamStatus::timed_out, errc::upstream_timed_out},
      {ppv2::UpstreamStatus::unreachable, errc::upstream_unreachable},
      {ppv2::UpstreamStatus::resolve_failed, errc::upstream_resolve_failed},
      {ppv2::UpstreamStatus::denied, errc::upstream_denied},
      {ppv2::UpstreamStatus::other, errc::upstream_failed_other},
      {ppv2::UpstreamStatus(9), errc::upstream_failed_other},
  };
  for (auto [status, code] : table) {
    INFO("status " << int(status));
    asio::io_context io;
    ScriptedNextProxy np(io, reply_text(status));
    ScriptedNextProxy second(io, reply_text(ppv2::UpstreamStatus::connected), true);
    auto connector = status_reply_connector()
                         .proxy_addr({{addr_of(np.acc), 1.0}, {addr_of(second.acc), 1.0}})
                         .proxy_addr_pick_policy(PickPolicy::serial)
                         .passive_ejection(1, 10s)
                         .build();
    auto r = connect_once(io, connector);
    CHECK(r.ec == code);
    CHECK(r.ec == condition::upstream_failed);
    CHECK_FALSE(r.ec == condition::next_proxy_failed);
    CHECK_FALSE(r.stream.is_open());
    CHECK(np.e7 == std::optional<std::uint8_t>(1));
    CHECK(np.extra == "PING");
    CHECK(second.accepted == 0);  // the upstream is the problem: no other next proxy
    CHECK(connector.ejected_proxies().empty());
    CHECK(connector.metrics().value(MetricsCounter::tcp_connect_error) == 0);
  }
}

TEST_CASE(
    "status reply: status 0 hands back the stream; the upstream's first bytes are not consumed") {
  asio::io_context io;
  // The reply and the upstream's first bytes in one segment: the connector
  // must read the 8 bytes and not one more.
  ScriptedNextProxy np(io, reply_text(ppv2::UpstreamStatus::connected) + "HELLO", true);
  auto connector = status_reply_connector().proxy_addr(addr_of(np.acc)).build();
  auto r = connect_once(io, connector);
  REQUIRE_FALSE(r.ec);
  REQUIRE(r.stream.is_open());
  std::string got(5, '\0');
  asio::read(r.stream, asio::buffer(got));
  CHECK(got == "HELLO");
  CHECK(connector.metrics().value(MetricsCounter::connection_establish) == 1);
}

TEST_CASE(
    "status reply: a reply dripped byte by byte is read whole within the timeout, and not past "
    "it",
    "[hostile]") {
  for (auto drip : {100ms, 250ms}) {  // 8 bytes: 0.8 s, then 2 s, against 1.5 s
    INFO("one byte every " << drip.count() << " ms");
    asio::io_context io;
    ScriptedNextProxy np(io, reply_text(ppv2::UpstreamStatus::connected) + "HI", true);
    np.drip = drip;
    auto connector = status_reply_connector().proxy_addr(addr_of(np.acc)).build();
    auto r = connect_once(io, connector);
    if (drip == 100ms) {
      REQUIRE_FALSE(r.ec);
      std::string got(2, '\0');
      std::optional<std::error_code> read;
      asio::async_read(r.stream, asio::buffer(got),
                       [&](std::error_code ec, std::size_t) { read = ec; });
      const auto deadline = std::chrono::steady_clock::now() + 5s;  // the drip runs on `io`
      while (!read && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
      REQUIRE(read);
      CHECK_FALSE(*read);
      CHECK(got == "HI");  // the bytes after the reply are the host's
    } else {
      CHECK(r.ec == errc::bad_status_reply);  // the deadline is for the whole reply
      CHECK(r.took < 2s);
      CHECK(connector.metrics().value(MetricsCounter::tcp_connect_timeout) == 1);
    }
  }
}

TEST_CASE(
    "status reply: a wrong magic or an early close is bad_status_reply at once, nothing handed "
    "back") {
  for (std::string answer : {std::string("HTTP/1.1 200 OK\r\n\r\n"), std::string("DVT"),
                             std::string("DVT1\x00\x01\x00\x00", 8), std::string()}) {
    INFO("answer of " << answer.size() << " bytes");
    asio::io_context io;
    ScriptedNextProxy np(io, answer);  // closes after the answer
    auto connector =
        status_reply_connector().proxy_addr(addr_of(np.acc)).passive_ejection(1, 10s).build();
    auto r = connect_once(io, connector);
    CHECK(r.ec == errc::bad_status_reply);
    CHECK(r.ec == condition::next_proxy_failed);
    CHECK_FALSE(r.stream.is_open());
    CHECK(r.took < 1500ms);  // not the timeout: the answer or the close decides
    CHECK(connector.metrics().value(MetricsCounter::tcp_connect_error) == 1);
    CHECK(connector.metrics().value(MetricsCounter::tcp_connect_establish) == 0);
    CHECK(connector.ejected_proxies().size() == 1);  // a next proxy's fault
  }
}

TEST_CASE(
    "status reply: a bad reply fails over to the next candidate, unless initial data went out "
    "with the header") {
  for (std::string initial_data : {std::string(), std::string("PING")}) {
    INFO("initial data: " << initial_data);
    asio::io_context io;
    ScriptedNextProxy bad(io, "XXXXXXXX");
    ScriptedNextProxy good(io, reply_text(ppv2::UpstreamStatus::connected), true);
    auto connector = status_reply_connector()
                         .proxy_addr({{addr_of(bad.acc), 1.0}, {addr_of(good.acc), 1.0}})
                         .proxy_addr_pick_policy(PickPolicy::serial)
                         .build();
    auto r = connect_once(io, connector, 10s, initial_data);
    CHECK(bad.accepted == 1);
    CHECK(bad.extra == initial_data);
    if (initial_data.empty()) {
      CHECK_FALSE(r.ec);
      CHECK(r.stream.is_open());
      CHECK(good.accepted == 1);
    } else {
      // The bad next proxy may have forwarded "PING": not sent a second time.
      CHECK(r.ec == errc::bad_status_reply);
      CHECK_FALSE(r.stream.is_open());
      CHECK(good.accepted == 0);
    }
  }
}

TEST_CASE(
    "status reply: HAProxy (accept-proxy) never answers: a clear error within the timeout; key off "
    "unchanged") {
  auto haproxy = DIVERT_REQUIRE_TOOL("haproxy");
  if (!haproxy) return;
  test::TempDir dir;
  asio::io_context io;
  tcp::acceptor backend(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::vector<tcp::socket> backend_conns;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) backend_conns.push_back(co_await backend.async_accept(asio::use_awaitable));
      },
      asio::detached);
  test::HaproxyHop hop(*haproxy, dir, backend.local_endpoint().port(), "accept-proxy");
  const std::string np = hop.address();

  auto on = status_reply_connector().proxy_addr(np).build();
  auto r = connect_once(io, on);
  CHECK(r.ec == errc::bad_status_reply);
  CHECK(r.ec == condition::next_proxy_failed);
  CHECK_FALSE(r.stream.is_open());
  CHECK(r.took >= 1500ms);  // tcp_connect.each_timeout
  CHECK(r.took < 5s);
  CHECK(on.metrics().value(MetricsCounter::tcp_connect_timeout) == 1);

  auto off = DivertTcpConnector::builder().proxy_addr(np).build();
  auto r2 = connect_once(io, off);
  REQUIRE_FALSE(r2.ec);
  std::string got(4, '\0');
  REQUIRE(test::wait_until([&] {
    io.run_one_for(10ms);
    return backend_conns.size() == 2;
  }));
  asio::read(backend_conns[1], asio::buffer(got));
  CHECK(got == "PING");
}

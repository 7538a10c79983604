// What a host sees when no next proxy works, by divert::condition, and
// cancellation through a bound slot: every socket opened is closed.
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <optional>

#include "api/rig.hpp"
#include "divert/net/connect.hpp"

using namespace divert;
using namespace divert::test;
using namespace std::chrono_literals;

namespace {

// A loopback listener that never accepts, its accept queue full: Linux drops
// further SYNs, so connecting to it hangs (a black hole without a firewall).
struct BlackHole {
  explicit BlackHole(asio::io_context& io) : acceptor(io, loopback()) {
    acceptor.listen(0);
    for (auto& f : fillers) {
      f.emplace(io);
      f->open(tcp::v4());
      f->non_blocking(true);
      // A raw connect: Asio's synchronous one would wait for the handshake.
      [[maybe_unused]] int rc = ::connect(f->native_handle(), acceptor.local_endpoint().data(),
                                          acceptor.local_endpoint().size());
    }
    std::this_thread::sleep_for(50ms);
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  }
  tcp::acceptor acceptor;
  std::optional<tcp::socket> fillers[2];
};

divert::error_code connect_error(asio::io_context& io, const DivertTcpConnector& c) {
  auto f = c.async_tcp_connect(io.get_executor(), make_task(), asio::use_future);
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  try {
    f.get();
  } catch (const divert::system_error& e) {
    return e.code();
  }
  return {};
}

// Runs `io`, emitting a terminal cancellation on `sig` after 200 ms, until
// `result` is set (REQUIREd within 10 s); returns open_fd_count() just before
// the cancellation.
int cancel_after_200ms(asio::io_context& io, asio::cancellation_signal& sig,
                       const std::optional<divert::error_code>& result) {
  asio::steady_timer t(io, 200ms);
  int during = -1;
  t.async_wait([&](divert::error_code) {
    during = open_fd_count();
    sig.emit(asio::cancellation_type::terminal);
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!result && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  REQUIRE(result);
  return during;
}

}  // namespace

TEST_CASE("next proxy refused, timed out, all ejected: next_proxy_failed (and timeout)") {
  Rig rig;
  SECTION("refused") {
    auto c = DivertTcpConnector::builder()
                 .proxy_addr("127.0.0.1:" + std::to_string(free_port()))
                 .build();
    auto ec = connect_error(rig.io, c);
    CHECK(ec == asio::error::connection_refused);
    CHECK(ec == condition::next_proxy_failed);
    CHECK(ec != condition::timeout);
    CHECK(ec != condition::upstream_failed);
  }
  SECTION("timed out") {
    BlackHole hole(rig.io);
    auto c = DivertTcpConnector::builder()
                 .proxy_addr(hole.address())
                 .tcp_connect({.max_retry = 0, .each_timeout = 200ms})
                 .build();
    auto ec = connect_error(rig.io, c);
    CHECK(ec == asio::error::timed_out);
    CHECK(ec == condition::next_proxy_failed);
    CHECK(ec == condition::timeout);
  }
  SECTION("a domain next proxy that does not resolve") {
    auto resolver = std::make_shared<net::StubResolver>();
    auto c =
        DivertTcpConnector::builder().proxy_addr("nowhere.test:3128").resolver(resolver).build();
    auto ec = connect_error(rig.io, c);
    INFO(ec.message());
    CHECK(ec == condition::next_proxy_failed);
  }
  SECTION("every next proxy ejected") {
    auto c = DivertTcpConnector::builder()
                 .proxy_addr({{"127.0.0.1:" + std::to_string(free_port()), 1.0},
                              {"127.0.0.1:" + std::to_string(free_port()), 1.0}})
                 .passive_ejection(1, 60s)
                 .build();
    CHECK(connect_error(rig.io, c) == condition::next_proxy_failed);
    REQUIRE(c.ejected_proxies().size() == 2);
    auto ec = connect_error(rig.io, c);  // all ejected: all tried, all fail
    CHECK(ec == condition::next_proxy_failed);
    CHECK(ec != condition::upstream_failed);
  }
}

TEST_CASE("a bound cancellation slot cancels a connect and every socket opened is closed") {
  asio::io_context io;
  BlackHole hole(io), hole2(io);
  auto c = DivertTcpConnector::builder()
               .proxy_addr({{hole.address(), 1.0}, {hole2.address(), 1.0}})
               .tcp_connect({.max_retry = 2, .each_timeout = 30s})
               .build();
  const int before = open_fd_count();
  asio::cancellation_signal sig;
  std::optional<divert::error_code> result;
  bool stream_open = true;
  c.async_tcp_connect(
      io.get_executor(), make_task(),
      asio::bind_cancellation_slot(sig.slot(), [&](divert::error_code ec, tcp::socket s) {
        result = ec;
        stream_open = s.is_open();
      }));
  const int during = cancel_after_200ms(io, sig, result);
  CHECK(*result == asio::error::operation_aborted);
  CHECK_FALSE(stream_open);
  CHECK(during > before);  // a socket was open toward the black hole
  io.poll();
  CHECK(open_fd_count() == before);
}

TEST_CASE("a bound cancellation slot cancels a relay; both streams are closed") {
  Rig rig;
  auto [client, host_end] = rig.client_pair();
  auto cf = rig.connector.async_tcp_connect(rig.io.get_executor(), make_task(), asio::use_future);
  REQUIRE(cf.wait_for(20s) == std::future_status::ready);
  auto stream = cf.get();
  REQUIRE(wait_until([&] { return rig.seen().size() == 1; }));  // the next proxy's end is open
  const int before = open_fd_count();
  asio::cancellation_signal sig;
  std::promise<divert::error_code> relayed;
  asio::post(rig.io, [&, h = std::move(host_end), s = std::move(stream)]() mutable {
    rig.connector.async_relay(
        std::move(h), std::move(s),
        asio::bind_cancellation_slot(
            sig.slot(), [&](divert::error_code ec, RelayResult) { relayed.set_value(ec); }));
  });
  std::this_thread::sleep_for(100ms);
  asio::post(rig.io, [&] { sig.emit(asio::cancellation_type::terminal); });
  auto rf = relayed.get_future();
  REQUIRE(rf.wait_for(10s) == std::future_status::ready);
  CHECK(rf.get() == asio::error::operation_aborted);
  // The host's end and the stream closed; the next proxy's end then sees EOF
  // and closes too.
  CHECK(wait_until([&] { return open_fd_count() == before - 3; }, 2s));
  INFO("before " << before << " after " << open_fd_count());
  CHECK(open_fd_count() == before - 3);
}

TEST_CASE("async_happy_eyeballs_connect: a bound cancellation slot closes every socket") {
  asio::io_context io;
  BlackHole hole(io);
  auto resolver = std::make_shared<net::StubResolver>();
  resolver->add("hole.test", {asio::ip::make_address("127.0.0.1")});
  net::ConnectOptions o;
  o.resolve_strategy.query = net::ResolveStrategy::Query::Ipv4Only;
  const int before = open_fd_count();
  asio::cancellation_signal sig;
  std::optional<divert::error_code> result;
  net::async_happy_eyeballs_connect(
      io.get_executor(), "hole.test", hole.acceptor.local_endpoint().port(), o, resolver,
      asio::bind_cancellation_slot(sig.slot(), [&](divert::error_code ec, tcp::socket s) {
        result = ec;
        CHECK_FALSE(s.is_open());
      }));
  const int during = cancel_after_200ms(io, sig, result);
  CHECK(*result == asio::error::operation_aborted);
  CHECK(during > before);
  io.poll();
  CHECK(open_fd_count() == before);
}

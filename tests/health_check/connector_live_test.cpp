// End to end through the connector: three next proxies (divert Receivers on
// 127.0.0.2-4), active health checks on; one stopped is marked down within
// fall x interval + timeout and no client request is sent to it afterwards;
// restarted, it is up again within rise x interval (+ its last probe) and
// takes requests again. Needs the connector's live API
// (start_health_checks, stop, metrics_snapshot).
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <future>
#include <string>

#include "divert/connector.hpp"
#include "peers.hpp"
#include "support/catch.hpp"
#include "support/live.hpp"

using namespace divert;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// One client request through the connector to `origin`; true when the
// origin's greeting came back whole.
bool request(const DivertTcpConnector& connector, test::IoThread& io, const std::string& origin) {
  auto f = asio::co_spawn(
      io.io(),
      [&]() -> asio::awaitable<bool> {
        Task task{.client = tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
                  .server = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
                  .upstream = UpstreamAddr::parse(origin, 0)};
        error_code ec;
        auto s = co_await connector.tcp_connect(std::move(task), ec);
        if (ec) co_return false;
        std::string got;
        co_await asio::async_read(s, asio::dynamic_buffer(got),
                                  asio::experimental::as_tuple(asio::use_awaitable));
        co_return got == "hello";
      },
      asio::use_future);
  if (f.wait_for(10s) != std::future_status::ready) return false;
  return f.get();
}

// The per-next-proxy part of the connector's metrics, by canonical address.
const ProxyMetricsSnapshot& proxy(const MetricsSnapshot& s, const std::string& addr) {
  for (const auto& p : s.proxies)
    if (p.next_proxy == addr) return p;
  FAIL("no per-proxy metrics for " << addr);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE(
    "connector: a next proxy found down by the health check gets no request until it "
    "is up again",
    "[live]") {
  test::ReceiverPeer p1("127.0.0.2"), p2("127.0.0.3"), p3("127.0.0.4");
  // The origin: greets and closes.
  test::IoThread origin_io;
  test::Listener origin(origin_io, {asio::ip::make_address("127.0.0.1"), 0}, [](tcp::socket s) {
    auto sock = std::make_shared<tcp::socket>(std::move(s));
    asio::async_write(*sock, asio::buffer("hello", 5), [sock](divert::error_code, std::size_t) {});
  });
  origin.start();
  const std::string origin_addr = "127.0.0.1:" + std::to_string(origin.endpoint().port());

  const auto interval = 100ms, timeout = 200ms;
  const std::uint32_t rise = 2, fall = 3;
  auto connector = DivertTcpConnector::builder()
                       .proxy_addr({{p1.target(), 1.0}, {p2.target(), 1.0}, {p3.target(), 1.0}})
                       .proxy_addr_pick_policy(PickPolicy::round_robin)
                       .set("health_check", "{interval: 100ms, timeout: 200ms, rise: 2, fall: 3}")
                       .build();
  test::IoThread checks_io, client_io;
  connector.start_health_checks(checks_io.io().get_executor());
  REQUIRE(test::wait_until([&] {
    return p1.count(ServeOutcome::health_check) >= 2 && p2.count(ServeOutcome::health_check) >= 2 &&
           p3.count(ServeOutcome::health_check) >= 2;
  }));
  for (int i = 0; i < 9; ++i) CHECK(request(connector, client_io, origin_addr));
  // A receiver counts a request when its relay ends, just after the client's.
  auto served = [&] {
    return p1.count(ServeOutcome::connected) + p2.count(ServeOutcome::connected) +
           p3.count(ServeOutcome::connected);
  };
  REQUIRE(test::wait_until([&] { return served() == 9; }, 5s));
  CHECK(p2.count(ServeOutcome::connected) == 3);  // round robin: a third each

  const auto stopped_at = Clock::now();
  p2.listener.stop();
  auto up = [&] { return proxy(connector.metrics_snapshot(), p2.target()).up; };
  REQUIRE(test::wait_until([&] { return !up(); }, 5s));
  const auto down_after = Clock::now() - stopped_at;
  INFO("down after " << std::chrono::duration_cast<std::chrono::milliseconds>(down_after).count()
                     << " ms");
  CHECK(down_after <= fall * interval + timeout);

  // Down: skipped by selection, as an ejected next proxy is; no attempt on it.
  const auto attempts = proxy(connector.metrics_snapshot(), p2.target())[ProxyCounter::attempt];
  const auto served_before = p1.count(ServeOutcome::connected) + p3.count(ServeOutcome::connected);
  for (int i = 0; i < 12; ++i) CHECK(request(connector, client_io, origin_addr));
  CHECK(proxy(connector.metrics_snapshot(), p2.target())[ProxyCounter::attempt] == attempts);
  REQUIRE(test::wait_until([&] { return served() == 9 + 12; }, 5s));
  CHECK(p1.count(ServeOutcome::connected) + p3.count(ServeOutcome::connected) ==
        served_before + 12);

  p2.listener.start();  // the same address and port
  const auto restarted_at = Clock::now();
  REQUIRE(test::wait_until([&] { return up(); }, 5s));
  const auto up_after = Clock::now() - restarted_at;
  INFO("up after " << std::chrono::duration_cast<std::chrono::milliseconds>(up_after).count()
                   << " ms");
  // The rise-th successful probe starts within rise x interval of the restart
  // and passes when the receiver closes, at most `timeout` later.
  CHECK(up_after <= rise * interval + timeout);
  const auto p2_served = p2.count(ServeOutcome::connected);
  for (int i = 0; i < 9; ++i) CHECK(request(connector, client_io, origin_addr));
  REQUIRE(test::wait_until([&] { return served() == 9 + 12 + 9; }, 5s));
  CHECK(p2.count(ServeOutcome::connected) == p2_served + 3);  // back in the rotation

  connector.stop();
  connector.stop();                           // idempotent
  std::this_thread::sleep_for(2 * interval);  // a probe in flight at stop() may still land
  const auto probes = p1.count(ServeOutcome::health_check);
  std::this_thread::sleep_for(3 * interval);
  CHECK(p1.count(ServeOutcome::health_check) == probes);
  CHECK(request(connector, client_io, origin_addr));  // connects keep working
}

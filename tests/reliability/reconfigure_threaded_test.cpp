// reconfigure() from one thread while connects run on two others (one
// io_context, two threads) through the same connector; snapshots read
// meanwhile. Meant for TSan (label "threaded"): every connect must succeed
// and no counter may go backwards.
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <thread>

#include "divert/connector.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace std::chrono_literals;
using asio::ip::tcp;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

asio::awaitable<void> accept_all(tcp::acceptor& acc) {
  for (;;) {
    auto [ec, s] = co_await acc.async_accept(tuple_awaitable);
    if (ec) co_return;
  }
}

}  // namespace

TEST_CASE("reconfigure from one thread while two threads connect: no failure, counters monotonic") {
  constexpr int kLoops = 4;
  constexpr int kConnectsPerLoop = 150;
  asio::io_context io(2);
  std::vector<std::unique_ptr<tcp::acceptor>> next_proxies;
  std::vector<std::string> addr;
  for (int i = 0; i < 3; ++i) {
    next_proxies.push_back(std::make_unique<tcp::acceptor>(
        asio::make_strand(io), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    addr.push_back("127.0.0.1:" + std::to_string(next_proxies.back()->local_endpoint().port()));
    asio::co_spawn(next_proxies.back()->get_executor(), accept_all(*next_proxies.back()),
                   asio::detached);
  }
  // addr[1] is in every configuration: its counters are carried throughout.
  const std::vector<std::vector<WeightedUpstreamAddr>> configs = {
      {{UpstreamAddr::parse(addr[0], 0), 1.0}, {UpstreamAddr::parse(addr[1], 0), 1.0}},
      {{UpstreamAddr::parse(addr[1], 0), 3.0}, {UpstreamAddr::parse(addr[2], 0), 1.0}},
      {{UpstreamAddr::parse(addr[2], 0), 1.0},
       {UpstreamAddr::parse(addr[0], 0), 2.0},
       {UpstreamAddr::parse(addr[1], 0), 1.0}},
  };
  auto builder = [&](std::size_t k) {
    return DivertTcpConnector::builder()
        .proxy_addr(configs[k % configs.size()])
        .proxy_addr_pick_policy(k % 2 ? PickPolicy::round_robin : PickPolicy::random);
  };
  const auto connector = builder(0).build();

  std::atomic<int> ok{0}, failed{0}, loops_done{0};
  for (int l = 0; l < kLoops; ++l)
    asio::co_spawn(
        asio::make_strand(io),
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < kConnectsPerLoop; ++i) {
            Task task{.client = tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
                      .server = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
                      .upstream = UpstreamAddr::parse("origin.test:80", 0)};
            divert::error_code ec;
            auto s = co_await connector.tcp_connect(task, ec);
            (ec ? failed : ok).fetch_add(1);
          }
          loops_done.fetch_add(1);
        },
        asio::detached);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run_for(60s); });

  // This thread reconfigures and reads, until the connects are done.
  MetricsSnapshot last = connector.metrics_snapshot();
  std::uint64_t last_kept_attempts = 0;
  int reconfigures = 0;
  bool monotonic = true;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (loops_done.load() < kLoops && std::chrono::steady_clock::now() < deadline) {
    connector.reconfigure(builder(static_cast<std::size_t>(++reconfigures)));
    auto snap = connector.metrics_snapshot();
    for (std::size_t k = 0; k < kMetricsCounterCount; ++k) {
      const auto c = static_cast<MetricsCounter>(k);
      if (snap[c] < last[c]) monotonic = false;
    }
    for (const auto& p : snap.proxies)
      if (p.next_proxy == addr[1]) {
        if (p[ProxyCounter::attempt] < last_kept_attempts) monotonic = false;
        last_kept_attempts = p[ProxyCounter::attempt];
      }
    (void)connector.ejected_proxies();
    (void)connector.config();
    last = snap;
    std::this_thread::sleep_for(1ms);
  }
  for (auto& a : next_proxies) asio::post(a->get_executor(), [&a] { a->close(); });
  for (auto& t : threads) t.join();
  INFO("reconfigures: " << reconfigures);
  CHECK(loops_done.load() == kLoops);
  CHECK(ok.load() == kLoops * kConnectsPerLoop);
  CHECK(failed.load() == 0);
  CHECK(monotonic);
  CHECK(reconfigures >= 5);
  const auto end = connector.metrics_snapshot();
  CHECK(end[MetricsCounter::tcp_connect_establish] == kLoops * kConnectsPerLoop);
  CHECK(end.connects_in_flight == 0);
  for (const auto& p : end.proxies) CHECK(p.connects_in_flight == 0);
}

// bench_connector — time from tcp_connect() to "header sent" on loopback,
// beside a bare connect plus one write of the same header bytes, in the same
// run, alternating A/B so machine noise hits both. Prints medians and ratio.
//
//   divert_bench_connector [iterations=2000]
#include <algorithm>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <cstdio>
#include <thread>
#include <vector>

#include "divert/connector.hpp"
#include "divert/net/connect.hpp"
#include "divert/ppv2/encoder.hpp"

using namespace divert;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  asio::io_context io(1);
  // The peer runs on its own thread and io_context: its accept and close work
  // must not land inside whichever client window happens to be open.
  asio::io_context peer_io(1);
  tcp::acceptor acc(peer_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = acc.local_endpoint().port();
  // Accept and drop everything so neither side ever waits on the peer.
  asio::co_spawn(
      peer_io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, s] =
              co_await acc.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
          if (ec) co_return;
          // Closed at once: the client's write has completed locally by then.
        }
      },
      asio::detached);

  auto connector =
      DivertTcpConnector::builder().proxy_addr("127.0.0.1:" + std::to_string(port)).build();
  Task task{.client = tcp::endpoint(asio::ip::make_address("192.0.2.10"), 50000),
            .server = tcp::endpoint(asio::ip::make_address("198.51.100.1"), 3128),
            .upstream = UpstreamAddr::parse("example.com:443"),
            .username = "alice"};

  // The baseline writes a header of the same size, encoded once up front.
  ppv2::HeaderSpec spec;
  spec.src = ppv2::Endpoint::v4({192, 0, 2, 10}, 50000);
  spec.dst = ppv2::Endpoint::v4({198, 51, 100, 1}, 3128);
  spec.upstream = "example.com:443";
  spec.username = "alice";
  spec.task_id = make_task_id_v7();
  ppv2::HeaderBuffer hdr;
  ppv2::encode(spec, hdr);

  std::vector<double> divert_us, bare_us, mid_us;  // mid: the net layer + one write, no connector
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
        for (int i = 0; i < iterations + 100; ++i) {
          bool warm = i >= 100;
          {
            auto t0 = Clock::now();
            tcp::socket s(ex);
            co_await s.async_connect(ep, asio::use_awaitable);
            s.set_option(tcp::no_delay(true));
            co_await asio::async_write(s, asio::buffer(hdr.data(), hdr.size()),
                                       asio::use_awaitable);
            auto t1 = Clock::now();
            if (warm) bare_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
          }
          {
            auto t0 = Clock::now();
            auto r = co_await net::connect_with_retry(ep, net::ConnectOptions{});
            co_await asio::async_write(*r.socket, asio::buffer(hdr.data(), hdr.size()),
                                       asio::use_awaitable);
            auto t1 = Clock::now();
            if (warm) mid_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
          }
          {
            auto t0 = Clock::now();
            auto s = co_await connector.tcp_connect(task);
            auto t1 = Clock::now();
            if (warm)
              divert_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
          }
        }
        asio::post(peer_io, [&] { acc.close(); });
      },
      asio::detached);
  std::thread peer([&] { peer_io.run(); });
  io.run();
  peer.join();

  double bd = median(bare_us), dd = median(divert_us);
  std::printf("loopback connect + PROXY v2 header (%zu bytes), %d iterations each, alternating\n",
              hdr.size(), iterations);
  std::printf("%-34s %10s %10s\n", "", "median us", "p99 us");
  std::printf("%-34s %10.2f %10.2f\n", "bare async_connect + one write", bd,
              percentile(bare_us, 0.99));
  std::printf("%-34s %10.2f %10.2f\n", "divert tcp_connect (pick+encode)", dd,
              percentile(divert_us, 0.99));
  std::printf("%-34s %10.2f %10.2f\n", "net::connect_with_retry + one write", median(mid_us),
              percentile(mid_us, 0.99));
  std::printf("overhead (median): %+.1f %%  (ratio %.3f)\n", (dd / bd - 1) * 100, dd / bd);
}

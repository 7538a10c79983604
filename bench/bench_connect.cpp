// bench_connect — loopback connect latency of divert::net::happy_eyeballs_connect
// against a bare asio async_connect, timed alternately in the same run.
// Prints the median (and p90) per variant and the ratio to the baseline.
// Usage: divert_bench_connect [iterations per variant, default 5000]
#include <sys/socket.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "divert/net/connect.hpp"

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace divert::net;

namespace {

void accept_forever(tcp::acceptor& a) {
  a.async_accept([&a](std::error_code ec, tcp::socket s) {
    if (ec) return;
    s.close();
    accept_forever(a);
  });
}

// Close with RST so that thousands of connects leave no TIME_WAIT behind.
void hard_close(tcp::socket& s) {
  divert::error_code ec;
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

struct Stats {
  std::vector<double> v;
  double pct(double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int warmup = 300;
  // The listener runs on its own thread and io_context, so that accepting
  // and closing the server side is not timed as part of either variant.
  asio::io_context server_io;
  tcp::acceptor acceptor(server_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  acceptor.listen(4096);
  accept_forever(acceptor);
  const tcp::endpoint ep = acceptor.local_endpoint();
  std::thread server([&] { server_io.run(); });
  asio::io_context io;

  ConnectOptions defaults;  // no_delay on (one setsockopt), as a connector uses it
  ConnectOptions plain;
  plain.tcp_misc_opts.no_delay = false;  // same syscalls as the bare connect
  auto stub = std::make_shared<StubResolver>();
  stub->add("np.bench", {asio::ip::make_address("127.0.0.1")});
  ConnectOptions v4only = plain;
  v4only.resolve_strategy.query = ResolveStrategy::Query::Ipv4Only;

  Stats bare, he_plain, he_default, he_stub;
  int failures = 0;

  auto run = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < warmup + n; ++i) {
      const bool record = i >= warmup;
      {  // baseline: bare async_connect
        auto t0 = Clock::now();
        tcp::socket s(ex);
        auto [ec] = co_await s.async_connect(ep, asio::experimental::as_tuple(asio::use_awaitable));
        auto t1 = Clock::now();
        if (ec) ++failures;
        if (record) bare.v.push_back(micros(t1 - t0));
        hard_close(s);
      }
      {  // happy eyeballs, IP literal, same socket options as the baseline
        auto t0 = Clock::now();
        auto r = co_await happy_eyeballs_connect("127.0.0.1", ep.port(), plain, nullptr);
        auto t1 = Clock::now();
        if (r.error) ++failures;
        if (record) he_plain.v.push_back(micros(t1 - t0));
        if (r.socket) hard_close(*r.socket);
      }
      {  // happy eyeballs, IP literal, default options (TCP_NODELAY set)
        auto t0 = Clock::now();
        auto r = co_await happy_eyeballs_connect("127.0.0.1", ep.port(), defaults, nullptr);
        auto t1 = Clock::now();
        if (r.error) ++failures;
        if (record) he_default.v.push_back(micros(t1 - t0));
        if (r.socket) hard_close(*r.socket);
      }
      {  // happy eyeballs through a (stub) resolver: domain path, one family
        auto t0 = Clock::now();
        auto r = co_await happy_eyeballs_connect("np.bench", ep.port(), v4only, stub);
        auto t1 = Clock::now();
        if (r.error) ++failures;
        if (record) he_stub.v.push_back(micros(t1 - t0));
        if (r.socket) hard_close(*r.socket);
      }
    }
  };
  asio::co_spawn(io, run(), asio::detached);
  io.run();
  asio::post(server_io, [&] { acceptor.close(); });
  server.join();

  const double base = bare.pct(0.5);
  std::printf("loopback connect latency, %d iterations per variant (alternating), microseconds\n",
              n);
  std::printf("%-44s %9s %9s %8s\n", "variant", "median", "p90", "ratio");
  auto line = [&](const char* name, Stats& s) {
    const double med = s.pct(0.5);
    std::printf("%-44s %9.2f %9.2f %8.3f\n", name, med, s.pct(0.9), med / base);
  };
  line("bare asio async_connect (baseline)", bare);
  line("happy_eyeballs_connect literal, no_delay off", he_plain);
  line("happy_eyeballs_connect literal, defaults", he_default);
  line("happy_eyeballs_connect stub-resolved domain", he_stub);
  std::printf("overhead (median, same options): %+.1f%%  (target <= +10%%)\n",
              (he_plain.pct(0.5) / base - 1.0) * 100.0);
  std::printf("failures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}

// bench_relay — throughput of divert::relay over loopback (splice and copy
// paths) beside a bare async read/write copy loop timed in the same run.
//
// Topology per run: sender -> [a  forwarder  b] -> receiver, one direction,
// everything on one io_context thread. The forwarder is either the baseline
// loop (16 KiB buffer, read_some + write) or divert::relay with the default
// 16 KiB buffer. Usage: divert_bench_relay [MiB per run, default 256] [runs, default 3]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include "divert/relay.hpp"

using asio::experimental::as_tuple;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::pair<tcp::socket, tcp::socket> socket_pair(asio::io_context& io) {
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket c(io);
  c.connect(acc.local_endpoint());
  tcp::socket s = acc.accept();
  return {std::move(c), std::move(s)};
}

asio::awaitable<void> send_all(tcp::socket& s, std::uint64_t total) {
  std::vector<char> buf(64 * 1024, 'x');
  for (std::uint64_t left = total; left > 0;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
    auto [ec, w] =
        co_await asio::async_write(s, asio::buffer(buf.data(), n), as_tuple(asio::use_awaitable));
    if (ec) co_return;
    left -= w;
  }
  divert::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> recv_all(tcp::socket& s, std::uint64_t& got, Clock::time_point& end,
                               asio::io_context& io) {
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
    got += n;
    if (ec) break;
  }
  end = Clock::now();
  io.stop();  // the reverse direction never ends on its own: the receiver keeps it open
}

// The baseline: what a host would write by hand for one direction.
asio::awaitable<void> bare_copy(tcp::socket& from, tcp::socket& to) {
  std::vector<char> buf(16 * 1024);
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
    if (n > 0) {
      auto [wec, w] = co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                                 as_tuple(asio::use_awaitable));
      if (wec) break;
    }
    if (ec) break;
  }
  divert::error_code ec;
  to.shutdown(tcp::socket::shutdown_send, ec);
}

enum class Mode { baseline, relay_copy, relay_splice };

// Returns MB/s (1e6 bytes per second), or a negative value on a short transfer.
double run_once(Mode mode, std::uint64_t bytes) {
  asio::io_context io(1);
  auto [sender, a] = socket_pair(io);
  auto [b, receiver] = socket_pair(io);
  std::uint64_t got = 0;
  Clock::time_point end{};
  divert::RelayResult result;
  const auto start = Clock::now();
  asio::co_spawn(io, send_all(sender, bytes), asio::detached);
  asio::co_spawn(io, recv_all(receiver, got, end, io), asio::detached);
  if (mode == Mode::baseline) {
    asio::co_spawn(io, bare_copy(a, b), asio::detached);
    asio::co_spawn(io, bare_copy(b, a), asio::detached);  // the idle reverse direction
  } else {
    divert::RelayOptions opt;
    opt.allow_splice = mode == Mode::relay_splice;
    asio::co_spawn(io, divert::relay(a, b, opt),
                   [&](std::exception_ptr, divert::RelayResult r) { result = r; });
  }
  io.run_for(std::chrono::seconds(120));
  if (got != bytes) return -1;
  if (mode != Mode::baseline) {
    // The relay is still running (reverse direction open): close the outer
    // ends and let it finish to learn which path it took.
    sender.close();
    receiver.close();
    io.restart();
    io.run_for(std::chrono::seconds(10));
    const auto want =
        mode == Mode::relay_splice ? divert::RelayPath::splice : divert::RelayPath::copy;
    if (result.path != want) return -1;
  }
  return static_cast<double>(bytes) / 1e6 / std::chrono::duration<double>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256;
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  const std::uint64_t bytes = mib << 20;
  struct Series {
    const char* name;
    Mode mode;
    std::vector<double> mbps;
  };
  std::vector<Series> series = {{"baseline read/write loop", Mode::baseline, {}},
                                {"relay copy path", Mode::relay_copy, {}},
                                {"relay splice path", Mode::relay_splice, {}}};
  // Interleave the variants so drift in machine load hits all of them alike.
  for (int r = 0; r < runs; ++r) {
    for (auto& s : series) {
      const double v = run_once(s.mode, bytes);
      if (v < 0) {
        std::fprintf(stderr, "%s: transfer incomplete\n", s.name);
        return 1;
      }
      s.mbps.push_back(v);
    }
  }
  std::printf("relay throughput, %llu MiB one way over loopback, %d runs, median MB/s\n",
              static_cast<unsigned long long>(mib), runs);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double base = median(series[0].mbps);
  for (const auto& s : series) {
    const double m = median(s.mbps);
    std::printf("  %-26s %9.1f MB/s   ratio to baseline %.2f\n", s.name, m, m / base);
  }
  return 0;
}

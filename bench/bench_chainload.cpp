// bench_chainload — the load generator bench/chain_bench.sh needs beside
// wrk: an open-loop fixed-rate client (wrk2 is not in Debian) and a holder of
// many idle keep-alive connections. HTTP/1.1 only, one io_context thread.
//
//   divert_bench_chainload rate HOST:PORT PATH RATE SECONDS [FILE]
//     Starts one request on a NEW connection (Connection: close) every 1/RATE
//     seconds, whatever the responses do (open loop), and measures each
//     latency from its scheduled start to its last response byte, so a stall
//     counts for every request it delays (no coordinated omission). Prints
//     `requests N errors E rate R p50_us X p90_us X p99_us X max_us X`, and
//     appends every latency (us, one a line) to FILE when given.
//   divert_bench_chainload hold HOST:PORT PATH CONNECTIONS
//     Opens CONNECTIONS keep-alive connections (at most 256 connecting at a
//     time), makes one request on each, prints `ready N errors E` and keeps
//     them open and idle until it is killed (SIGTERM).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

using asio::experimental::as_tuple;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Reads one response (headers plus Content-Length bytes, or up to EOF).
// Returns false on an error or a response that is not 2xx.
asio::awaitable<bool> read_response(tcp::socket& s) {
  std::string buf;
  char chunk[4096];
  std::size_t body_start = std::string::npos, need = std::string::npos;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), as_tuple(asio::use_awaitable));
    buf.append(chunk, n);
    if (body_start == std::string::npos) {
      const auto end = buf.find("\r\n\r\n");
      if (end != std::string::npos) {
        if (buf.compare(0, 10, "HTTP/1.1 2") != 0) co_return false;
        body_start = end + 4;
        std::string head = buf.substr(0, end);
        std::transform(head.begin(), head.end(), head.begin(), ::tolower);
        const auto cl = head.find("\r\ncontent-length:");
        if (cl != std::string::npos) need = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
      }
    }
    if (body_start != std::string::npos && need != std::string::npos &&
        buf.size() - body_start >= need)
      co_return true;
    if (ec) co_return ec == asio::error::eof&& body_start != std::string::npos;
  }
}

asio::awaitable<bool> one_request(tcp::socket& s, const tcp::endpoint& target,
                                  const std::string& request) {
  auto [cec] = co_await s.async_connect(target, as_tuple(asio::use_awaitable));
  if (cec) co_return false;
  std::error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);  // a reset right after connect shows in the write
  auto [wec, w] =
      co_await asio::async_write(s, asio::buffer(request), as_tuple(asio::use_awaitable));
  if (wec) co_return false;
  co_return co_await read_response(s);
}

struct RateRun {
  tcp::endpoint target;
  std::string request;
  std::vector<std::uint32_t> latencies_us;
  std::size_t errors = 0;
};

asio::awaitable<void> timed_request(RateRun& run, Clock::time_point scheduled) {
  using namespace asio::experimental::awaitable_operators;
  tcp::socket s(co_await asio::this_coro::executor);
  asio::steady_timer limit(s.get_executor(), std::chrono::seconds(10));
  auto r = co_await (one_request(s, run.target, run.request) ||
                     limit.async_wait(as_tuple(asio::use_awaitable)));
  if (r.index() == 0 && std::get<0>(r)) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - scheduled);
    run.latencies_us.push_back(static_cast<std::uint32_t>(us.count()));
  } else {
    ++run.errors;
  }
}

asio::awaitable<void> pace(RateRun& run, double rate, double seconds) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  const auto start = Clock::now();
  const auto total = static_cast<std::size_t>(rate * seconds);
  for (std::size_t i = 0; i < total; ++i) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(static_cast<double>(i) / rate));
    if (Clock::now() < at) {
      timer.expires_at(at);
      co_await timer.async_wait(as_tuple(asio::use_awaitable));
    }
    asio::co_spawn(ex, timed_request(run, at), asio::detached);
  }
}

std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

int run_rate(const tcp::endpoint& target, const std::string& path, double rate, double seconds,
             const char* latency_file) {
  asio::io_context io(1);
  RateRun run;
  run.target = target;
  run.request = "GET " + path + " HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  run.latencies_us.reserve(static_cast<std::size_t>(rate * seconds));
  asio::co_spawn(io, pace(run, rate, seconds), asio::detached);
  io.run();
  auto& l = run.latencies_us;
  std::sort(l.begin(), l.end());
  if (latency_file) {
    if (std::FILE* f = std::fopen(latency_file, "a")) {
      for (auto us : l) std::fprintf(f, "%u\n", us);
      std::fclose(f);
    }
  }
  std::printf("requests %zu errors %zu rate %.0f p50_us %u p90_us %u p99_us %u max_us %u\n",
              l.size(), run.errors, static_cast<double>(l.size()) / seconds, percentile(l, 0.50),
              percentile(l, 0.90), percentile(l, 0.99), l.empty() ? 0 : l.back());
  return run.errors == 0 ? 0 : 1;
}

struct HoldRun {
  tcp::endpoint target;
  std::string request;
  std::size_t next = 0, total = 0, ok = 0, errors = 0;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
};

asio::awaitable<void> hold_worker(HoldRun& run) {
  auto ex = co_await asio::this_coro::executor;
  while (run.next < run.total) {
    ++run.next;
    auto s = std::make_unique<tcp::socket>(ex);
    if (co_await one_request(*s, run.target, run.request)) {
      ++run.ok;
      run.sockets.push_back(std::move(s));
    } else {
      ++run.errors;
    }
  }
}

int run_hold(const tcp::endpoint& target, const std::string& path, std::size_t connections) {
  asio::io_context io(1);
  HoldRun run;
  run.target = target;
  run.request = "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n";
  run.total = connections;
  run.sockets.reserve(connections);
  for (int i = 0; i < 256; ++i) asio::co_spawn(io, hold_worker(run), asio::detached);
  io.run();
  std::printf("ready %zu errors %zu\n", run.ok, run.errors);
  std::fflush(stdout);
  for (;;) ::pause();
}

tcp::endpoint parse_target(const std::string& text) {
  const auto colon = text.rfind(':');
  return {asio::ip::make_address(text.substr(0, colon)),
          static_cast<unsigned short>(std::stoi(text.substr(colon + 1)))};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "rate" && (argc == 6 || argc == 7))
      return run_rate(parse_target(argv[2]), argv[3], std::stod(argv[4]), std::stod(argv[5]),
                      argc == 7 ? argv[6] : nullptr);
    if (mode == "hold" && argc == 5)
      return run_hold(parse_target(argv[2]), argv[3], std::stoul(argv[4]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "divert_bench_chainload: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr,
               "usage: divert_bench_chainload rate HOST:PORT PATH RATE SECONDS [FILE]\n"
               "       divert_bench_chainload hold HOST:PORT PATH CONNECTIONS\n");
  return 2;
}

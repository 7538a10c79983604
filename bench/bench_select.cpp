// bench_select — ns per pick for every policy at N = 3, 10, 100, 1000 nodes,
// beside the cost of hashing the key alone (crc32 for ketama, xxh3_64 for the
// others). The key hash is re-timed right before each cell, so the ratio
// pick / key hash holds even when the machine's load changes during the run.
// Each figure is the best of 5 runs.
//
// Usage: divert_bench_select [iterations-per-cell, default 2000000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "divert/select/hash.hpp"
#include "divert/select/pick_key.hpp"
#include "divert/select/selector.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Keeps results alive so the optimiser cannot drop the work.
volatile std::uint64_t g_sink = 0;

std::vector<std::string> make_keys(std::size_t n) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto ip = asio::ip::make_address_v4(
        static_cast<asio::ip::address_v4::uint_type>(0xC0000200u + (i * 2654435761u % 65521u)));
    keys.push_back(
        divert::make_pick_key(ip, i % 2 ? std::optional<std::string_view>("alice") : std::nullopt,
                              fmt::format("host{}.example.com", i % 211)));
  }
  return keys;
}

// Best of 5 runs, ns per call.
template <class F>
double time_ns(std::size_t iters, const std::vector<std::string>& keys, F&& f) {
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    std::uint64_t acc = 0;
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < iters; ++i) acc += f(keys[i & (keys.size() - 1)]);
    auto t1 = Clock::now();
    g_sink = g_sink + acc;
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / iters);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t iters = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  if (iters == 0) iters = 1;
  auto keys = make_keys(4096);  // power of two: index with a mask
  std::size_t total_len = 0;
  for (const auto& k : keys) total_len += k.size();

  double crc = time_ns(iters, keys, [](const std::string& k) { return divert::hash::crc32(k); });
  double xxh = time_ns(iters, keys, [](const std::string& k) { return divert::hash::xxh3_64(k); });
  std::printf("key hash alone (mean key length %.1f bytes): crc32 %.1f ns, xxh3_64 %.1f ns\n",
              static_cast<double>(total_len) / keys.size(), crc, xxh);
  std::printf("ratio = pick / key hash of that policy (crc32 for ketama, xxh3_64 otherwise)\n\n");
  std::printf("%-12s %6s %10s %14s %8s\n", "policy", "N", "ns/pick", "key hash ns", "ratio");

  const divert::PickPolicy policies[] = {
      divert::PickPolicy::random, divert::PickPolicy::serial,     divert::PickPolicy::round_robin,
      divert::PickPolicy::ketama, divert::PickPolicy::rendezvous, divert::PickPolicy::jump_hash};
  for (auto policy : policies) {
    for (std::size_t n : {3u, 10u, 100u, 1000u}) {
      std::vector<divert::SelectorNode> nodes;
      for (std::size_t i = 0; i < n; ++i) {
        nodes.push_back(
            {fmt::format("10.{}.{}.1:3128", i / 250, i % 250), 1.0 + static_cast<double>(i % 4)});
      }
      divert::IndexSelector sel(std::move(nodes), policy);
      // Rendezvous is O(N): fewer iterations keep the run short.
      std::size_t it = policy == divert::PickPolicy::rendezvous
                           ? std::max<std::size_t>(iters / (n / 3 + 1), 1000)
                           : iters;
      double ns = time_ns(it, keys, [&sel](const std::string& k) { return sel.pick(k); });
      double base =
          policy == divert::PickPolicy::ketama
              ? time_ns(iters, keys, [](const std::string& k) { return divert::hash::crc32(k); })
              : time_ns(iters, keys, [](const std::string& k) { return divert::hash::xxh3_64(k); });
      std::printf("%-12s %6zu %10.1f %14.1f %8.2f\n",
                  std::string(divert::to_string(policy)).c_str(), n, ns, base, ns / base);
    }
  }
  std::printf(
      "\nkey hash ns: crc32 for ketama, xxh3_64 for the others (serial, random and\n"
      "round_robin do not hash the key; the column is the reference cost).\n");
  return 0;
}

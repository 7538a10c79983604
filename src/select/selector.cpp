// IndexSelector: the selection policies (contract in divert/select/selector.hpp,
// hashes in divert/select/hash.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_set>

#include <fmt/format.h>

#include "divert/error.hpp"
#include "divert/select/hash.hpp"
#include "divert/select/selector.hpp"

namespace divert {

namespace {

// Per-thread SplitMix64 generator: no locks, no sharing between threads.
std::uint64_t random_seed() noexcept {
  std::uint64_t seed = 0;
  try {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  } catch (...) {
  }
  int local = 0;
  seed ^= reinterpret_cast<std::uintptr_t>(&local);  // distinct per thread stack
  seed ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return seed;
}

std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state = random_seed();
  state += 0x9E3779B97F4A7C15ULL;
  return hash::mix64(state);
}

// A uniform double in the open interval (0, 1).
double random_unit() noexcept {
  return (static_cast<double>(next_random() >> 12) + 0.5) * 0x1.0p-52;  // see hash.hpp §6
}

// Integer weights for round robin (see selector.hpp).
std::vector<std::uint64_t> integer_weights(const std::vector<SelectorNode>& nodes,
                                           std::uint64_t cap) {
  bool integral = std::all_of(nodes.begin(), nodes.end(), [](const SelectorNode& n) {
    return n.weight == std::floor(n.weight) && n.weight <= 1e12;
  });
  std::vector<std::uint64_t> w;
  w.reserve(nodes.size());
  for (const auto& n : nodes) {
    double scaled = integral ? n.weight : std::round(n.weight * 1000.0);
    w.push_back(std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::min(scaled, 1e15))));
  }
  auto reduce = [&w] {
    std::uint64_t g = 0;
    for (auto x : w) g = std::gcd(g, x);
    for (auto& x : w) x /= g;
  };
  reduce();
  long double sum = 0;
  for (auto x : w) sum += static_cast<long double>(x);
  if (sum > static_cast<long double>(cap)) {
    for (auto& x : w) {
      auto s = std::llround(static_cast<long double>(x) * cap / sum);
      x = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(s));
    }
    reduce();
  }
  return w;
}

}  // namespace

IndexSelector::IndexSelector(std::vector<SelectorNode> nodes, PickPolicy policy,
                             std::string_view config_key)
    : nodes_(std::move(nodes)), policy_(policy) {
  const std::string key(config_key);
  if (nodes_.empty()) throw config_error(key, "", "at least one address is needed");
  if (nodes_.size() > 0xFFFFFFFFu) throw config_error(key, "", "too many addresses");
  {
    std::unordered_set<std::string_view> names;
    for (const auto& n : nodes_) {
      if (!std::isfinite(n.weight) || !(n.weight > 0)) {
        throw config_error(key, fmt::format("{}", n.weight),
                           fmt::format("weight of {} must be a finite number > 0", n.name));
      }
      if (!names.insert(n.name).second) throw config_error(key, n.name, "address listed twice");
    }
  }
  const std::size_t n = nodes_.size();

  switch (policy_) {
    case PickPolicy::serial: {
      // g3's order: by weight, highest first; equal weights keep the configured order.
      serial_order_.resize(n);
      std::iota(serial_order_.begin(), serial_order_.end(), 0u);
      std::stable_sort(
          serial_order_.begin(), serial_order_.end(),
          [this](std::uint32_t a, std::uint32_t b) { return nodes_[a].weight > nodes_[b].weight; });
      break;
    }

    case PickPolicy::random: {
      // Vose's alias method.
      double total = 0;
      for (const auto& nd : nodes_) total += nd.weight;
      std::vector<double> p(n);
      std::vector<std::uint32_t> small, large;
      for (std::size_t i = 0; i < n; ++i) {
        p[i] = nodes_[i].weight * static_cast<double>(n) / total;
        (p[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
      }
      alias_threshold_.assign(n, std::uint64_t{1} << 32);
      alias_.resize(n);
      std::iota(alias_.begin(), alias_.end(), 0u);
      while (!small.empty() && !large.empty()) {
        auto s = small.back();
        small.pop_back();
        auto l = large.back();
        alias_threshold_[s] = static_cast<std::uint64_t>(std::llround(p[s] * 0x1.0p32));
        alias_[s] = l;
        p[l] = (p[l] + p[s]) - 1.0;
        if (p[l] < 1.0) {
          large.pop_back();
          small.push_back(l);
        }
      }
      // Leftovers (rounding) keep threshold 2^32: always themselves.
      break;
    }

    case PickPolicy::round_robin: {
      auto w = integer_weights(nodes_, kMaxRoundRobinCycle);
      std::uint64_t total = std::accumulate(w.begin(), w.end(), std::uint64_t{0});
      std::vector<std::int64_t> current(n, 0);
      rr_cycle_.reserve(total);
      for (std::uint64_t step = 0; step < total; ++step) {
        std::size_t best = 0;
        for (std::size_t i = 0; i < n; ++i) {
          current[i] += static_cast<std::int64_t>(w[i]);
          if (current[i] > current[best]) best = i;
        }
        current[best] -= static_cast<std::int64_t>(total);
        rr_cycle_.push_back(static_cast<std::uint32_t>(best));
      }
      break;
    }

    case PickPolicy::ketama: {
      std::vector<std::uint64_t> counts(n);
      long double total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        long double c =
            std::round(static_cast<long double>(nodes_[i].weight) * kKetamaPointsPerWeight);
        total += std::max<long double>(1, c);
        if (total > kMaxKetamaPoints) {
          throw config_error(key, nodes_[i].name,
                             fmt::format("ketama ring would exceed {} points (weight × {} per "
                                         "node); lower the weights",
                                         kMaxKetamaPoints, kKetamaPointsPerWeight));
        }
        counts[i] = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(c));
      }
      struct Point {
        std::uint32_t hash;
        std::uint32_t node;
      };
      std::vector<Point> points;
      points.reserve(static_cast<std::size_t>(total));
      for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t base = hash::ketama_base(nodes_[i].name);
        std::uint32_t prev = 0;
        for (std::uint64_t j = 0; j < counts[i]; ++j) {
          prev = hash::ketama_next_point(base, prev);
          points.push_back({prev, static_cast<std::uint32_t>(i)});
        }
      }
      // Stable: of equal hashes the lowest node (then lowest j) stays, as in nginx.
      std::stable_sort(points.begin(), points.end(),
                       [](const Point& a, const Point& b) { return a.hash < b.hash; });
      ring_hashes_.reserve(points.size());
      ring_nodes_.reserve(points.size());
      for (const auto& pt : points) {
        if (!ring_hashes_.empty() && ring_hashes_.back() == pt.hash) continue;
        ring_hashes_.push_back(pt.hash);
        ring_nodes_.push_back(pt.node);
      }
      // Slot table: about one point per slot, at most 2^16 slots (256 KiB).
      unsigned bits = 4;
      while (bits < 16 && (std::size_t{1} << bits) < ring_hashes_.size()) ++bits;
      ring_shift_ = 32 - bits;
      ring_slots_.resize((std::size_t{1} << bits) + 1);
      std::size_t p = 0;
      for (std::size_t slot = 0; slot < (std::size_t{1} << bits); ++slot) {
        auto start = static_cast<std::uint64_t>(slot) << ring_shift_;
        while (p < ring_hashes_.size() && ring_hashes_[p] < start) ++p;
        ring_slots_[slot] = static_cast<std::uint32_t>(p);
      }
      ring_slots_.back() = static_cast<std::uint32_t>(ring_hashes_.size());
      break;
    }

    case PickPolicy::rendezvous: {
      node_hashes_.reserve(n);
      for (const auto& nd : nodes_) node_hashes_.push_back(hash::xxh3_64(nd.name));
      break;
    }

    case PickPolicy::jump_hash: {
      bucket_end_.reserve(n);
      std::uint64_t total = 0;
      std::uint64_t first = 0;
      bool uniform = true;
      for (std::size_t i = 0; i < n; ++i) {
        double b = std::round(nodes_[i].weight * kJumpBucketsPerWeight);
        if (b > static_cast<double>(kMaxJumpBuckets) ||
            total + static_cast<std::uint64_t>(std::max(1.0, b)) > kMaxJumpBuckets) {
          throw config_error(key, nodes_[i].name,
                             fmt::format("jump hash would exceed {} buckets (weight × {} per "
                                         "node); lower the weights",
                                         kMaxJumpBuckets, kJumpBucketsPerWeight));
        }
        auto count = static_cast<std::uint64_t>(std::max(1.0, b));
        if (i == 0) first = count;
        uniform = uniform && count == first;
        total += count;
        bucket_end_.push_back(total);
      }
      uniform_buckets_ = uniform ? first : 0;
      break;
    }
  }
}

std::size_t IndexSelector::pick_random() const noexcept {
  std::uint64_t r = next_random();
  std::size_t i = static_cast<std::size_t>(((r >> 32) * nodes_.size()) >> 32);
  return (r & 0xFFFFFFFFu) < alias_threshold_[i] ? i : alias_[i];
}

std::size_t IndexSelector::pick_ketama_point(std::uint32_t key_hash) const noexcept {
  // The slot of the hash's top bits bounds the search to a handful of points.
  std::uint32_t slot = key_hash >> ring_shift_;
  auto first = ring_hashes_.begin() + ring_slots_[slot];
  auto last = ring_hashes_.begin() + ring_slots_[slot + 1];
  auto it = std::lower_bound(first, last, key_hash);
  std::size_t p = static_cast<std::size_t>(it - ring_hashes_.begin());
  return p == ring_hashes_.size() ? 0 : p;
}

std::size_t IndexSelector::next_round_robin_position() const noexcept {
  // Wraps at the cycle length with a CAS instead of a division per pick.
  const std::uint64_t len = rr_cycle_.size();
  std::uint64_t c = rr_counter_.value.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    next = c + 1 == len ? 0 : c + 1;
  } while (!rr_counter_.value.compare_exchange_weak(c, next, std::memory_order_relaxed,
                                                    std::memory_order_relaxed));
  return static_cast<std::size_t>(c);
}

std::size_t IndexSelector::jump_node(std::uint64_t key_hash) const noexcept {
  auto buckets = static_cast<std::int32_t>(bucket_end_.back());
  auto b = static_cast<std::uint64_t>(hash::jump_consistent_hash(key_hash, buckets));
  if (uniform_buckets_ != 0) return static_cast<std::size_t>(b / uniform_buckets_);
  auto it = std::upper_bound(bucket_end_.begin(), bucket_end_.end(), b);
  return static_cast<std::size_t>(it - bucket_end_.begin());
}

std::size_t IndexSelector::pick_rendezvous(std::uint64_t key_hash) const noexcept {
  std::size_t best = 0;
  double best_score = -1.0;  // every score is > 0
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    double s =
        hash::rendezvous_score(nodes_[i].weight, hash::rendezvous_unit(key_hash, node_hashes_[i]));
    if (s > best_score) {
      best_score = s;
      best = i;
    }
  }
  return best;
}

std::size_t IndexSelector::pick(std::string_view key) const noexcept {
  switch (policy_) {
    case PickPolicy::serial:
      return serial_order_[0];
    case PickPolicy::random:
      return pick_random();
    case PickPolicy::round_robin:
      return rr_cycle_[next_round_robin_position()];
    case PickPolicy::ketama:
      return ring_nodes_[pick_ketama_point(hash::crc32(key))];
    case PickPolicy::rendezvous:
      return pick_rendezvous(hash::xxh3_64(key));
    case PickPolicy::jump_hash:
      return jump_node(hash::xxh3_64(key));
  }
  return 0;
}

std::vector<std::size_t> IndexSelector::candidates(std::string_view key) const {
  const std::size_t n = nodes_.size();
  std::vector<std::size_t> out;
  out.reserve(n);
  std::vector<char> seen(n, 0);
  auto add = [&](std::size_t i) {
    if (!seen[i]) {
      seen[i] = 1;
      out.push_back(i);
    }
  };
  auto add_rest = [&] {
    for (std::size_t i = 0; i < n && out.size() < n; ++i) add(i);
  };

  switch (policy_) {
    case PickPolicy::serial:
      for (auto i : serial_order_) add(i);
      break;

    case PickPolicy::random: {
      std::vector<std::pair<double, std::size_t>> keyed;
      keyed.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        keyed.emplace_back(std::log(random_unit()) / nodes_[i].weight, i);
      }
      std::stable_sort(keyed.begin(), keyed.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      for (const auto& [k, i] : keyed) add(i);
      break;
    }

    case PickPolicy::round_robin: {
      auto c = next_round_robin_position();
      const std::size_t len = rr_cycle_.size();
      for (std::size_t s = 0; s < len && out.size() < n; ++s) add(rr_cycle_[(c + s) % len]);
      break;
    }

    case PickPolicy::ketama: {
      std::size_t p = pick_ketama_point(hash::crc32(key));
      const std::size_t len = ring_hashes_.size();
      for (std::size_t s = 0; s < len && out.size() < n; ++s) add(ring_nodes_[(p + s) % len]);
      break;
    }

    case PickPolicy::rendezvous: {
      auto k = hash::xxh3_64(key);
      std::vector<std::pair<double, std::size_t>> scored;
      scored.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        scored.emplace_back(
            hash::rendezvous_score(nodes_[i].weight, hash::rendezvous_unit(k, node_hashes_[i])), i);
      }
      std::stable_sort(scored.begin(), scored.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      for (const auto& [s, i] : scored) add(i);
      break;
    }

    case PickPolicy::jump_hash: {
      auto k = hash::xxh3_64(key);
      add(jump_node(k));
      for (std::uint64_t a = 1; a <= 4 * static_cast<std::uint64_t>(n) && out.size() < n; ++a) {
        add(jump_node(hash::mix64(k + a)));
      }
      break;
    }
  }
  add_rest();
  return out;
}

}  // namespace divert

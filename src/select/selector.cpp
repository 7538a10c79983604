// IndexSelector: the selection policies (contract in divert/select/selector.hpp,
// hashes in divert/select/hash.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_set>

#include <fmt/format.h>

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

selector_error::selector_error(std::string value, const std::string& reason)
    : std::invalid_argument(fmt::format("selector: \"{}\": {}", value, reason)),
      value_(std::move(value)),
      reason_(reason) {}

namespace {

std::vector<SelectorNode> validated(std::vector<SelectorNode> nodes) {
  if (nodes.empty()) throw selector_error("", "at least one address is needed");
  if (nodes.size() > 0xFFFFFFFFu) throw selector_error("", "too many addresses");
  std::unordered_set<std::string_view> names;
  for (const auto& n : nodes) {
    if (!std::isfinite(n.weight) || !(n.weight > 0)) {
      throw selector_error(fmt::format("{}", n.weight),
                           fmt::format("weight of {} must be a finite number > 0", n.name));
    }
    if (!names.insert(n.name).second) throw selector_error(n.name, "address listed twice");
  }
  return nodes;
}

}  // namespace

IndexSelector::IndexSelector(std::vector<SelectorNode> nodes, PickPolicy policy)
    : nodes_(validated(std::move(nodes))), policy_(policy), state_(make_state(nodes_, policy)) {}

IndexSelector::State IndexSelector::make_state(const Nodes& nodes, PickPolicy policy) {
  switch (policy) {
    case PickPolicy::serial:
      return Serial(nodes);
    case PickPolicy::random:
      return Random(nodes);
    case PickPolicy::round_robin:
      return RoundRobin(nodes);
    case PickPolicy::ketama:
      return Ketama(nodes);
    case PickPolicy::rendezvous:
      return Rendezvous(nodes);
    case PickPolicy::jump_hash:
      return JumpHash(nodes);
  }
  throw selector_error("", fmt::format("unknown pick policy {}", static_cast<int>(policy)));
}

std::size_t IndexSelector::pick(std::string_view key) const noexcept {
  return std::visit([&](const auto& s) { return s.pick(nodes_, key); }, state_);
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
    return out.size() < n;  // false once every node is listed
  };
  std::visit([&](const auto& s) { s.candidates(nodes_, key, add); }, state_);
  for (std::size_t i = 0; i < n && out.size() < n; ++i) add(i);
  return out;
}

std::span<const std::uint32_t> IndexSelector::round_robin_cycle() const noexcept {
  if (const auto* rr = std::get_if<RoundRobin>(&state_)) return rr->cycle;
  return {};
}

std::size_t IndexSelector::ketama_points() const noexcept {
  const auto* k = std::get_if<Ketama>(&state_);
  return k ? k->ring_hashes.size() : 0;
}

std::size_t IndexSelector::jump_buckets() const noexcept {
  const auto* j = std::get_if<JumpHash>(&state_);
  return j ? static_cast<std::size_t>(j->bucket_end.back()) : 0;
}

// ---- serial ------------------------------------------------------------------

IndexSelector::Serial::Serial(const Nodes& nodes) : order(nodes.size()) {
  // g3's order: by weight, highest first; equal weights keep the configured order.
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&nodes](std::uint32_t a, std::uint32_t b) {
    return nodes[a].weight > nodes[b].weight;
  });
}

std::size_t IndexSelector::Serial::pick(const Nodes&, std::string_view) const noexcept {
  return order[0];
}

template <class Add>
void IndexSelector::Serial::candidates(const Nodes&, std::string_view, Add&& add) const {
  for (auto i : order) add(i);
}

// ---- random ------------------------------------------------------------------

IndexSelector::Random::Random(const Nodes& nodes) {
  // Vose's alias method.
  const std::size_t n = nodes.size();
  double total = 0;
  for (const auto& nd : nodes) total += nd.weight;
  std::vector<double> p(n);
  std::vector<std::uint32_t> small, large;
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = nodes[i].weight * static_cast<double>(n) / total;
    (p[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
  }
  alias_threshold.assign(n, std::uint64_t{1} << 32);
  alias.resize(n);
  std::iota(alias.begin(), alias.end(), 0u);
  while (!small.empty() && !large.empty()) {
    auto s = small.back();
    small.pop_back();
    auto l = large.back();
    alias_threshold[s] = static_cast<std::uint64_t>(std::llround(p[s] * 0x1.0p32));
    alias[s] = l;
    p[l] = (p[l] + p[s]) - 1.0;
    if (p[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers (rounding) keep threshold 2^32: always themselves.
}

std::size_t IndexSelector::Random::pick(const Nodes& nodes, std::string_view) const noexcept {
  std::uint64_t r = next_random();
  std::size_t i = static_cast<std::size_t>(((r >> 32) * nodes.size()) >> 32);
  return (r & 0xFFFFFFFFu) < alias_threshold[i] ? i : alias[i];
}

template <class Add>
void IndexSelector::Random::candidates(const Nodes& nodes, std::string_view, Add&& add) const {
  // Efraimidis–Spirakis: sort by ln(U)/w, descending.
  std::vector<std::pair<double, std::size_t>> keyed;
  keyed.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    keyed.emplace_back(std::log(random_unit()) / nodes[i].weight, i);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [k, i] : keyed) add(i);
}

// ---- round robin -------------------------------------------------------------

IndexSelector::RoundRobin::RoundRobin(const Nodes& nodes) {
  const std::size_t n = nodes.size();
  auto w = integer_weights(nodes, kMaxRoundRobinCycle);
  std::uint64_t total = std::accumulate(w.begin(), w.end(), std::uint64_t{0});
  std::vector<std::int64_t> current(n, 0);
  cycle.reserve(total);
  for (std::uint64_t step = 0; step < total; ++step) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < n; ++i) {
      current[i] += static_cast<std::int64_t>(w[i]);
      if (current[i] > current[best]) best = i;
    }
    current[best] -= static_cast<std::int64_t>(total);
    cycle.push_back(static_cast<std::uint32_t>(best));
  }
}

std::size_t IndexSelector::RoundRobin::next_position() const noexcept {
  // Wraps at the cycle length with a CAS instead of a division per pick.
  const std::uint64_t len = cycle.size();
  std::uint64_t c = counter.value.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    next = c + 1 == len ? 0 : c + 1;
  } while (!counter.value.compare_exchange_weak(c, next, std::memory_order_relaxed,
                                                std::memory_order_relaxed));
  return static_cast<std::size_t>(c);
}

std::size_t IndexSelector::RoundRobin::pick(const Nodes&, std::string_view) const noexcept {
  return cycle[next_position()];
}

template <class Add>
void IndexSelector::RoundRobin::candidates(const Nodes&, std::string_view, Add&& add) const {
  // One pick: the next node in the cycle, then the distinct nodes that follow it.
  auto c = next_position();
  const std::size_t len = cycle.size();
  for (std::size_t s = 0; s < len; ++s) {
    if (!add(cycle[(c + s) % len])) break;
  }
}

// ---- ketama ------------------------------------------------------------------

IndexSelector::Ketama::Ketama(const Nodes& nodes) {
  const std::size_t n = nodes.size();
  std::vector<std::uint64_t> counts(n);
  long double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    long double c = std::round(static_cast<long double>(nodes[i].weight) * kKetamaPointsPerWeight);
    total += std::max<long double>(1, c);
    if (total > kMaxKetamaPoints) {
      throw selector_error(nodes[i].name,
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
    std::uint32_t base = hash::ketama_base(nodes[i].name);
    std::uint32_t prev = 0;
    for (std::uint64_t j = 0; j < counts[i]; ++j) {
      prev = hash::ketama_next_point(base, prev);
      points.push_back({prev, static_cast<std::uint32_t>(i)});
    }
  }
  // Stable: of equal hashes the lowest node (then lowest j) stays, as in nginx.
  std::stable_sort(points.begin(), points.end(),
                   [](const Point& a, const Point& b) { return a.hash < b.hash; });
  ring_hashes.reserve(points.size());
  ring_nodes.reserve(points.size());
  for (const auto& pt : points) {
    if (!ring_hashes.empty() && ring_hashes.back() == pt.hash) continue;
    ring_hashes.push_back(pt.hash);
    ring_nodes.push_back(pt.node);
  }
  // Slot table: about one point per slot, at most 2^16 slots (256 KiB).
  unsigned bits = 4;
  while (bits < 16 && (std::size_t{1} << bits) < ring_hashes.size()) ++bits;
  ring_shift = 32 - bits;
  ring_slots.resize((std::size_t{1} << bits) + 1);
  std::size_t p = 0;
  for (std::size_t slot = 0; slot < (std::size_t{1} << bits); ++slot) {
    auto start = static_cast<std::uint64_t>(slot) << ring_shift;
    while (p < ring_hashes.size() && ring_hashes[p] < start) ++p;
    ring_slots[slot] = static_cast<std::uint32_t>(p);
  }
  ring_slots.back() = static_cast<std::uint32_t>(ring_hashes.size());
}

std::size_t IndexSelector::Ketama::point(std::uint32_t key_hash) const noexcept {
  // The slot of the hash's top bits bounds the search to a handful of points.
  std::uint32_t slot = key_hash >> ring_shift;
  auto first = ring_hashes.begin() + ring_slots[slot];
  auto last = ring_hashes.begin() + ring_slots[slot + 1];
  auto it = std::lower_bound(first, last, key_hash);
  std::size_t p = static_cast<std::size_t>(it - ring_hashes.begin());
  return p == ring_hashes.size() ? 0 : p;
}

std::size_t IndexSelector::Ketama::pick(const Nodes&, std::string_view key) const noexcept {
  return ring_nodes[point(hash::crc32(key))];
}

template <class Add>
void IndexSelector::Ketama::candidates(const Nodes&, std::string_view key, Add&& add) const {
  // nginx's retry walk: along the ring from the picked point.
  std::size_t p = point(hash::crc32(key));
  const std::size_t len = ring_hashes.size();
  for (std::size_t s = 0; s < len; ++s) {
    if (!add(ring_nodes[(p + s) % len])) break;
  }
}

// ---- rendezvous --------------------------------------------------------------

IndexSelector::Rendezvous::Rendezvous(const Nodes& nodes) {
  node_hashes.reserve(nodes.size());
  for (const auto& nd : nodes) node_hashes.push_back(hash::xxh3_64(nd.name));
}

std::size_t IndexSelector::Rendezvous::pick(const Nodes& nodes,
                                            std::string_view key) const noexcept {
  const auto key_hash = hash::xxh3_64(key);
  std::size_t best = 0;
  double best_score = -1.0;  // every score is > 0
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    double s =
        hash::rendezvous_score(nodes[i].weight, hash::rendezvous_unit(key_hash, node_hashes[i]));
    if (s > best_score) {
      best_score = s;
      best = i;
    }
  }
  return best;
}

template <class Add>
void IndexSelector::Rendezvous::candidates(const Nodes& nodes, std::string_view key,
                                           Add&& add) const {
  // By score, highest first.
  auto k = hash::xxh3_64(key);
  std::vector<std::pair<double, std::size_t>> scored;
  scored.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    scored.emplace_back(
        hash::rendezvous_score(nodes[i].weight, hash::rendezvous_unit(k, node_hashes[i])), i);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [s, i] : scored) add(i);
}

// ---- jump hash ---------------------------------------------------------------

IndexSelector::JumpHash::JumpHash(const Nodes& nodes) {
  const std::size_t n = nodes.size();
  bucket_end.reserve(n);
  std::uint64_t total = 0;
  std::uint64_t first = 0;
  bool uniform = true;
  for (std::size_t i = 0; i < n; ++i) {
    double b = std::round(nodes[i].weight * kJumpBucketsPerWeight);
    if (b > static_cast<double>(kMaxJumpBuckets) ||
        total + static_cast<std::uint64_t>(std::max(1.0, b)) > kMaxJumpBuckets) {
      throw selector_error(nodes[i].name,
                           fmt::format("jump hash would exceed {} buckets (weight × {} per "
                                       "node); lower the weights",
                                       kMaxJumpBuckets, kJumpBucketsPerWeight));
    }
    auto count = static_cast<std::uint64_t>(std::max(1.0, b));
    if (i == 0) first = count;
    uniform = uniform && count == first;
    total += count;
    bucket_end.push_back(total);
  }
  uniform_buckets = uniform ? first : 0;
}

std::size_t IndexSelector::JumpHash::node_of(std::uint64_t key_hash) const noexcept {
  auto buckets = static_cast<std::int32_t>(bucket_end.back());
  auto b = static_cast<std::uint64_t>(hash::jump_consistent_hash(key_hash, buckets));
  if (uniform_buckets != 0) return static_cast<std::size_t>(b / uniform_buckets);
  auto it = std::upper_bound(bucket_end.begin(), bucket_end.end(), b);
  return static_cast<std::size_t>(it - bucket_end.begin());
}

std::size_t IndexSelector::JumpHash::pick(const Nodes&, std::string_view key) const noexcept {
  return node_of(hash::xxh3_64(key));
}

template <class Add>
void IndexSelector::JumpHash::candidates(const Nodes& nodes, std::string_view key,
                                         Add&& add) const {
  // The pick, then jump(mix64(k + a), B) for a = 1, 2, … (at most 4n tries).
  auto k = hash::xxh3_64(key);
  if (!add(node_of(k))) return;
  for (std::uint64_t a = 1; a <= 4 * static_cast<std::uint64_t>(nodes.size()); ++a) {
    if (!add(node_of(hash::mix64(k + a)))) return;
  }
}

}  // namespace divert

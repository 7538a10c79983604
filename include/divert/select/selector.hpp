// divert/select/selector.hpp — choosing the next proxy among weighted values:
// IndexSelector (the policy engine, over node names and weights) and Selector<T>
// (the same over a vector of values, e.g. UpstreamAddr).
//
// A selector is built once and never changes. pick(key) returns one node;
// candidates(key) returns every node in failover order (first = what pick would
// return for the hash policies). The key matters only for ketama, rendezvous and
// jump_hash (build it with make_pick_key, divert/select/pick_key.hpp); the hashes
// are specified, with test vectors, in divert/select/hash.hpp.
//
// Policies:
//  random       weighted random, Vose alias method: O(1), one 64-bit draw from a
//               thread_local SplitMix64 generator seeded from std::random_device.
//               candidates: a weighted random order without replacement
//               (Efraimidis–Spirakis: sort by ln(U)/w, descending).
//  serial       the node of highest weight, the first configured of equal ones
//               (g3's order: its node list sorted by weight, highest first, stable);
//               candidates: that order. Equal weights: node 0, then configured order.
//  round_robin  smooth weighted round robin (nginx): weights are made integers
//               (kept as is when they are all integers, else scaled by 1000 and
//               rounded, at least 1), divided by their GCD, and, if their sum exceeds
//               kMaxRoundRobinCycle, scaled down proportionally (at least 1 each).
//               One full cycle of nginx's sequence is precomputed ({5,1,1} gives
//               a a b a c a a) and a shared atomic position (advanced with a CAS,
//               wrapping at the cycle length) indexes it, so pick() is lock-free and
//               the cycle is exact across threads. candidates() counts
//               as one pick: the next node in the cycle, then the distinct nodes
//               that follow it in the cycle.
//  ketama       nginx `hash $key consistent`: round(weight × 160) points per node
//               (at least 1; at most kMaxKetamaPoints in total), node names hashed
//               as nginx does (hash.hpp §5), key hash crc32(key), first point ≥ hash
//               (found through a table of the hash's top bits, then a short search).
//               Same names + integer weights + key ⇒ same pick as nginx (checked
//               live against Debian's nginx in tests/select). Differences: nginx
//               falls back to round robin for an empty key or a single server; we
//               hash "" like any key. 160 points per unit of weight leave a single
//               ring's shares a few points off the weight shares (about ±1.6 points
//               for a node with 40 % of the weight; unbiased across rings).
//               candidates: walk the ring from the picked point, skipping nodes
//               already listed (nginx's retry walk); nodes with no point left (all
//               of theirs dropped as duplicates) follow in configured order.
//  rendezvous   weighted HRW (hash.hpp §6): O(n) per pick, one mix and one log per
//               node. candidates: by score, highest first. Removing a node moves only
//               its own keys.
//  jump_hash    jump consistent hash of xxh3_64(key) over virtual buckets: node i owns
//               max(1, round(weight × kJumpBucketsPerWeight)) consecutive buckets, in
//               configured order. The fixed scale keeps keys in place when a node is
//               appended or the last node is removed (the only changes jump hash
//               supports without remapping). candidates: the pick, then nodes for
//               jump(mix64(k + a), B) for a = 1, 2, … (at most 4n tries), then any
//               remaining in configured order.
//
// Errors (selector_error: the offending value and what is wrong with it): no
// nodes, a weight that is not finite and > 0, two nodes with the same name, a
// ring or bucket table above its cap. The selector knows no configuration keys:
// whoever builds it from configuration names the key (the connector's builder
// rethrows as config_error with key proxy_addr).
//
// Thread-safety: all const members may be called concurrently from any thread.
// pick() never allocates and takes no lock (round_robin's CAS may retry under
// contention; the others are wait-free); candidates() allocates its result.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "divert/export.hpp"
#include "divert/select/policy.hpp"

namespace divert {

// One selectable node: its name (what ketama and rendezvous hash; for proxies the
// canonical "host:port") and its weight (finite, > 0).
struct SelectorNode {
  std::string name;
  double weight = 1.0;
};

// Thrown when a selector cannot be built from its nodes. value() is the offending
// node name or weight as text ("" for an empty list), reason() what is wrong;
// what() is "selector: \"VALUE\": REASON".
class DIVERT_EXPORT selector_error : public std::invalid_argument {
 public:
  selector_error(std::string value, const std::string& reason);
  const std::string& value() const noexcept { return value_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string value_;
  std::string reason_;
};

class DIVERT_EXPORT IndexSelector {
 public:
  static constexpr std::size_t kMaxRoundRobinCycle = 65536;
  static constexpr std::uint32_t kKetamaPointsPerWeight = 160;
  static constexpr std::size_t kMaxKetamaPoints = std::size_t{1} << 22;
  static constexpr std::uint32_t kJumpBucketsPerWeight = 10;
  static constexpr std::size_t kMaxJumpBuckets = std::size_t{1} << 24;

  // Throws selector_error (see Errors above).
  IndexSelector(std::vector<SelectorNode> nodes, PickPolicy policy);

  // Index of the chosen node, in [0, size()).
  std::size_t pick(std::string_view key) const noexcept;
  // Every index once, in failover order.
  std::vector<std::size_t> candidates(std::string_view key) const;

  std::size_t size() const noexcept { return nodes_.size(); }
  PickPolicy policy() const noexcept { return policy_; }
  const SelectorNode& node(std::size_t i) const { return nodes_.at(i); }

  // Introspection (tests, docs): the precomputed round-robin cycle (node indexes),
  // the ketama ring size after duplicate removal, the jump bucket count (each
  // empty or 0 under the other policies).
  std::span<const std::uint32_t> round_robin_cycle() const noexcept;
  std::size_t ketama_points() const noexcept;
  std::size_t jump_buckets() const noexcept;

 private:
  using Nodes = std::vector<SelectorNode>;
  // One state type per policy: what it precomputes at construction, its pick()
  // and the failover order its candidates() adds (`add` skips repeats; nodes
  // not added follow in configured order). Defined in src/select/selector.cpp.
  struct Serial {
    explicit Serial(const Nodes& nodes);
    std::size_t pick(const Nodes& nodes, std::string_view key) const noexcept;
    template <class Add>
    void candidates(const Nodes& nodes, std::string_view key, Add&& add) const;
    std::vector<std::uint32_t> order;  // node indexes by weight, highest first, stable
  };
  struct Random {
    explicit Random(const Nodes& nodes);
    std::size_t pick(const Nodes& nodes, std::string_view key) const noexcept;
    template <class Add>
    void candidates(const Nodes& nodes, std::string_view key, Add&& add) const;
    // Vose alias tables (threshold scaled to 2^32; 2^32 means "always this one").
    std::vector<std::uint64_t> alias_threshold;
    std::vector<std::uint32_t> alias;
  };
  struct RoundRobin {
    // std::atomic is neither copyable nor movable; copies start from the current count.
    struct Counter {
      mutable std::atomic<std::uint64_t> value{0};
      Counter() = default;
      Counter(const Counter& o) noexcept : value(o.value.load(std::memory_order_relaxed)) {}
      Counter& operator=(const Counter& o) noexcept {
        value.store(o.value.load(std::memory_order_relaxed), std::memory_order_relaxed);
        return *this;
      }
    };
    explicit RoundRobin(const Nodes& nodes);
    std::size_t pick(const Nodes& nodes, std::string_view key) const noexcept;
    template <class Add>
    void candidates(const Nodes& nodes, std::string_view key, Add&& add) const;
    std::size_t next_position() const noexcept;
    std::vector<std::uint32_t> cycle;  // one full cycle of node indexes
    Counter counter;                   // position in `cycle`
  };
  struct Ketama {
    explicit Ketama(const Nodes& nodes);
    std::size_t pick(const Nodes& nodes, std::string_view key) const noexcept;
    template <class Add>
    void candidates(const Nodes& nodes, std::string_view key, Add&& add) const;
    std::size_t point(std::uint32_t key_hash) const noexcept;
    // Sorted point hashes and their nodes (parallel arrays).
    std::vector<std::uint32_t> ring_hashes;
    std::vector<std::uint32_t> ring_nodes;
    // Lookup: ring_slots[s] = first point with hash >= s << ring_shift.
    std::vector<std::uint32_t> ring_slots;
    unsigned ring_shift = 32;
  };
  struct Rendezvous {
    explicit Rendezvous(const Nodes& nodes);
    std::size_t pick(const Nodes& nodes, std::string_view key) const noexcept;
    template <class Add>
    void candidates(const Nodes& nodes, std::string_view key, Add&& add) const;
    std::vector<std::uint64_t> node_hashes;  // xxh3_64 of each name
  };
  struct JumpHash {
    explicit JumpHash(const Nodes& nodes);
    std::size_t pick(const Nodes& nodes, std::string_view key) const noexcept;
    template <class Add>
    void candidates(const Nodes& nodes, std::string_view key, Add&& add) const;
    std::size_t node_of(std::uint64_t key_hash) const noexcept;
    // bucket_end[i] = first bucket after node i's; uniform_buckets = buckets per
    // node when every node has the same count (fast path), else 0.
    std::vector<std::uint64_t> bucket_end;
    std::uint64_t uniform_buckets = 0;
  };
  using State = std::variant<Serial, Random, RoundRobin, Ketama, Rendezvous, JumpHash>;
  static State make_state(const Nodes& nodes, PickPolicy policy);

  Nodes nodes_;
  PickPolicy policy_;
  State state_;
};

namespace detail {
template <class T>
concept HasToStringMember = requires(const T& t) {
  { t.to_string() } -> std::convertible_to<std::string>;
};
}  // namespace detail

// A value with its selection weight.
template <class T>
struct Weighted {
  T value;
  double weight = 1.0;
};

// IndexSelector over values of T. Node names come from `name_of`, or by default
// from t.to_string() or, for string-like T, the text itself.
template <class T>
class Selector {
 public:
  using NameOf = std::function<std::string(const T&)>;

  // Throw selector_error as IndexSelector does.
  Selector(std::vector<Weighted<T>> items,
           PickPolicy policy) requires(detail::HasToStringMember<T> ||
                                       std::convertible_to<const T&, std::string_view>)
      : Selector(std::move(items), policy, default_name) {}

  Selector(std::vector<Weighted<T>> items, PickPolicy policy, const NameOf& name_of)
      : values_(take_values(items)), index_(make_nodes(items, name_of), policy) {}

  const T& pick(std::string_view key) const noexcept { return values_[index_.pick(key)]; }
  std::size_t pick_index(std::string_view key) const noexcept { return index_.pick(key); }

  // Every value once, in failover order (see the policy notes above).
  std::vector<std::reference_wrapper<const T>> candidates(std::string_view key) const {
    std::vector<std::reference_wrapper<const T>> out;
    auto order = index_.candidates(key);
    out.reserve(order.size());
    for (auto i : order) out.emplace_back(values_[i]);
    return out;
  }
  std::vector<std::size_t> candidate_indices(std::string_view key) const {
    return index_.candidates(key);
  }

  std::size_t size() const noexcept { return values_.size(); }
  const T& operator[](std::size_t i) const { return values_.at(i); }
  double weight(std::size_t i) const { return index_.node(i).weight; }
  PickPolicy policy() const noexcept { return index_.policy(); }
  const IndexSelector& indexes() const noexcept { return index_; }

 private:
  static std::string default_name(const T& t) {
    if constexpr (detail::HasToStringMember<T>) {
      return t.to_string();
    } else {
      return std::string(std::string_view(t));
    }
  }
  static std::vector<T> take_values(const std::vector<Weighted<T>>& items) {
    std::vector<T> v;
    v.reserve(items.size());
    for (const auto& it : items) v.push_back(it.value);
    return v;
  }
  static std::vector<SelectorNode> make_nodes(const std::vector<Weighted<T>>& items,
                                              const NameOf& name_of) {
    std::vector<SelectorNode> nodes;
    nodes.reserve(items.size());
    for (const auto& it : items) nodes.push_back({name_of(it.value), it.weight});
    return nodes;
  }

  std::vector<T> values_;
  IndexSelector index_;
};

}  // namespace divert

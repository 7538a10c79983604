// divert/select/policy.hpp — how a Selector chooses the next proxy (PickPolicy)
// and the parser for g3proxy divert_tcp's `proxy_addr_pick_policy` names.
//
// | policy      | names accepted (case-insensitive)      | key used | weights |
// |-------------|----------------------------------------|----------|---------|
// | random      | random                                 | no       | yes     |
// | serial      | serial, sequence                       | no       | order   |
// | round_robin | round_robin, roundrobin, rr            | no       | yes     |
// | ketama      | ketama                                 | yes      | yes     |
// | rendezvous  | rendezvous                             | yes      | yes     |
// | jump_hash   | jump_hash, jumphash, jump              | yes      | yes     |
// Default: random. serial uses the weights only to order the addresses
// (highest first, as g3 does). Details of each policy: divert/select/selector.hpp.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string_view>

#include "divert/export.hpp"

namespace divert {

enum class PickPolicy {
  random,       // weighted random (alias method)
  serial,       // highest weight first, ties in configured order; failover walks on
  round_robin,  // smooth weighted round robin (nginx)
  ketama,       // nginx-compatible consistent hash ring
  rendezvous,   // weighted highest-random-weight
  jump_hash,    // Lamping–Veach jump consistent hash over weighted virtual buckets
};

inline constexpr PickPolicy kDefaultPickPolicy = PickPolicy::random;

// The policy for a name or alias above, or nullopt.
DIVERT_EXPORT std::optional<PickPolicy> try_parse_pick_policy(std::string_view name) noexcept;

// Same; throws config_error(key, name, reason listing the accepted names).
DIVERT_EXPORT PickPolicy parse_pick_policy(std::string_view name,
                                           std::string_view key = "proxy_addr_pick_policy");

// Canonical name: "random", "serial", "round_robin", "ketama", "rendezvous", "jump_hash".
DIVERT_EXPORT std::string_view to_string(PickPolicy policy) noexcept;

}  // namespace divert

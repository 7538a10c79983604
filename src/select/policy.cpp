// PickPolicy names (table in divert/select/policy.hpp).
#include "divert/select/policy.hpp"

#include <array>
#include <string>
#include <utility>

#include "divert/error.hpp"

namespace divert {

namespace {

constexpr std::array<std::pair<std::string_view, PickPolicy>, 11> kNames{{
    {"random", PickPolicy::random},
    {"serial", PickPolicy::serial},
    {"sequence", PickPolicy::serial},
    {"round_robin", PickPolicy::round_robin},
    {"roundrobin", PickPolicy::round_robin},
    {"rr", PickPolicy::round_robin},
    {"ketama", PickPolicy::ketama},
    {"rendezvous", PickPolicy::rendezvous},
    {"jump_hash", PickPolicy::jump_hash},
    {"jumphash", PickPolicy::jump_hash},
    {"jump", PickPolicy::jump_hash},
}};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<PickPolicy> try_parse_pick_policy(std::string_view name) noexcept {
  for (const auto& [n, p] : kNames) {
    if (iequals(name, n)) return p;
  }
  return std::nullopt;
}

PickPolicy parse_pick_policy(std::string_view name, std::string_view key) {
  if (auto p = try_parse_pick_policy(name)) return *p;
  throw config_error(std::string(key), std::string(name),
                     "unknown pick policy; expected random, serial (sequence), round_robin "
                     "(roundrobin, rr), ketama, rendezvous or jump_hash (jumphash, jump)");
}

std::string_view to_string(PickPolicy policy) noexcept {
  switch (policy) {
    case PickPolicy::random:
      return "random";
    case PickPolicy::serial:
      return "serial";
    case PickPolicy::round_robin:
      return "round_robin";
    case PickPolicy::ketama:
      return "ketama";
    case PickPolicy::rendezvous:
      return "rendezvous";
    case PickPolicy::jump_hash:
      return "jump_hash";
  }
  return "unknown";
}

}  // namespace divert

// divert/select/upstream_selector.hpp — a Selector over next-proxy addresses, as
// the connector uses it: nodes named by UpstreamAddr::to_string() ("host:port",
// IPv6 bracketed), which is also the name nginx's ketama hashes for
// `server host:port` lines written the same way.
// Thread-safety: as Selector (const members are safe concurrently).
#pragma once

#include <vector>

#include "divert/select/selector.hpp"
#include "divert/upstream.hpp"

namespace divert {

using UpstreamSelector = Selector<UpstreamAddr>;

// Throws selector_error as IndexSelector does (e.g. two addresses with the same
// canonical form: value() is that form).
inline UpstreamSelector make_upstream_selector(const std::vector<WeightedUpstreamAddr>& addrs,
                                               PickPolicy policy) {
  std::vector<Weighted<UpstreamAddr>> items;
  items.reserve(addrs.size());
  for (const auto& a : addrs) items.push_back({a.addr, a.weight});
  return UpstreamSelector(std::move(items), policy);
}

}  // namespace divert

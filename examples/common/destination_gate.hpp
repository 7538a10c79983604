// examples/common/destination_gate.hpp — the forward proxy's destination
// check before it diverts a request: divert::net::DestinationPolicy (safe
// defaults, --allow/--deny, the loop guard over its own listen address and its
// next proxies) applied to the target, names resolved here first.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "divert/connector.hpp"
#include "divert/net/destination_policy.hpp"

namespace divert::examples {

class Cli;

// Why a request is refused before anything is connected: the HTTP status to
// answer and a line for the log.
struct Refusal {
  int status = 403;  // 403 denied; 502 the name does not resolve here; 504 resolving timed out
  std::string reason;
};

struct DestinationGate {
  net::DestinationPolicy policy;
  // Names that must not be targets (next proxies given by name), on their port.
  std::vector<UpstreamAddr> guarded_names;
  std::shared_ptr<net::Resolver> resolver = net::system_resolver();
  std::chrono::milliseconds resolve_timeout{2000};
  // A name that does not resolve here (or not in time) is refused (502/504)
  // unless this is set: then it goes to the next proxy, which resolves it and
  // must apply its own destination policy (split-horizon DNS). Refusing is the
  // default because a name can be made to fail here and resolve to a denied
  // address there (an attacker's DNS server answering slowly, then quickly).
  bool pass_unresolved = false;

  // nullopt: connect. Runs on the calling coroutine's executor (one thread).
  // The gate must outlive the returned awaitable.
  asio::awaitable<std::optional<Refusal>> check(UpstreamAddr target) const;
};

// Declares --allow CIDR, --deny CIDR (repeatable), --resolve-timeout DURATION
// and --pass-unresolved.
Cli& destination_cli_options(Cli& cli);
// Builds the gate: the options above, plus the loop guard over `listen` (a
// wildcard listen address guards its port on loopback and on every interface
// address) and over every next proxy of `connector` (IP addresses as given,
// names by name and by their addresses resolved once now; one on loopback is
// guarded like a wildcard listener, on every address of this host). Throws usage_error
// or config_error naming a bad value.
DestinationGate make_destination_gate(const Cli& cli, const asio::ip::tcp::endpoint& listen,
                                      const DivertTcpConnector& connector);
// The same from a connector's configuration (a reload rebuilds the gate from the new one).
DestinationGate make_destination_gate(const Cli& cli, const asio::ip::tcp::endpoint& listen,
                                      const ConnectorConfig& connector);

}  // namespace divert::examples

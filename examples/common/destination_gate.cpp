#include "common/destination_gate.hpp"

#include <asio/io_context.hpp>

#include "common/cli.hpp"
#include "divert/config_value.hpp"

namespace divert::examples {

asio::awaitable<std::optional<Refusal>> DestinationGate::check(UpstreamAddr target) const {
  for (const auto& name : guarded_names) {
    if (name == target)
      co_return Refusal{
          403, "destination " + target.to_string() + " " +
                   std::string(net::to_string(net::DestinationVerdict::denied_loop_guard))};
  }
  auto c = co_await net::check_destination(policy, target, resolver, resolve_timeout);
  using O = net::DestinationCheck::Outcome;
  if (c.outcome == O::allowed) co_return std::nullopt;
  if (c.outcome == O::denied) {
    co_return Refusal{403, "destination " + target.to_string() + " (" +
                               format_ip_address(c.denial->address) + ") " +
                               std::string(net::to_string(c.denial->verdict))};
  }
  if (pass_unresolved) co_return std::nullopt;
  const bool timed_out = c.error == std::errc::timed_out;
  co_return Refusal{timed_out ? 504 : 502, "destination " + target.to_string() +
                                               " does not resolve here: " + c.error.message()};
}

Cli& destination_cli_options(Cli& cli) {
  return cli
      .option(
          "allow", "CIDR",
          "allow destinations in this network, e.g. 127.0.0.0/8 for local origins (default: all "
          "but loopback, link-local, unspecified and multicast)",
          true)
      .option("deny", "CIDR", "deny destinations in this network (the most specific rule wins)",
              true)
      .option("resolve-timeout", "DURATION",
              "time to resolve a target name here for the check (default 2s, above 0)")
      .flag("pass-unresolved",
            "pass names that do not resolve here to the next proxy (default: 502)");
}

DestinationGate make_destination_gate(const Cli& cli, const asio::ip::tcp::endpoint& listen,
                                      const DivertTcpConnector& connector) {
  return make_destination_gate(cli, listen, connector.config());
}

DestinationGate make_destination_gate(const Cli& cli, const asio::ip::tcp::endpoint& listen,
                                      const ConnectorConfig& connector) {
  DestinationGate gate;
  for (const auto& t : cli.all("allow")) gate.policy.allow(net::Cidr::parse(t, "--allow"));
  for (const auto& t : cli.all("deny")) gate.policy.deny(net::Cidr::parse(t, "--deny"));
  if (cli.has("resolve-timeout")) {
    gate.resolve_timeout = parse_duration("--resolve-timeout", cli.get("resolve-timeout"));
    if (gate.resolve_timeout.count() <= 0) throw usage_error("--resolve-timeout must be above 0");
  }
  gate.pass_unresolved = cli.has("pass-unresolved");
  if (connector.resolver) gate.resolver = connector.resolver;

  // `port` on every address of this host: loopback, unspecified, interfaces.
  const auto interfaces = net::interface_addresses();
  auto guard_this_host = [&](std::uint16_t port) {
    gate.policy.guard(asio::ip::address_v4::any(), port);
    for (const auto& a : interfaces) gate.policy.guard(a, port);
  };
  gate.policy.guard(listen.address(), listen.port());
  if (listen.address().is_unspecified()) guard_this_host(listen.port());
  // A next proxy on this host (a loopback address) may listen on all of its
  // addresses (127.0.0.2 or ::1 reach a wildcard listener): guarded on each.
  auto guard_next_proxy = [&](const asio::ip::address& a, std::uint16_t port) {
    gate.policy.guard(a, port);
    if (net::unmap_v4(a).is_loopback()) guard_this_host(port);
  };
  asio::io_context io;
  asio::ip::tcp::resolver names(io);
  for (const auto& np : connector.proxy_addr) {
    if (np.addr.is_ip()) {
      guard_next_proxy(np.addr.ip(), np.addr.port());
      continue;
    }
    gate.guarded_names.push_back(np.addr);
    divert::error_code ec;  // a name that does not resolve now is guarded by name only
    for (const auto& e : names.resolve(np.addr.host(), "", ec))
      guard_next_proxy(e.endpoint().address(), np.addr.port());
  }
  return gate;
}

}  // namespace divert::examples

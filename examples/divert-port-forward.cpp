// divert-port-forward — diverts every accepted connection to one fixed
// upstream through the next-proxy list (tcp connect), then relays. --config
// FILE reads a g3proxy divert_tcp escaper block; SIGHUP reads it again and
// reconfigures in place. StatsD metrics on stderr at exit.
#include <sys/socket.h>

#include <cerrno>
#include <iostream>

#include "common/cli.hpp"
#include "common/config_file.hpp"
#include "common/metrics_http.hpp"
#include "common/server.hpp"
#include "divert/connector.hpp"

using namespace divert;
using namespace divert::examples;
using asio::ip::tcp;

namespace {

// Connects, then hands both sockets to a detached relay: an open connection
// keeps one relay object, not this coroutine's frame.
asio::awaitable<void> handle(Accepted conn, const DivertTcpConnector& connector,
                             const UpstreamAddr& upstream, Server::OpenConnection open) {
  tcp::socket client = std::move(conn.socket);
  // TCP_NODELAY is already on: inherited from the listening socket (Server).
  divert::error_code ec;
  Task task{.client = conn.peer, .server = conn.local, .upstream = upstream};
  // Bytes the client sent already go in the header's write (one segment to
  // the next proxy instead of two); nothing is waited for (MSG_DONTWAIT: no
  // ioctl to make the socket non-blocking first).
  char first[4096];
  const ssize_t n = ::recv(client.native_handle(), first, sizeof first, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) co_return;
  if (n > 0) task.initial_data.assign(first, static_cast<std::size_t>(n));
  auto stream = co_await connector.tcp_connect(task, ec);
  if (ec) co_return;     // client closed: nothing else to tell it on a raw port
  RelayOptions options;  // what connector.relay() applies
  options.speed_limit = connector.speed_limit();
  options.metrics = &connector.metrics();
  async_relay(std::move(client), std::move(stream), options,
              [open = std::move(open)](const RelayResult&) {});
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli("divert-port-forward",
          "Diverts every accepted connection to --upstream through the next proxies\n"
          "(PROXY v2 header with TLV 0xE0 = upstream), then relays bytes.");
  cli.option("listen", "HOST:PORT", "address to listen on (default 127.0.0.1:8081)")
      .option("upstream", "HOST:PORT", "where the next proxy should connect (required)")
      .option("next-proxy", "ADDR[,WEIGHT]", "next proxy (default port 3128)", true)
      .option("pick-policy", "NAME", "random, serial, round_robin, ketama, rendezvous, jump_hash")
      .option("set", "KEY=VALUE",
              "any connector key in g3proxy's divert_tcp syntax, e.g. "
              "next_proxy_status_reply=true (a client whose upstream the next proxy could not "
              "reach is closed before any byte is relayed)",
              true);
  server_cli_options(cli);
  metrics_cli_option(cli);
  config_cli_options(cli);
  try {
    if (!cli.parse(argc, argv)) return 0;
    if (!cli.has("upstream")) throw usage_error("--upstream HOST:PORT is required");
    auto upstream = UpstreamAddr::parse(cli.get("upstream"), 0, "--upstream");
    // Defaults, then the --config file, then the flags; again on each SIGHUP.
    ConnectorSettings settings(cli, [](DivertTcpConnector::Builder& b) {
      b.name("divert-port-forward").resolver(net::system_resolver());
    });
    auto source = settings.read();
    auto connector = source.builder.build();
    ConnectorReloader reloader(settings, connector, source);
    HealthCheckThread health_checks(connector);  // key health_check
    ServerOptions so;
    so.name = "divert-port-forward";
    so.listen = parse_listen(cli.get("listen", "127.0.0.1:8081"));
    apply_server_options(cli, so);
    so.on_reload = [&] { std::cerr << "divert-port-forward: " << reloader.reload() << "\n"; };
    Server server(so, [&](Accepted a) {
      return handle(std::move(a), connector, upstream, server.keep_open());
    });
    server.bind();
    auto metrics_http = start_metrics_http(
        cli, [&connector] { return format_prometheus(connector.metrics_snapshot()); });
    std::cerr << "divert-port-forward: listening on " << server.local_endpoint() << "\n";
    if (metrics_http) {
      std::cerr << "divert-port-forward: metrics on http://" << metrics_http->local_endpoint()
                << "/metrics\n";
    }
    server.run();
    std::cerr << format_statsd(connector.metrics_snapshot(), "divert");  // metrics at exit
    return 0;
  } catch (const usage_error& e) {
    std::cerr << "divert-port-forward: " << e.what() << "\ntry --help\n";
    return 2;
  } catch (const config_error& e) {
    std::cerr << "divert-port-forward: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "divert-port-forward: " << e.what() << "\n";
    return 1;
  }
}

// divert-forward-proxy — an HTTP proxy that diverts every request through a
// next proxy with divert: CONNECT -> tcp connect, http:// -> http forward,
// https:// -> https forward (TLS to the origin on our side).
#include <iostream>
#include <map>

#include "common/auth.hpp"
#include "common/cli.hpp"
#include "common/destination_gate.hpp"
#include "common/http_request.hpp"
#include "common/server.hpp"
#include "divert/connector.hpp"

using namespace divert;
using namespace divert::examples;
using asio::ip::tcp;

namespace {

struct Config {
  std::optional<DivertTcpConnector> connector;
  ProxyUsers users;
  std::unique_ptr<asio::ssl::context> tls;
  std::chrono::milliseconds head_timeout{30000};
  std::chrono::milliseconds response_timeout{60000};
  DestinationGate destinations;                     // refuses targets before connecting (403)
  std::chrono::milliseconds idle_timeout{300'000};  // tunnels: no byte either way (0: never)
};

asio::awaitable<void> reply(tcp::socket& s, int status, std::string_view reason,
                            std::string_view extra_headers = {}) {
  std::string body = std::to_string(status) + " " + std::string(reason) + "\n";
  std::string msg = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" + body;
  co_await asio::async_write(s, asio::buffer(msg), asio::experimental::as_tuple(asio::use_awaitable));
  std::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
}

const char* reason_for(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
  }
  return "Error";
}

int status_for(const std::error_code& ec) {
  if (ec == asio::error::timed_out || ec == std::errc::timed_out || ec == errc::tls_handshake_timeout)
    return 504;
  return 502;
}

// Cancels a pending read on `socket` if it has not finished within `timeout`.
// The timer's handler may run after the owner is gone (a completion already
// queued when cancel() is called): it touches only shared state, and the
// socket only while the guarded read is still pending (one thread per
// connection, so no atomics are needed).
class ReadDeadline {
 public:
  ReadDeadline(tcp::socket::lowest_layer_type& socket, std::chrono::milliseconds timeout)
      : timer_(socket.get_executor(), timeout) {
    timer_.async_wait([state = state_, sock = &socket](std::error_code ec) {
      if (!ec && !state->done) {
        state->fired = true;
        sock->cancel(ec);
      }
    });
  }
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;
  ~ReadDeadline() { finish(); }
  // The guarded read is over: the deadline no longer applies.
  void finish() {
    state_->done = true;
    timer_.cancel();
  }
  bool fired() const { return state_->fired; }

 private:
  struct State {
    bool done = false;
    bool fired = false;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  asio::steady_timer timer_;
};

// Reads the request head under a deadline; returns false after answering an error.
asio::awaitable<bool> read_head(tcp::socket& s, std::string& buf, RequestHead& head,
                                std::size_t& head_len, std::chrono::milliseconds timeout) {
  ReadDeadline deadline(s, timeout);
  char chunk[4096];
  for (;;) {
    auto r = parse_request_head(buf, head);
    if (r.status == ParseResult::Status::complete) {
      head_len = r.head_length;
      co_return true;
    }
    if (r.status == ParseResult::Status::error) {
      deadline.finish();
      co_await reply(s, r.http_status, reason_for(r.http_status));
      co_return false;
    }
    auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), asio::experimental::as_tuple(asio::use_awaitable));
    if (ec) co_return false;
    buf.append(chunk, n);
  }
}

// For forwards, the next proxy closes without a byte when it cannot reach the
// upstream (PROXY v2 has no reply): wait for the first response bytes so the
// client gets a 502/504 instead of an empty reply. Returns false after answering.
// The bytes pass outside relay(), so they are counted here (traffic.in).
template <class Stream>
asio::awaitable<bool> first_response(tcp::socket& client, Stream& stream,
                                     std::chrono::milliseconds timeout,
                                     const DivertTcpConnector& connector) {
  char buf[16 * 1024];
  ReadDeadline deadline(stream.lowest_layer(), timeout);
  auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
  deadline.finish();
  if (n == 0) {
    int status = deadline.fired() ? 504 : 502;
    co_await reply(client, status, reason_for(status));
    co_return false;
  }
  connector.metrics().add(MetricsCounter::traffic_in_bytes, n);
  auto [wec, w] = co_await asio::async_write(client, asio::buffer(buf, n), asio::experimental::as_tuple(asio::use_awaitable));
  co_return !wec;
}

asio::awaitable<void> handle(Accepted conn, Config& cfg) {
  tcp::socket& client = conn.socket;
  const tcp::endpoint peer = conn.peer, local = conn.local;
  std::error_code ec;
  std::string buf;
  RequestHead head;
  std::size_t head_len = 0;
  if (!co_await read_head(client, buf, head, head_len, cfg.head_timeout)) co_return;

  std::optional<std::string> username;
  if (!cfg.users.empty()) {
    username = cfg.users.authenticate(head.header("Proxy-Authorization"));
    if (!username) {
      co_await reply(client, 407, reason_for(407), "Proxy-Authenticate: Basic realm=\"divert\"\r\n");
      co_return;
    }
  }
  auto up = UpstreamAddr::try_parse(head.authority(), 0);
  if (!up) {
    co_await reply(client, 400, reason_for(400));
    co_return;
  }
  Task task{.client = peer, .server = local, .upstream = *up.addr, .username = username};
  std::string rest = buf.substr(head_len);
  auto& connector = *cfg.connector;
  if (auto refused = co_await cfg.destinations.check(*up.addr)) {
    connector.config().shared_logger.logf(LogLevel::info, "", "refused: {}", refused->reason);
    co_await reply(client, refused->status, reason_for(refused->status));
    co_return;
  }
  const RelayOptions tunnel{.idle_timeout = cfg.idle_timeout};

  if (head.kind == ProxyRequestKind::connect) {
    task.initial_data = std::move(rest);
    auto stream = co_await connector.tcp_connect(task, ec);
    if (ec) {
      co_await reply(client, status_for(ec), reason_for(status_for(ec)));
      co_return;
    }
    std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
    auto [wec, n] = co_await asio::async_write(client, asio::buffer(ok), asio::experimental::as_tuple(asio::use_awaitable));
    if (wec) co_return;
    co_await connector.relay(client, stream, tunnel);
  } else if (head.kind == ProxyRequestKind::http_forward) {
    task.initial_data = head.origin_form_request() + rest;
    auto stream = co_await connector.http_forward(task, ec);
    if (ec) {
      co_await reply(client, status_for(ec), reason_for(status_for(ec)));
      co_return;
    }
    if (!co_await first_response(client, stream, cfg.response_timeout, connector)) co_return;
    co_await connector.relay(client, stream, tunnel);
  } else {
    if (!cfg.tls) {
      co_await reply(client, 501, reason_for(501));
      co_return;
    }
    auto stream = co_await connector.https_forward(task, head.host, *cfg.tls, ec);
    if (ec) {
      co_await reply(client, status_for(ec), reason_for(status_for(ec)));
      co_return;
    }
    std::string req = head.origin_form_request() + rest;
    auto [wec, n] = co_await asio::async_write(stream, asio::buffer(req), asio::experimental::as_tuple(asio::use_awaitable));
    connector.metrics().add(MetricsCounter::traffic_out_bytes, n);  // written outside relay()
    if (wec) {
      co_await reply(client, 502, reason_for(502));
      co_return;
    }
    if (!co_await first_response(client, stream, cfg.response_timeout, connector)) co_return;
    co_await connector.relay(client, stream, tunnel);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli("divert-forward-proxy",
          "An HTTP forward proxy that diverts every request through a next proxy with a\n"
          "PROXY v2 header (divert). CONNECT -> tcp connect, http:// -> http forward,\n"
          "https:// -> https forward (TLS to the origin on this side).");
  cli.option("listen", "HOST:PORT", "address to listen on (default 127.0.0.1:8080)")
      .option("next-proxy", "ADDR[,WEIGHT]", "next proxy (default port 3128)", true)
      .option("pick-policy", "NAME", "random, serial, round_robin, ketama, rendezvous, jump_hash")
      .option("user", "NAME:PASSWORD", "require Basic proxy auth with these users", true)
      .option("ca-file", "FILE", "CA certificates trusted for https forward (default: system)")
      .option("set", "KEY=VALUE", "any connector key in the seed's syntax, e.g. tcp_connect.max_retry=1", true)
      .option("response-timeout", "DURATION", "forwards: 504 when no response byte in time (default 60s)")
      .option("idle-timeout", "DURATION",
              "close a tunnel with no byte either way this long (default 300s, 0: never)")
      .option("log", "LEVEL", "log to stderr at this level (default off)");
  server_cli_options(cli);
  destination_cli_options(cli);
  try {
    if (!cli.parse(argc, argv)) return 0;
    Config cfg;
    auto b = DivertTcpConnector::builder();
    b.name("divert-forward-proxy").resolver(net::system_resolver());
    apply_connector_options(cli, b);
    if (cli.has("log")) b.set("shared_logger", "stderr:" + cli.get("log"));
    cfg.connector.emplace(b.build());
    if (cli.has("idle-timeout"))
      cfg.idle_timeout = parse_duration("--idle-timeout", cli.get("idle-timeout"));
    if (cli.has("response-timeout"))
      cfg.response_timeout = parse_duration("--response-timeout", cli.get("response-timeout"));
    for (auto& u : cli.all("user")) {
      auto colon = u.find(':');
      if (colon == std::string::npos || colon == 0) throw usage_error("--user needs NAME:PASSWORD");
      cfg.users.add(u.substr(0, colon), u.substr(colon + 1));
    }
    cfg.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (cli.has("ca-file")) cfg.tls->load_verify_file(cli.get("ca-file"));
    else cfg.tls->set_default_verify_paths();

    ServerOptions so;
    so.name = "divert-forward-proxy";
    so.listen = parse_listen(cli.get("listen", "127.0.0.1:8080"));
    apply_server_options(cli, so);
    Server server(so, [&cfg](Accepted a) { return handle(std::move(a), cfg); });
    server.bind();
    cfg.destinations = make_destination_gate(cli, server.local_endpoint(), *cfg.connector);
    std::cerr << "divert-forward-proxy: listening on " << server.local_endpoint() << "\n";
    server.run();
    std::cerr << format_statsd(cfg.connector->metrics().snapshot(), "divert");
    return 0;
  } catch (const usage_error& e) {
    std::cerr << "divert-forward-proxy: " << e.what() << "\ntry --help\n";
    return 2;
  } catch (const config_error& e) {
    std::cerr << "divert-forward-proxy: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "divert-forward-proxy: " << e.what() << "\n";
    return 1;
  }
}

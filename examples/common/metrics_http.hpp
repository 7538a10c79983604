// examples/common/metrics_http.hpp — the example programs' `--metrics-listen
// HOST:PORT`: a small HTTP/1.1 endpoint answering GET /metrics with the
// Prometheus text exposition format (divert::format_prometheus).
//
// It exposes the counters to whoever can connect: off unless asked for, and it
// listens only on the address given (keep it on loopback or a management
// network). It serves nothing else:
//   GET or HEAD /metrics (a query string is ignored) -> 200, Content-Type
//     "text/plain; version=0.0.4; charset=utf-8";
//   another path -> 404; another method -> 405 (Allow: GET, HEAD);
//   a request line that is not "METHOD TARGET HTTP/1.x" -> 400;
//   a request head over max_request_bytes -> 431;
//   no complete head within read_timeout -> closed without a reply.
// Every reply has Content-Length and "Connection: close": one request per
// connection, a request body is never read. At most max_connections are
// served at once; more are closed on accept. One thread of its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/cli.hpp"
#include "divert/asio/ip/tcp.hpp"

namespace divert::examples {

struct MetricsHttpOptions {
  asio::ip::tcp::endpoint listen;
  std::size_t max_request_bytes = 8192;          // request line + headers
  std::chrono::milliseconds read_timeout{5000};  // for the whole request head
  std::size_t max_connections = 16;              // served at once
};

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// The whole response to one complete request head (bytes up to and including
// the empty line; any bytes). `render` gives the /metrics body; it is called
// only for GET /metrics and HEAD /metrics. Pure.
std::string metrics_http_response(std::string_view request_head,
                                  const std::function<std::string()>& render);
// The response when the head exceeds max_request_bytes (431).
std::string metrics_http_too_large();

// The endpoint: binds in the constructor (throws std::system_error naming the
// address), serves on its own thread until destroyed. `render` runs on that
// thread and must be thread-safe with respect to the rest of the program
// (connector.metrics_snapshot() is).
class MetricsHttpServer {
 public:
  MetricsHttpServer(MetricsHttpOptions options, std::function<std::string()> render);
  ~MetricsHttpServer();  // stops accepting, closes open connections, joins
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  asio::ip::tcp::endpoint local_endpoint() const;  // the bound address (port 0 resolved)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Declares --metrics-listen HOST:PORT (off by default).
Cli& metrics_cli_option(Cli& cli);
// The endpoint when --metrics-listen was given (bound, serving), else null.
// Throws usage_error for a bad address, std::system_error when it cannot bind.
std::unique_ptr<MetricsHttpServer> start_metrics_http(const Cli& cli,
                                                      std::function<std::string()> render);

}  // namespace divert::examples

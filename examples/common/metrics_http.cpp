// examples/common/metrics_http.cpp — see metrics_http.hpp.
#include "common/metrics_http.hpp"

#include <exception>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "divert/asio.hpp"
#include "divert/asio/as_tuple.hpp"
#include "divert/asio/co_spawn.hpp"
#include "divert/asio/experimental/awaitable_operators.hpp"
#include "divert/asio/io_context.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/use_awaitable.hpp"
#include "divert/asio/write.hpp"

namespace divert::examples {

namespace {

using asio::ip::tcp;

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     bool with_body, std::string_view extra_header = {}) {
  std::string out = "HTTP/1.1 ";
  out.append(status).append("\r\nContent-Type: ").append(content_type);
  out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  out.append("\r\n").append(extra_header).append("Connection: close\r\n\r\n");
  if (with_body) out.append(body);
  return out;
}

std::string plain(std::string_view status, std::string_view body, bool with_body = true,
                  std::string_view extra_header = {}) {
  return response(status, "text/plain; charset=utf-8", body, with_body, extra_header);
}

// RFC 9110 tchar: what a method name is made of.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// End of the request head (just after the empty line), or npos.
std::size_t head_end(std::string_view buf) {
  const auto crlf = buf.find("\r\n\r\n");
  const auto lf = buf.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf))
    return crlf + 4;
  return lf + 2;
}

}  // namespace

std::string metrics_http_too_large() {
  return plain("431 Request Header Fields Too Large", "request head too large\n");
}

std::string metrics_http_response(std::string_view head,
                                  const std::function<std::string()>& render) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return plain("400 Bad Request", "bad request line\n");
  }
  const auto method = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target[0] != '/' ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return plain("400 Bad Request", "bad request line\n");
  }
  const bool head_only = method == "HEAD";
  if (target.substr(0, target.find('?')) != "/metrics") {
    return plain("404 Not Found", "not found: try /metrics\n", !head_only);
  }
  if (method != "GET" && !head_only) {
    return plain("405 Method Not Allowed", "use GET\n", true, "Allow: GET, HEAD\r\n");
  }
  std::string body;
  try {
    body = render();
  } catch (const std::exception& e) {
    return plain("500 Internal Server Error", std::string(e.what()) + "\n", !head_only);
  }
  return response("200 OK", kPrometheusContentType, body, !head_only);
}

struct MetricsHttpServer::Impl {
  MetricsHttpOptions opts;
  std::function<std::string()> render;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::size_t open = 0;  // connections being served (only the io thread touches it)
  std::thread thread;

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(detail::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {  // e.g. EMFILE: keep serving, without spinning on a failing accept()
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        co_await pause.async_wait(detail::as_tuple(asio::use_awaitable));
        continue;
      }
      if (open >= opts.max_connections) continue;  // closed as `socket` goes
      ++open;
      asio::co_spawn(io, serve(std::move(socket)), [this](std::exception_ptr) { --open; });
    }
  }

  // The request head, or nothing (peer closed, error, too large: `too_large` set).
  asio::awaitable<std::optional<std::string>> read_head(tcp::socket& s, bool& too_large) {
    std::string buf;
    char chunk[1024];
    for (;;) {
      auto [ec, n] =
          co_await s.async_read_some(asio::buffer(chunk), detail::as_tuple(asio::use_awaitable));
      buf.append(chunk, n);
      const auto end = head_end(buf);
      if (end != std::string::npos && end <= opts.max_request_bytes) {
        buf.resize(end);
        co_return buf;
      }
      if (buf.size() > opts.max_request_bytes) {
        too_large = true;
        co_return std::nullopt;
      }
      if (ec) co_return std::nullopt;
    }
  }

  asio::awaitable<void> serve(tcp::socket s) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(io);
    timer.expires_after(opts.read_timeout);
    bool too_large = false;
    auto got = co_await (read_head(s, too_large) ||
                         timer.async_wait(detail::as_tuple(asio::use_awaitable)));
    std::string reply;
    if (got.index() == 0 && std::get<0>(got)) {
      reply = metrics_http_response(*std::get<0>(got), render);
    } else if (too_large) {
      reply = metrics_http_too_large();
    } else {
      co_return;  // timed out or the peer left: closed without a reply
    }
    timer.expires_after(opts.read_timeout);
    auto wrote = co_await (
        asio::async_write(s, asio::buffer(reply), detail::as_tuple(asio::use_awaitable)) ||
        timer.async_wait(detail::as_tuple(asio::use_awaitable)));
    if (wrote.index() != 0 || std::get<0>(std::get<0>(wrote))) co_return;
    // Our FIN, then wait (bounded) for the client's: closing with its unread
    // bytes in our buffer would send a RST that may destroy the reply in flight.
    divert::error_code ec;
    s.shutdown(tcp::socket::shutdown_send, ec);
    timer.expires_after(std::chrono::seconds(1));
    co_await (drain(s) || timer.async_wait(detail::as_tuple(asio::use_awaitable)));
  }

  static asio::awaitable<void> drain(tcp::socket& s) {
    char sink[512];
    for (;;) {
      auto [ec, n] =
          co_await s.async_read_some(asio::buffer(sink), detail::as_tuple(asio::use_awaitable));
      if (ec) co_return;
    }
  }
};

MetricsHttpServer::MetricsHttpServer(MetricsHttpOptions options,
                                     std::function<std::string()> render)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->render = std::move(render);
  auto& acc = impl_->acceptor;
  const auto& at = impl_->opts.listen;
  divert::error_code ec;
  acc.open(at.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(at, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::system_error(std::error_code(ec), "--metrics-listen " + at.address().to_string() +
                                                     ":" + std::to_string(at.port()));
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(), [](std::exception_ptr) {});
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

MetricsHttpServer::~MetricsHttpServer() {
  impl_->io.stop();
  impl_->thread.join();
}

asio::ip::tcp::endpoint MetricsHttpServer::local_endpoint() const {
  return impl_->acceptor.local_endpoint();
}

Cli& metrics_cli_option(Cli& cli) {
  return cli.option("metrics-listen", "HOST:PORT",
                    "serve Prometheus metrics at http://HOST:PORT/metrics (default: off; anyone "
                    "who can connect reads the counters, so keep it on loopback or a "
                    "management network)");
}

std::unique_ptr<MetricsHttpServer> start_metrics_http(const Cli& cli,
                                                      std::function<std::string()> render) {
  if (!cli.has("metrics-listen")) return nullptr;
  MetricsHttpOptions o;
  o.listen = parse_listen(cli.get("metrics-listen"));
  return std::make_unique<MetricsHttpServer>(std::move(o), std::move(render));
}

}  // namespace divert::examples

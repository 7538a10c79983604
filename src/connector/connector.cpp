// DivertTcpConnector: pick, connect, send the PROXY v2 header, hand back the stream.
#include <sys/socket.h>
#include <sys/uio.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include "divert/asio/as_tuple.hpp"
#include "divert/asio/co_spawn.hpp"
#include "divert/asio/experimental/awaitable_operators.hpp"
#include "divert/asio/read.hpp"
#include "divert/asio/redirect_error.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/use_awaitable.hpp"
#include "divert/asio/write.hpp"

#include "connector/core.hpp"
#include "divert/connector.hpp"
#include "divert/net/connect.hpp"
#include "divert/net/socket_options.hpp"

#if defined(DIVERT_WITH_TLS)
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

namespace divert {

void validate_connector_config(const ConnectorConfig& cfg);        // builder.cpp
UpstreamSelector make_proxy_selector(const ConnectorConfig& cfg);  // builder.cpp

namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

}  // namespace

struct DivertTcpConnector::State {
  explicit State(ConnectorConfig c)
      : cfg(std::move(c)),
        selector(make_proxy_selector(cfg)),
        metrics(cfg.name, cfg.extra_metrics_tags),
        health(cfg.proxy_addr.size()) {}

  ConnectorConfig cfg;
  UpstreamSelector selector;
  mutable Metrics metrics;
  connector::ProxyHealth health;

  // What a connect tells its caller besides the stream.
  struct ConnectReport {
    TaskId task_id;                          // sent in 0xE3 (given or generated)
    std::optional<std::size_t> proxy_index;  // reached, or last tried (index in proxy_addr)
  };

  // Picks, connects, sends the header (the decisions: connector::ConnectCore).
  // Reports an error through `ec` (the stream is then unopened) and never
  // throws. `task` lives in the coroutine frame (the caller's Task may be gone
  // before the awaitable starts); *tls_name, `ec` and `report` must outlive
  // the awaitable. `self` (this State) too: the frame keeps the State alive
  // when the caller's last DivertTcpConnector handle is gone (a temporary, a
  // reload) before it ends.
  asio::awaitable<tcp::socket> connect(std::shared_ptr<State> self, Task task,
                                       const std::string* tls_name, error_code& ec,
                                       ConnectReport& report);
#if defined(DIVERT_WITH_TLS)
  // https_forward's body; as connect().
  asio::awaitable<TlsStream> https(std::shared_ptr<State> self, Task task, std::string tls_name,
                                   asio::ssl::context& ctx, error_code& ec, ConnectReport& report);
#endif
  // The host's view of a report.
  DivertInfo info(const ConnectReport& report, const tcp::socket& s) const {
    DivertInfo i;
    i.task_id = report.task_id;
    if (report.proxy_index) i.next_proxy = cfg.proxy_addr[*report.proxy_index].addr;
    error_code ignored;
    if (s.is_open()) i.next_proxy_endpoint = s.remote_endpoint(ignored);
    return i;
  }
};

namespace {
// One non-blocking sendmsg() of `bufs`; consumes what was sent from `bufs`.
// EAGAIN is not an error (the caller writes the rest asynchronously).
error_code send_now(tcp::socket& s, std::array<asio::const_buffer, 2>& bufs) {
  iovec iov[2];
  for (std::size_t k = 0; k < 2; ++k) iov[k] = {const_cast<void*>(bufs[k].data()), bufs[k].size()};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do {
    n = ::sendmsg(s.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK
               ? error_code()
               : error_code(errno, asio::error::get_system_category());
  auto sent = static_cast<std::size_t>(n);
  for (auto& b : bufs) {
    const std::size_t k = std::min(sent, b.size());
    b += k;
    sent -= k;
  }
  return {};
}

// Writes the header and the initial data in one write (writev, one segment
// when it fits) so a receiver never sees a split header.
asio::awaitable<error_code> write_header(tcp::socket& s, std::span<const std::uint8_t> header,
                                         const std::string& initial_data) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(header.data(), header.size()),
                                         asio::buffer(initial_data)};
  // A fresh connection's send buffer is empty: the write nearly always goes
  // out in one sendmsg() here, without an operation object or a trip through
  // the scheduler. Whatever it leaves (or EAGAIN) goes to async_write.
  error_code ec = send_now(s, bufs);
  if (!ec && asio::buffer_size(bufs) > 0) {
    try {
      auto [e, n] =
          co_await asio::async_write(s, bufs, divert::detail::as_tuple(asio::use_awaitable));
      ec = e;
    } catch (const system_error& e) {
      ec = e.code();
    }
  }
  co_return ec;
}

// Reads exactly reply.size() bytes (never one past them: what follows is the
// upstream's) before `deadline`; asio::error::timed_out when it passes first.
asio::awaitable<error_code> read_status_reply(tcp::socket& s, std::span<std::uint8_t> reply,
                                              Clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  constexpr auto tuple_awaitable = divert::detail::as_tuple(asio::use_awaitable);
  asio::steady_timer timer(s.get_executor(), deadline);
  try {
    auto r =
        co_await (asio::async_read(s, asio::buffer(reply.data(), reply.size()), tuple_awaitable) ||
                  timer.async_wait(tuple_awaitable));
    if (r.index() == 1) co_return asio::error::timed_out;
    co_return std::get<0>(std::get<0>(r));
  } catch (const system_error& e) {
    co_return e.code();
  }
}
}  // namespace

// The I/O shell: performs connector::ConnectCore's actions and feeds it the results.
asio::awaitable<tcp::socket> DivertTcpConnector::State::connect(std::shared_ptr<State> /*self*/,
                                                                Task task,
                                                                const std::string* tls_name,
                                                                error_code& ec,
                                                                ConnectReport& report) {
  using connector::ConnectAction;
  ec.clear();
  report.proxy_index.reset();
  auto ex = co_await asio::this_coro::executor;
  report.task_id = task.task_id ? *task.task_id : make_task_id_v7();
  // Formatted only when a log line may need it.
  const std::string id_text =
      cfg.shared_logger.enabled(LogLevel::error) ? report.task_id.to_string() : std::string();

  connector::ConnectCore core(cfg, selector, health);
  const auto* actions = &core.start({task, tls_name, report.task_id}, Clock::now());
  std::optional<tcp::socket> sock;
  for (;;) {
    // The one I/O action (or done) of this step; the others are applied here.
    ConnectAction::Kind next = ConnectAction::Kind::done;
    std::size_t i = ConnectAction::npos;
    error_code error;
    Clock::time_point deadline;
    for (const auto& a : *actions) {
      switch (a.kind) {
        case ConnectAction::Kind::metric:
          metrics.add(a.counter, a.amount);
          break;
        case ConnectAction::Kind::connect_latency:
          metrics.record_connect_latency(a.latency);
          break;
        case ConnectAction::Kind::log:
          cfg.shared_logger.log(a.level, a.text, id_text);
          break;
        default:
          next = a.kind, i = a.proxy, error = a.error, deadline = a.deadline;
      }
    }
    switch (next) {
      case ConnectAction::Kind::connect: {
        sock.reset();
        report.proxy_index = i;  // the last tried, until done() names the one reached
        const UpstreamAddr& proxy = cfg.proxy_addr[i].addr;
        std::optional<net::ConnectResult> r;
        error_code cerr;
        const char* option = nullptr;
        try {
          if (proxy.is_ip())
            r.emplace(co_await net::connect_with_retry(tcp::endpoint(proxy.ip(), proxy.port()),
                                                       cfg.connect));
          else
            r.emplace(co_await net::happy_eyeballs_connect(proxy.host(), proxy.port(), cfg.connect,
                                                           cfg.resolver));
          cerr = r->error;
          option = r->option;
        } catch (const system_error& e) {
          cerr = e.code();
        }
        if (cerr) {
          actions = &core.on_connect_failed(i, cerr, option, Clock::now());
        } else {
          sock.emplace(std::move(*r->socket));
          actions = &core.on_connected(i, r->peer.address(), Clock::now());
        }
        break;
      }
      case ConnectAction::Kind::write_header: {
        auto wec = co_await write_header(*sock, core.header(), task.initial_data);
        if (wec) {
          actions = &core.on_header_write_failed(i, wec, Clock::now());
          break;
        }
        // The handshake's last ACK went out with the header; the kernel took
        // that quick write for an interactive reply (delayed ACKs): undo that.
        if (cfg.connect.delay_handshake_ack) net::resume_quick_ack(*sock);
        actions = &core.on_header_written(i, Clock::now());
        break;
      }
      case ConnectAction::Kind::read_status_reply: {
        std::array<std::uint8_t, ppv2::kStatusReplySize> reply;
        auto rec = co_await read_status_reply(*sock, reply, deadline);
        if (rec == asio::error::timed_out)
          actions = &core.on_status_reply_timed_out(i, Clock::now());
        else if (rec)
          actions = &core.on_status_reply_failed(i, rec, Clock::now());
        else
          actions = &core.on_status_reply(i, reply, Clock::now());
        break;
      }
      case ConnectAction::Kind::done:
      default:
        // The next proxy reached (the stream's, or the one that reported the
        // upstream's failure); on other failures the last one tried stays.
        if (i != ConnectAction::npos) report.proxy_index = i;
        if (error) {
          ec = error;
          co_return tcp::socket(ex);
        }
        co_return std::move(*sock);
    }
  }
}

// The operation behind every async_tcp_connect/async_http_forward: State::connect
// on `ex`, its cancellation slot connected to the handler's, the handler
// completed once (co_spawn's own completion never runs inside this call).
void DivertTcpConnector::start_connect(asio::any_io_executor ex, Task task,
                                       SocketHandler handler) const {
  struct Outcome {
    error_code ec;
    std::optional<tcp::socket> socket;
    DivertInfo info;
  };
  auto run = [](std::shared_ptr<State> s, Task task) -> asio::awaitable<Outcome> {
    Outcome out;
    State::ConnectReport report;
    auto sock = co_await s->connect(s, std::move(task), nullptr, out.ec, report);
    out.info = s->info(report, sock);
    out.socket.emplace(std::move(sock));
    co_return out;
  };
  auto slot = handler.cancellation_slot();
  asio::co_spawn(ex, run(s_, std::move(task)),
                 asio::bind_cancellation_slot(
                     slot, [h = std::move(handler), ex](std::exception_ptr e, Outcome out) mutable {
                       if (e) std::rethrow_exception(e);  // bad_alloc only
                       if (!out.socket) out.socket.emplace(ex);
                       h(out.ec, std::move(*out.socket), std::move(out.info));
                     }));
}

// The coroutine shorthands: one line each over the initiating functions.
asio::awaitable<tcp::socket> DivertTcpConnector::tcp_connect(Task task, error_code& ec) const {
  return async_tcp_connect(std::move(task), asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<tcp::socket> DivertTcpConnector::tcp_connect(Task task) const {
  return async_tcp_connect(std::move(task), asio::use_awaitable);
}

asio::awaitable<tcp::socket> DivertTcpConnector::http_forward(Task task, error_code& ec) const {
  return async_http_forward(std::move(task), asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<tcp::socket> DivertTcpConnector::http_forward(Task task) const {
  return async_http_forward(std::move(task), asio::use_awaitable);
}

#if defined(DIVERT_WITH_TLS)
namespace {
// Sets SNI (names only) and, when `verify`, peer verification against `name`
// (canonical: an IP literal or a lower-case name) in the subjectAltName only.
// False when OpenSSL refuses a step; nothing may then be trusted.
bool setup_tls_verification(asio::ssl::stream<tcp::socket>& stream, const UpstreamAddr& name,
                            bool verify) {
  SSL* ssl = stream.native_handle();
  const std::string& host = name.host();
  if (name.is_domain() && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return false;
  if (!verify) return true;
  error_code ec;
  stream.set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return false;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  // NEVER_CHECK_SUBJECT: a name only in the subject CN does not count (RFC 6125
  // 6.4.4, CA/Browser Forum baseline requirements: subjectAltName only).
  X509_VERIFY_PARAM_set_hostflags(
      param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  if (name.is_ip()) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  return X509_VERIFY_PARAM_set1_host(param, host.data(), host.size()) == 1;
}
}  // namespace

void DivertTcpConnector::start_https(asio::any_io_executor ex, Task task, std::string tls_name,
                                     asio::ssl::context& ctx, TlsHandler handler) const {
  struct Outcome {
    error_code ec;
    std::optional<TlsStream> stream;
    DivertInfo info;
  };
  auto run = [](std::shared_ptr<State> s, Task task, std::string tls_name,
                asio::ssl::context* ctx) -> asio::awaitable<Outcome> {
    Outcome out;
    State::ConnectReport report;
    auto stream = co_await s->https(s, std::move(task), std::move(tls_name), *ctx, out.ec, report);
    out.info = s->info(report, stream.next_layer());
    out.stream.emplace(std::move(stream));
    co_return out;
  };
  auto slot = handler.cancellation_slot();
  asio::co_spawn(ex, run(s_, std::move(task), std::move(tls_name), &ctx),
                 asio::bind_cancellation_slot(slot, [h = std::move(handler), ex, c = &ctx](
                                                        std::exception_ptr e, Outcome out) mutable {
                   if (e) std::rethrow_exception(e);  // bad_alloc only
                   if (!out.stream) out.stream.emplace(tcp::socket(ex), *c);
                   h(out.ec, std::move(*out.stream), std::move(out.info));
                 }));
}

asio::awaitable<DivertTcpConnector::TlsStream> DivertTcpConnector::https_forward(
    Task task, std::string tls_name, asio::ssl::context& ctx, error_code& ec) const {
  return async_https_forward(std::move(task), std::move(tls_name), ctx,
                             asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<DivertTcpConnector::TlsStream> DivertTcpConnector::https_forward(
    Task task, std::string tls_name, asio::ssl::context& ctx) const {
  return async_https_forward(std::move(task), std::move(tls_name), ctx, asio::use_awaitable);
}

asio::awaitable<DivertTcpConnector::TlsStream> DivertTcpConnector::State::https(
    std::shared_ptr<State> self, Task task, std::string tls_name, asio::ssl::context& ctx,
    error_code& ec, ConnectReport& report) {
  auto ex = co_await asio::this_coro::executor;
  ec.clear();
  report.task_id = task.task_id ? *task.task_id : make_task_id_v7();
  report.proxy_index.reset();
  task.task_id = report.task_id;  // the id reported is the id connect() sends
  if (!task.initial_data.empty()) {
    ec = asio::error::invalid_argument;
    co_return TlsStream(tcp::socket(ex), ctx);
  }
  // The verify name in 0xE0's canonical form (0xE0 and 0xE1 agree); names
  // OpenSSL would take as "no name check" or could not check are refused
  // here, before anything is connected.
  auto name = UpstreamAddr::try_from_domain(tls_name, task.upstream.port());
  const std::string upstream = task.upstream.to_string();
  if (!name) {
    // (the name itself is not logged: it may hold control characters)
    cfg.shared_logger.logf(LogLevel::warn, "", "https_forward to {}: TLS name refused: {}",
                           upstream, name.reason);
    ec = asio::error::invalid_argument;
    co_return TlsStream(tcp::socket(ex), ctx);
  }
  tls_name = name.addr->host();
  // A copy: this frame goes on using the State after connect() returns.
  auto sock = co_await connect(self, std::move(task), &tls_name, ec, report);
  TlsStream stream(std::move(sock), ctx);
  if (ec) co_return stream;

  if (!setup_tls_verification(stream, *name.addr, cfg.tls_verify_peer)) {
    cfg.shared_logger.logf(LogLevel::warn, "", "https_forward to {}: OpenSSL refused TLS name {}",
                           upstream, tls_name);
    ec = asio::error::invalid_argument;
    error_code ignored;
    stream.lowest_layer().close(ignored);
    co_return stream;
  }

  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(ex, cfg.tls_handshake_timeout);
  std::variant<std::tuple<error_code>, std::tuple<error_code>> res;
  try {
    res = co_await (stream.async_handshake(asio::ssl::stream_base::client,
                                           divert::detail::as_tuple(asio::use_awaitable)) ||
                    timer.async_wait(divert::detail::as_tuple(asio::use_awaitable)));
  } catch (const system_error& e) {
    ec = e.code();
  }
  if (!ec) {
    if (res.index() == 1) {
      ec = errc::tls_handshake_timeout;
    } else {
      ec = std::get<0>(std::get<0>(res));
    }
  }
  if (ec) {
    metrics.add(ec == errc::tls_handshake_timeout ? MetricsCounter::tls_handshake_timeout
                                                  : MetricsCounter::tls_handshake_error);
    cfg.shared_logger.logf(LogLevel::warn, "", "TLS handshake with {} ({}) failed: {}", upstream,
                           tls_name, ec.message());
    error_code ignored;
    stream.lowest_layer().close(ignored);
  }
  co_return stream;
}

#endif

const ConnectorConfig& DivertTcpConnector::config() const noexcept {
  return s_->cfg;
}
Metrics& DivertTcpConnector::metrics() const noexcept {
  return s_->metrics;
}
std::uint64_t DivertTcpConnector::ejections() const noexcept {
  return s_->health.ejections();
}

std::vector<std::string> DivertTcpConnector::ejected_proxies() const {
  std::vector<std::string> out;
  const auto now = Clock::now();
  for (std::size_t i = 0; i < s_->health.size(); ++i)
    if (s_->health.ejected(i, now)) out.push_back(s_->cfg.proxy_addr[i].addr.to_string());
  return out;
}

DivertTcpConnector DivertTcpConnector::Builder::build() const {
  validate_connector_config(cfg_);
  return DivertTcpConnector(std::make_shared<State>(cfg_));
}

}  // namespace divert

// DivertTcpConnector: pick, connect, send the PROXY v2 header, hand back the stream.
#include <sys/socket.h>
#include <sys/uio.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <mutex>
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
#include "health_check/health_checker.hpp"

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

// One configuration: what a connect started under it uses until it ends
// (the connect's frame holds it, so a reconfigure never changes it under a
// connect in flight).
struct Generation {
  // `previous`: the generation replaced, whose per-next-proxy state the
  // addresses kept share (null for the first).
  Generation(ConnectorConfig c, const Generation* previous)
      : cfg(std::move(c)),
        selector(make_proxy_selector(cfg)),
        health(previous ? previous->health.carried_to(cfg.proxy_addr)
                        : connector::ProxyHealth(cfg.proxy_addr)) {}

  const ConnectorConfig cfg;
  const UpstreamSelector selector;
  connector::ProxyHealth health;
};

// Metrics::connect_started() while it lives (the connects_in_flight gauge).
class ConnectInFlight {
 public:
  explicit ConnectInFlight(Metrics& m) : m_(m) { m_.connect_started(); }
  ~ConnectInFlight() { m_.connect_finished(); }
  ConnectInFlight(const ConnectInFlight&) = delete;
  ConnectInFlight& operator=(const ConnectInFlight&) = delete;

 private:
  Metrics& m_;
};
}  // namespace

// The handle's shared state: the current generation, the metrics (one object
// for the connector's life) and the health checks.
struct DivertTcpConnector::State {
  explicit State(ConnectorConfig c)
      : metrics(c.name, c.extra_metrics_tags),
        current_(std::make_shared<Generation>(std::move(c), nullptr)) {}

  mutable Metrics metrics;

  // The generation new tasks start on.
  std::shared_ptr<Generation> current() const {
    std::lock_guard lock(current_mu_);
    return current_;
  }
  // Validates `cfg` (throws config_error, nothing changed) and makes it current.
  void reconfigure(ConnectorConfig cfg);
  // start_health_checks() / stop().
  void start_health_checks(asio::any_io_executor ex);
  void stop();

  // What a connect tells its caller besides the stream.
  struct ConnectReport {
    TaskId task_id;                          // sent in 0xE3 (given or generated)
    std::optional<std::size_t> proxy_index;  // reached, or last tried (index in proxy_addr)
    tcp::endpoint peer;                      // the next proxy's endpoint connected to
    // The host's view of it (`g`: the connect's generation).
    DivertInfo info(const Generation& g, const tcp::socket& s) const {
      DivertInfo i;
      i.task_id = task_id;
      if (proxy_index) i.next_proxy = g.cfg.proxy_addr[*proxy_index].addr;
      // From the connect (no getpeername(2) per connection).
      if (s.is_open()) i.next_proxy_endpoint = peer;
      return i;
    }
  };

  // Picks, connects, sends the header (the decisions: connector::ConnectCore)
  // with generation `g`'s configuration. Reports an error through `ec` (the
  // stream is then unopened) and never throws. `task` lives in the coroutine
  // frame (the caller's Task may be gone before the awaitable starts);
  // *tls_name, `ec` and `report` must outlive the awaitable, and so must this
  // State (the callers' frames hold it).
  asio::awaitable<tcp::socket> connect(std::shared_ptr<Generation> g, Task task,
                                       const std::string* tls_name, error_code& ec,
                                       ConnectReport& report);
#if defined(DIVERT_WITH_TLS)
  // https_forward's body; as connect().
  asio::awaitable<TlsStream> https(std::shared_ptr<Generation> g, Task task, std::string tls_name,
                                   asio::ssl::context& ctx, error_code& ec, ConnectReport& report);
#endif

 private:
  // Makes the health checks match generation `g` (`old`: the one it replaces,
  // else null): none unless started and enabled; a new checker when its
  // settings changed; else the same one with `g`'s next proxies as targets.
  void update_health_checks(const Generation& g, const Generation* old);
  // Stops the checker (no on_change afterwards) and marks `g`'s next proxies up.
  void drop_health_checker(const Generation& g);

  // Serialises reconfigure(), start_health_checks() and stop(); guards the
  // two health-check members below.
  std::mutex control_mu_;
  std::optional<asio::any_io_executor> health_ex_;  // set while started
  std::unique_ptr<health::HealthChecker> checker_;  // while started and enabled
  mutable std::mutex current_mu_;
  std::shared_ptr<Generation> current_;
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
// when it fits) so a receiver never sees a split header. The first
// `syn_bytes` of them already went with the SYN (TCP Fast Open).
asio::awaitable<error_code> write_header(tcp::socket& s, std::span<const std::uint8_t> header,
                                         const std::string& initial_data, std::size_t syn_bytes) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(header.data(), header.size()),
                                         asio::buffer(initial_data)};
  for (auto& b : bufs) {
    const std::size_t k = std::min(syn_bytes, b.size());
    b += k;
    syn_bytes -= k;
  }
  if (asio::buffer_size(bufs) == 0) co_return error_code();
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
asio::awaitable<tcp::socket> DivertTcpConnector::State::connect(std::shared_ptr<Generation> g,
                                                                Task task,
                                                                const std::string* tls_name,
                                                                error_code& ec,
                                                                ConnectReport& report) {
  using connector::ConnectAction;
  const ConnectorConfig& cfg = g->cfg;
  ec.clear();
  report.proxy_index.reset();
  auto ex = co_await asio::this_coro::executor;
  report.task_id = task.task_id ? *task.task_id : make_task_id_v7();
  // Formatted only when a log line may need it.
  const std::string id_text =
      cfg.shared_logger.enabled(LogLevel::error) ? report.task_id.to_string() : std::string();

  ConnectInFlight in_flight(metrics);
  std::optional<connector::ProxyHealth::InFlight> attempt;  // the next proxy being tried
  connector::ConnectCore core(cfg, g->selector, g->health);
  const auto* actions = &core.start({task, tls_name, report.task_id}, Clock::now());
  std::optional<tcp::socket> sock;
  std::size_t syn_bytes = 0;  // of the header and initial data, sent with the SYN
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
        case ConnectAction::Kind::proxy_metric:
          g->health.count(a.proxy, a.proxy_counter);
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
        attempt.reset();  // the previous attempt (if any) ended
        attempt.emplace(g->health.entry(i));
        report.proxy_index = i;  // the last tried, until done() names the one reached
        const UpstreamAddr& proxy = cfg.proxy_addr[i].addr;
        std::optional<net::ConnectResult> r;
        error_code cerr;
        const char* option = nullptr;
        // TCP Fast Open (tcp_fast_open): the header and initial data for the SYN.
        const net::SynData syn{asio::buffer(core.header().data(), core.header().size()),
                               asio::buffer(task.initial_data)};
        try {
          if (proxy.is_ip())
            r.emplace(co_await net::connect_with_retry(tcp::endpoint(proxy.ip(), proxy.port()),
                                                       cfg.connect, syn));
          else
            r.emplace(co_await net::happy_eyeballs_connect(proxy.host(), proxy.port(), cfg.connect,
                                                           cfg.resolver, syn));
          cerr = r->error;
          option = r->option;
        } catch (const system_error& e) {
          cerr = e.code();
        }
        if (cerr) {
          actions = &core.on_connect_failed(i, cerr, option, Clock::now());
        } else {
          sock.emplace(std::move(*r->socket));
          syn_bytes = r->syn_bytes;
          report.peer = r->peer;
          actions = &core.on_connected(i, r->peer.address(), Clock::now());
        }
        break;
      }
      case ConnectAction::Kind::write_header: {
        auto wec = co_await write_header(*sock, core.header(), task.initial_data, syn_bytes);
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
  auto run = [](std::shared_ptr<State> s, std::shared_ptr<Generation> g,
                Task task) -> asio::awaitable<Outcome> {
    Outcome out;
    State::ConnectReport report;
    auto sock = co_await s->connect(g, std::move(task), nullptr, out.ec, report);
    out.info = report.info(*g, sock);
    out.socket.emplace(std::move(sock));
    co_return out;
  };
  auto slot = handler.cancellation_slot();
  // The configuration current now is this connect's, to its end.
  asio::co_spawn(ex, run(s_, s_->current(), std::move(task)),
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
  auto run = [](std::shared_ptr<State> s, std::shared_ptr<Generation> g, Task task,
                std::string tls_name, asio::ssl::context* ctx) -> asio::awaitable<Outcome> {
    Outcome out;
    State::ConnectReport report;
    auto stream = co_await s->https(g, std::move(task), std::move(tls_name), *ctx, out.ec, report);
    out.info = report.info(*g, stream.next_layer());
    out.stream.emplace(std::move(stream));
    co_return out;
  };
  auto slot = handler.cancellation_slot();
  // The configuration current now is this connect's, to its end.
  asio::co_spawn(ex, run(s_, s_->current(), std::move(task), std::move(tls_name), &ctx),
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
    std::shared_ptr<Generation> g, Task task, std::string tls_name, asio::ssl::context& ctx,
    error_code& ec, ConnectReport& report) {
  const ConnectorConfig& cfg = g->cfg;
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
  auto sock = co_await connect(g, std::move(task), &tls_name, ec, report);
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

ConnectorConfig DivertTcpConnector::config() const {
  return s_->current()->cfg;
}
SpeedLimitConfig DivertTcpConnector::speed_limit() const {
  return s_->current()->cfg.tcp_sock_speed_limit;
}
Metrics& DivertTcpConnector::metrics() const noexcept {
  return s_->metrics;
}
std::uint64_t DivertTcpConnector::ejections() const noexcept {
  return s_->current()->health.ejections();
}

std::vector<std::string> DivertTcpConnector::ejected_proxies() const {
  auto g = s_->current();
  std::vector<std::string> out;
  const auto now = Clock::now();
  for (std::size_t i = 0; i < g->health.size(); ++i)
    if (g->health.ejected(i, now)) out.push_back(g->cfg.proxy_addr[i].addr.to_string());
  return out;
}

MetricsSnapshot DivertTcpConnector::metrics_snapshot() const {
  auto g = s_->current();
  MetricsSnapshot snap = s_->metrics.snapshot();
  const auto now = Clock::now();
  snap.proxies.reserve(g->health.size());
  for (std::size_t i = 0; i < g->health.size(); ++i)
    snap.proxies.push_back(g->health.snapshot(i, g->cfg.proxy_addr[i].addr.to_string(), now));
  return snap;
}

void DivertTcpConnector::State::reconfigure(ConnectorConfig cfg) {
  validate_connector_config(cfg);
  std::lock_guard serial(control_mu_);
  auto old = current();
  // The metrics object stays (hosts hold &metrics()): its tags cannot change.
  if (cfg.name != old->cfg.name)
    throw config_error("name", cfg.name,
                       "cannot change on reconfigure (it is the metrics' escaper tag, now '" +
                           old->cfg.name + "'): build a new connector");
  if (cfg.extra_metrics_tags != old->cfg.extra_metrics_tags)
    throw config_error("extra_metrics_tags", "",
                       "cannot change on reconfigure (the metrics keep their tags): build a new "
                       "connector");
  auto next = std::make_shared<Generation>(std::move(cfg), old.get());  // may throw config_error
  {
    std::lock_guard lock(current_mu_);
    current_ = next;
  }
  update_health_checks(*next, old.get());
}

void DivertTcpConnector::State::update_health_checks(const Generation& g, const Generation* old) {
  const ConnectorConfig& cfg = g.cfg;
  if (!health_ex_ || !cfg.health_check.enabled) {
    drop_health_checker(g);
    return;
  }
  // The checker holds its settings, connect options and resolver: a change
  // of any of them needs a new one (its targets start up again).
  if (old && (old->cfg.health_check != cfg.health_check || old->cfg.connect != cfg.connect ||
              old->cfg.resolver != cfg.resolver))
    drop_health_checker(g);
  if (!checker_)
    checker_ = std::make_unique<health::HealthChecker>(*health_ex_, cfg.health_check, cfg.connect,
                                                       cfg.resolver, &metrics, cfg.shared_logger);
  std::vector<health::Target> targets;
  targets.reserve(cfg.proxy_addr.size());
  for (std::size_t i = 0; i < cfg.proxy_addr.size(); ++i)
    targets.push_back({cfg.proxy_addr[i].addr, [entry = g.health.entry(i)](bool up) {
                         entry->down.store(!up, std::memory_order_relaxed);
                       }});
  checker_->set_targets(std::move(targets));  // kept addresses keep their rise/fall state
}

void DivertTcpConnector::State::drop_health_checker(const Generation& g) {
  if (!checker_) return;
  checker_->stop();
  checker_.reset();
  for (std::size_t i = 0; i < g.health.size(); ++i) g.health.entry(i)->down.store(false);
}

void DivertTcpConnector::State::start_health_checks(asio::any_io_executor ex) {
  std::lock_guard serial(control_mu_);
  if (health_ex_) return;
  health_ex_ = std::move(ex);
  update_health_checks(*current(), nullptr);
}

void DivertTcpConnector::State::stop() {
  std::lock_guard serial(control_mu_);
  health_ex_.reset();
  drop_health_checker(*current());
}

void DivertTcpConnector::reconfigure(const Builder& builder) const {
  s_->reconfigure(builder.config());
}
void DivertTcpConnector::start_health_checks(asio::any_io_executor ex) const {
  s_->start_health_checks(std::move(ex));
}
void DivertTcpConnector::stop() const {
  s_->stop();
}

DivertTcpConnector DivertTcpConnector::Builder::build() const {
  validate_connector_config(cfg_);
  return DivertTcpConnector(std::make_shared<State>(cfg_));
}

}  // namespace divert

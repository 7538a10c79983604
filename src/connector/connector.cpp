// DivertTcpConnector: pick, connect, send the PROXY v2 header, hand back the stream.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include "divert/connector.hpp"
#include "divert/net/connect.hpp"
#include "divert/net/socket_options.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/select/pick_key.hpp"
#include "divert/select/upstream_selector.hpp"

#if defined(DIVERT_WITH_TLS)
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

namespace divert {

void validate_connector_config(const ConnectorConfig& cfg);  // builder.cpp

namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

ppv2::Endpoint to_ppv2(const tcp::endpoint& e) {
  auto a = e.address();
  if (a.is_v4()) return ppv2::Endpoint::v4(a.to_v4().to_bytes(), e.port());
  return ppv2::Endpoint::v6(a.to_v6().to_bytes(), e.port());
}

bool is_timeout(const std::error_code& ec) {
  return ec == asio::error::timed_out || ec == std::errc::timed_out;
}

}  // namespace

struct DivertTcpConnector::State {
  explicit State(ConnectorConfig c)
      : cfg(std::move(c)),
        selector(make_upstream_selector(cfg.proxy_addr, cfg.proxy_addr_pick_policy)),
        metrics(cfg.name, cfg.extra_metrics_tags),
        health(cfg.proxy_addr.size()) {}

  struct Health {
    std::atomic<std::uint32_t> failures{0};
    std::atomic<std::int64_t> ejected_until_ns{0};
  };

  ConnectorConfig cfg;
  UpstreamSelector selector;
  mutable Metrics metrics;
  std::vector<Health> health;
  std::atomic<std::uint64_t> ejections{0};

  bool ejected(std::size_t i, std::int64_t now) const {
    return health[i].ejected_until_ns.load(std::memory_order_relaxed) > now;
  }

  void record_success(std::size_t i) {
    health[i].failures.store(0, std::memory_order_relaxed);
    health[i].ejected_until_ns.store(0, std::memory_order_relaxed);
  }

  void record_failure(std::size_t i, std::string_view task_id) {
    if (cfg.eject_after_failures == 0) return;
    auto n = health[i].failures.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n >= cfg.eject_after_failures) {
      const auto now = now_ns();
      auto until = now + std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.eject_duration).count();
      auto prev = health[i].ejected_until_ns.exchange(until, std::memory_order_relaxed);
      health[i].failures.store(0, std::memory_order_relaxed);
      if (prev <= now) {
        ejections.fetch_add(1, std::memory_order_relaxed);
        cfg.shared_logger.logf(LogLevel::warn, task_id,
                               "next proxy {} ejected for {} ms after {} consecutive failures",
                               cfg.proxy_addr[i].addr.to_string(), cfg.eject_duration.count(), n);
      }
    }
  }

  // Candidates in failover order, ejected ones left out unless all are.
  std::vector<std::size_t> order(std::string_view key) const {
    // One next proxy: the order is that proxy, ejected or not (an ejected
    // proxy is still tried when every proxy is ejected).
    if (cfg.proxy_addr.size() == 1) return {0};
    auto order = selector.candidate_indices(key);
    auto now = now_ns();
    auto is_ejected = [&](std::size_t i) { return ejected(i, now); };
    if (!std::all_of(order.begin(), order.end(), is_ejected)) std::erase_if(order, is_ejected);
    if (order.size() > cfg.proxy_failover + 1) order.resize(cfg.proxy_failover + 1);
    return order;
  }

  // The PROXY v2 header of one task (a plain function: the spec stays out of
  // the coroutine frame).
  std::error_code encode_header(const Task& task, const std::string* tls_name, const TaskId& id,
                                std::string_view upstream, ppv2::HeaderBuffer& out) const {
    ppv2::HeaderSpec spec;
    spec.command = ppv2::Command::proxy;
    spec.src = to_ppv2(task.client);
    spec.dst = to_ppv2(task.server);
    spec.upstream = upstream;
    if (tls_name) spec.tls_name = *tls_name;
    if (has_user(task)) spec.username = *task.username;
    spec.task_id = id;
    spec.crc32c = cfg.header_crc32c;
    return ppv2::encode(spec, out, {.max_size = cfg.max_header_size});
  }

  // An empty username is no username: no 0xE2, not part of the pick key.
  static bool has_user(const Task& task) { return task.username && !task.username->empty(); }

  // What connect() tells its caller besides the socket: the task id sent
  // (given or generated) and the index in cfg.proxy_addr of the next proxy
  // connected (on success) or of the last one tried (on failure; none when
  // nothing was tried, e.g. a header refused before connecting).
  struct ConnectReport {
    TaskId task_id{};
    std::optional<std::size_t> proxy_index;
  };

  // Picks, connects, sends the header. Never throws (but bad_alloc): errors
  // go to `ec`. `task` lives in the coroutine frame; *tls_name, `ec` and
  // `report` must outlive the awaitable (they live in the caller's frame).
  // `self` (this State): the frame keeps the State alive when the caller's
  // last DivertTcpConnector handle is gone (a temporary, a reload).
  asio::awaitable<tcp::socket> connect(std::shared_ptr<State> self, Task task,
                                       const std::string* tls_name, std::error_code& ec,
                                       ConnectReport& report);
#if defined(DIVERT_WITH_TLS)
  // https_forward's body; as connect().
  asio::awaitable<TlsStream> https(std::shared_ptr<State> self, Task task, std::string tls_name,
                                   asio::ssl::context& ctx, std::error_code& ec,
                                   ConnectReport& report);
#endif
  // The host's view of a report.
  DivertInfo info(const ConnectReport& report, const tcp::socket& s) const {
    DivertInfo i;
    i.task_id = report.task_id;
    if (report.proxy_index) i.next_proxy = cfg.proxy_addr[*report.proxy_index].addr;
    std::error_code ignored;
    if (s.is_open()) i.next_proxy_endpoint = s.remote_endpoint(ignored);
    return i;
  }
};

namespace {
// One non-blocking sendmsg() of `bufs`; consumes what was sent from `bufs`.
// EAGAIN is not an error (the caller writes the rest asynchronously).
std::error_code send_now(tcp::socket& s, std::array<asio::const_buffer, 2>& bufs) {
  iovec iov[2];
  for (std::size_t k = 0; k < 2; ++k)
    iov[k] = {const_cast<void*>(bufs[k].data()), bufs[k].size()};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do {
    n = ::sendmsg(s.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK
               ? std::error_code()
               : std::error_code(errno, asio::error::get_system_category());
  auto sent = static_cast<std::size_t>(n);
  for (auto& b : bufs) {
    const std::size_t k = std::min(sent, b.size());
    b += k;
    sent -= k;
  }
  return {};
}
}  // namespace

asio::awaitable<tcp::socket> DivertTcpConnector::State::connect(std::shared_ptr<State> /*self*/,
                                                                Task task,
                                                                const std::string* tls_name,
                                                                std::error_code& ec,
                                                                ConnectReport& report) {
  ec.clear();
  auto ex = co_await asio::this_coro::executor;
  metrics.add(MetricsCounter::task_total);

  const TaskId id = task.task_id ? *task.task_id : make_task_id_v7();
  report.task_id = id;
  report.proxy_index.reset();
  // Formatted only when a log line may need it.
  const std::string id_text = cfg.shared_logger.enabled(LogLevel::error) ? id.to_string() : std::string();
  const std::string upstream = task.upstream.to_string();
  const std::string& initial_data = task.initial_data;
  // Every error exit: an unconnected socket.
  auto failure = [&]() -> tcp::socket { return tcp::socket(ex); };

  ppv2::HeaderBuffer header;
  if (auto e = encode_header(task, tls_name, id, upstream, header)) {
    cfg.shared_logger.logf(LogLevel::warn, id_text, "cannot encode the PROXY header for {}: {}",
                           upstream, e.message());
    // A value the wire contract forbids (a username with a NUL or invalid
    // UTF-8) is reported as such; every other failure is a size cap.
    ec = e == ppv2::errc::invalid_tlv_value ? e : make_error_code(errc::header_too_large);
    co_return failure();
  }

  // Only the hashing policies read the key; the others skip formatting it.
  std::string key;
  const auto policy = cfg.proxy_addr_pick_policy;
  if (policy == PickPolicy::ketama || policy == PickPolicy::rendezvous ||
      policy == PickPolicy::jump_hash) {
    std::optional<std::string_view> user;
    if (has_user(task)) user = *task.username;
    key = make_pick_key(task.client.address(), user, task.upstream.host());
  }
  const auto candidates = order(key);

  std::error_code last;
  // A next proxy that failed: remember the error, count it, log it, and
  // feed passive ejection; the loop then tries the next candidate.
  auto failed = [&](std::size_t i, std::error_code e, MetricsCounter counter, std::string_view what) {
    last = e;
    metrics.add(counter);
    cfg.shared_logger.logf(LogLevel::warn, id_text, "next proxy {}: {}: {}",
                           cfg.proxy_addr[i].addr.to_string(), what, e.message());
    record_failure(i, id_text);
  };
  for (auto i : candidates) {
    const UpstreamAddr& proxy = cfg.proxy_addr[i].addr;
    report.proxy_index = i;
    metrics.add(MetricsCounter::connection_attempt);
    metrics.add(MetricsCounter::tcp_connect_attempt);
    auto started = Clock::now();
    std::optional<net::ConnectResult> r;
    std::error_code cerr;
    const char* option = nullptr;
    try {
      if (proxy.is_ip())
        r.emplace(co_await net::connect_with_retry(tcp::endpoint(proxy.ip(), proxy.port()), cfg.connect));
      else
        r.emplace(co_await net::happy_eyeballs_connect(proxy.host(), proxy.port(), cfg.connect, cfg.resolver));
      cerr = r->error;
      option = r->option;
    } catch (const std::system_error& e) {
      cerr = e.code();
    }
    if (cerr == asio::error::operation_aborted) {
      ec = cerr;
      co_return failure();
    }
    if (cerr) {
      failed(i, cerr,
             is_timeout(cerr) ? MetricsCounter::tcp_connect_timeout : MetricsCounter::tcp_connect_error,
             option ? "connect failed (option " + std::string(option) + ")" : "connect failed");
      continue;
    }
    metrics.record_connect_latency(Clock::now() - started);

    // One write: header then the client's first bytes (writev, one segment
    // when it fits) so a receiver never sees a split header.
    std::array<asio::const_buffer, 2> bufs{asio::buffer(header.data(), header.size()),
                                           asio::buffer(initial_data)};
    // A fresh connection's send buffer is empty: the write nearly always goes
    // out in one sendmsg() here, without an operation object or a trip through
    // the scheduler. Whatever it leaves (or EAGAIN) goes to async_write.
    std::error_code wec = send_now(*r->socket, bufs);
    if (!wec && asio::buffer_size(bufs) > 0) {
      try {
        auto [e, n] = co_await asio::async_write(*r->socket, bufs, asio::experimental::as_tuple(asio::use_awaitable));
        wec = e;
      } catch (const std::system_error& e) {
        wec = e.code();
      }
    }
    if (wec == asio::error::operation_aborted) {
      ec = wec;
      co_return failure();
    }
    if (wec) {
      failed(i, wec, MetricsCounter::tcp_connect_error, "sending the PROXY header failed");
      continue;
    }
    // The handshake's last ACK went out with the header; the kernel took
    // that quick write for an interactive reply (delayed ACKs): undo that.
    if (cfg.connect.delay_handshake_ack) net::resume_quick_ack(*r->socket);
    record_success(i);
    // Established once the header is out: a failed write is one error, above.
    metrics.add(MetricsCounter::tcp_connect_establish);
    metrics.add(MetricsCounter::tcp_connect_success);
    metrics.add(MetricsCounter::connection_establish);
    metrics.add(MetricsCounter::traffic_out_bytes, initial_data.size());
    if (cfg.shared_logger.enabled(LogLevel::debug))  // the arguments cost two formats
      cfg.shared_logger.logf(LogLevel::debug, id_text, "diverted {} via next proxy {} ({})", upstream,
                             proxy.to_string(), r->peer.address().to_string());
    co_return std::move(*r->socket);
  }
  ec = last ? last : make_error_code(errc::no_next_proxy_available);
  co_return failure();
}

// The operation behind every async_tcp_connect/async_http_forward: State::connect
// on `ex`, its cancellation slot connected to the handler's, the handler
// completed once (co_spawn's own completion never runs inside this call).
void DivertTcpConnector::start_connect(asio::any_io_executor ex, Task task,
                                       SocketHandler handler) const {
  struct Outcome {
    std::error_code ec;
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
asio::awaitable<tcp::socket> DivertTcpConnector::tcp_connect(Task task, std::error_code& ec) const {
  return async_tcp_connect(std::move(task), asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<tcp::socket> DivertTcpConnector::tcp_connect(Task task) const {
  return async_tcp_connect(std::move(task), asio::use_awaitable);
}

asio::awaitable<tcp::socket> DivertTcpConnector::http_forward(Task task,
                                                              std::error_code& ec) const {
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
  std::error_code ec;
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
    std::error_code ec;
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
    Task task, std::string tls_name, asio::ssl::context& ctx, std::error_code& ec) const {
  return async_https_forward(std::move(task), std::move(tls_name), ctx,
                             asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<DivertTcpConnector::TlsStream> DivertTcpConnector::https_forward(
    Task task, std::string tls_name, asio::ssl::context& ctx) const {
  return async_https_forward(std::move(task), std::move(tls_name), ctx, asio::use_awaitable);
}

asio::awaitable<DivertTcpConnector::TlsStream> DivertTcpConnector::State::https(
    std::shared_ptr<State> self, Task task, std::string tls_name, asio::ssl::context& ctx,
    std::error_code& ec, ConnectReport& report) {
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
    std::error_code ignored;
    stream.lowest_layer().close(ignored);
    co_return stream;
  }

  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(ex, cfg.tls_handshake_timeout);
  std::variant<std::tuple<std::error_code>, std::tuple<std::error_code>> res;
  try {
    res = co_await (stream.async_handshake(asio::ssl::stream_base::client,
                                           asio::experimental::as_tuple(asio::use_awaitable)) ||
                    timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable)));
  } catch (const std::system_error& e) {
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
    std::error_code ignored;
    stream.lowest_layer().close(ignored);
  }
  co_return stream;
}

#endif

const ConnectorConfig& DivertTcpConnector::config() const noexcept { return s_->cfg; }
Metrics& DivertTcpConnector::metrics() const noexcept { return s_->metrics; }
std::uint64_t DivertTcpConnector::ejections() const noexcept {
  return s_->ejections.load(std::memory_order_relaxed);
}

std::vector<std::string> DivertTcpConnector::ejected_proxies() const {
  std::vector<std::string> out;
  auto now = now_ns();
  for (std::size_t i = 0; i < s_->health.size(); ++i)
    if (s_->ejected(i, now)) out.push_back(s_->cfg.proxy_addr[i].addr.to_string());
  return out;
}

DivertTcpConnector DivertTcpConnector::Builder::build() const {
  validate_connector_config(cfg_);
  return DivertTcpConnector(std::make_shared<State>(cfg_));
}

}  // namespace divert

// divert/connector.hpp — DivertTcpConnector: the diverting connector a host
// proxy links in, and its Builder.
//
// For each client connection the host hands a Task (client and server
// endpoints, the upstream, maybe a username); the connector picks a next
// proxy from its weighted list, connects to it (happy eyeballs for a domain,
// a bounded retry for an IP literal), sends ONE PROXY v2 header whose TLVs
// carry the upstream (0xE0), the TLS verify name (0xE1, https forward only),
// the username (0xE2, when given) and the task id (0xE3) — in the same write
// as Task::initial_data — and hands back a ready stream.
//
//   auto connector = divert::DivertTcpConnector::builder()
//       .proxy_addr({{"np1.internal:3128", 2.0}, {"10.0.0.7", 1.0}})
//       .proxy_addr_pick_policy(divert::PickPolicy::ketama)
//       .resolver(divert::net::system_resolver())
//       .build();                       // throws divert::config_error
//   connector.async_tcp_connect(task, token);   // any completion token, see below
//   auto stream = co_await connector.tcp_connect(task);  // the coroutine shorthand
//
// Failover: when a next proxy cannot be connected, the next candidate in the
// policy's failover order is tried, up to `proxy_failover` more (default 1).
// Task::initial_data reaches at most one next proxy whole, with one exception:
// a header write that fails part-way (the next proxy resets while data larger
// than the socket's send buffer is being written) fails over and sends it
// whole again, so the first next proxy may have had, and forwarded, a prefix.
// Passive ejection: a next proxy with `eject_after_failures` consecutive
// failures (default 3) is skipped for `eject_duration` (default 10 s), unless
// every next proxy is ejected (then all are tried as if none were).
//
// Errors: the completion's error_code (the stream then unopened); with
// use_awaitable an error throws divert::system_error. Compare it with
// divert::condition (error.hpp) to tell which hop failed. Codes:
// Asio's (connection_refused, timed_out, ...) for the last candidate tried;
// for a domain next proxy the resolver's own code (e.g. host_not_found), or
// divert::errc::resolve_failed when it answered with no usable address;
// errc::header_too_large, and ppv2::errc::invalid_tlv_value for a username
// with a NUL byte or invalid UTF-8 (nothing is connected then); for https forward
// OpenSSL's code or errc::tls_handshake_timeout; asio::error::operation_aborted
// on cancellation. Metrics: escaper.tcp.connect.{attempt,error,timeout} count
// once per next proxy tried (the retries inside one are not counted apart);
// escaper.tcp.connect.establish once the PROXY header is sent (a next proxy
// that connects but fails the header's write counts as one error, no establish).
// Cancellation: the handler's cancellation slot (with use_awaitable, the
// awaiting coroutine's) is honoured; every socket opened for the call is
// closed before it completes.
//
// Upstream status reply (divert's own key `next_proxy_status_reply`, default
// false): the header also carries TLV 0xE7 = 0x01, and the next proxy, having
// tried the upstream, answers with 8 bytes ("DVT1", status, 0, connect ms)
// before any upstream byte. The connector reads exactly those 8 bytes, never
// one more, within tcp_connect.each_timeout (default 30 s) from the end of the
// header's write. Status 0 hands the stream back. Another status is the
// upstream's failure: errc::upstream_refused, upstream_timed_out,
// upstream_unreachable, upstream_resolve_failed, upstream_denied or
// upstream_failed_other (condition::upstream_failed); no other next proxy is
// tried (the upstream is the problem) and the next proxy is not held at fault
// (no ejection; escaper.tcp.connect.establish counted, connection.establish
// not). A reply that is not one (wrong magic or reserved byte, the next proxy
// closing early, nothing within the timeout) is errc::bad_status_reply, a
// failure of that next proxy: counted as a connect error (a timeout when
// silent), fed to passive ejection, and the next candidate is tried — only
// when Task::initial_data is empty: that data went out with the header and
// may already be at the upstream (a next proxy ignoring 0xE7 forwards it at
// once; a divert receiver after its reply, which may come after the timeout),
// so with initial data a bad reply ends the connect (bad_status_reply, the
// other candidates not tried) rather than send it to the upstream twice. No
// byte of a bad reply reaches the host. Turn it on only for next proxies that
// speak it: one that ignores 0xE7 (HAProxy accept-proxy) never answers, and
// every connect then fails with bad_status_reply after the timeout.
//
// Live operations: reconfigure(builder) swaps the configuration in place
// (tasks in flight finish on the one they started with; next proxies that
// stay keep their counters, ejection and health state), metrics_snapshot()
// adds per-next-proxy counters and gauges to the metrics, and
// start_health_checks(ex) probes every next proxy with a PROXY v2 LOCAL
// header (health_check key) until stop().
//
// Thread-safety: DivertTcpConnector is a cheap, copyable handle to shared
// state (the current configuration, metrics, per-next-proxy state); all its
// methods may be called concurrently from any thread and executor, and every
// copy of a handle sees the same state (a reconfigure through one is seen by
// all). The returned stream uses the executor passed, else the handler's (see
// "Asynchronous operations" below). A Builder is not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "divert/asio/any_io_executor.hpp"
#include "divert/asio/async_result.hpp"
#include "divert/asio/awaitable.hpp"
#include "divert/asio/execution/executor.hpp"
#include "divert/asio/ip/tcp.hpp"
#include "divert/asio/is_executor.hpp"

#include "divert/asio.hpp"
#include "divert/config_value.hpp"
#include "divert/detail/erased_handler.hpp"
#include "divert/error.hpp"
#include "divert/export.hpp"
#include "divert/health_check.hpp"
#include "divert/logger.hpp"
#include "divert/metrics.hpp"
#include "divert/net/options.hpp"
#include "divert/net/resolver.hpp"
#include "divert/relay.hpp"
#include "divert/select/policy.hpp"
#include "divert/speed_limit.hpp"
#include "divert/task.hpp"
#include "divert/upstream.hpp"

#if defined(DIVERT_WITH_TLS)
#include "divert/asio/ssl/context.hpp"
#include "divert/asio/ssl/stream.hpp"
#endif

namespace divert {

// Everything the connector is configured with. Field names are g3proxy divert_tcp's
// keys (divert_tcp); the ones below the line are divert's own additions.
struct ConnectorConfig {
  // Required; default port 3128. A domain next proxy is resolved through
  // `resolver` on every connect (and every health-check probe): the
  // connector caches no answer, so new connections follow the name's
  // answers as they change. How long an answer lives is the resolver's
  // business (system_resolver(): getaddrinfo each time, so the system's
  // cache, e.g. nscd or systemd-resolved, and the record's TTL decide).
  std::vector<WeightedUpstreamAddr> proxy_addr;
  PickPolicy proxy_addr_pick_policy = PickPolicy::random;
  std::shared_ptr<net::Resolver> resolver;  // required iff a proxy is a domain
  // resolve_strategy, no_ipv4/6, tcp_connect, happy_eyeballs, tcp_misc_opts,
  // tcp_keepalive, bind_ipv4/6, bind_interface; and divert's delay_handshake_ack, on here
  // (the header is written as soon as the connect completes, so the
  // handshake's last ACK rides on it: one segment fewer per connection).
  net::ConnectOptions connect = [] {
    net::ConnectOptions o;
    o.delay_handshake_ack = true;
    return o;
  }();
  SpeedLimitConfig tcp_sock_speed_limit;  // applied by relay(); off by default
  std::map<std::string, std::string> extra_metrics_tags;
  Logger shared_logger;         // silent by default
  std::string name = "divert";  // the metrics' escaper tag
  // ---- divert's own keys
  std::size_t proxy_failover = 1;          // more next proxies tried after a failure
  std::uint32_t eject_after_failures = 3;  // consecutive failures before ejection (0: never)
  std::chrono::milliseconds eject_duration{10'000};
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  bool tls_verify_peer = true;         // https forward: verify chain and name/IP
  std::size_t max_header_size = 4096;  // bytes; the encoder refuses larger headers
  bool header_crc32c = false;          // append a CRC32C TLV to every header
  // Ask each next proxy for the upstream status reply (TLV 0xE7; see
  // "Upstream status reply" above). Only for next proxies that speak it.
  bool next_proxy_status_reply = false;
  // Active health checks (health_check.hpp); off by default.
  HealthCheckConfig health_check;
};

// What a connector call tells the host besides the stream (the forms taking
// divert::with_info): the task id sent in 0xE3 (Task::task_id, or the one
// generated) and the next proxy used. On failure: the task id, the last next
// proxy tried (none when nothing was tried, e.g. a Task refused before
// connecting) and no endpoint. A value: nothing in it refers to the call.
struct DivertInfo {
  TaskId task_id{};
  std::optional<UpstreamAddr> next_proxy;         // as configured in proxy_addr
  asio::ip::tcp::endpoint next_proxy_endpoint{};  // the address connected to (success only)
};

// Tag selecting the forms whose completion also carries a DivertInfo.
struct with_info_t {
  explicit with_info_t() = default;
};
inline constexpr with_info_t with_info{};

namespace detail {
template <class T>
concept IoExecutor = asio::execution::is_executor<T>::value || asio::is_executor<T>::value;
}  // namespace detail

class DIVERT_EXPORT DivertTcpConnector {
 public:
  class Builder;
  static Builder builder();

  // ---- Asynchronous operations (universal completion tokens)
  //
  // Each is an Asio initiating function: pass a callback, asio::use_future,
  // asio::use_awaitable, divert::detail::deferred, as_tuple(...),
  // redirect_error(...), ... The arguments are copied or moved into the
  // operation when it is initiated (with `deferred`: when the deferred
  // operation is launched): the caller's Task and tls_name may be destroyed
  // at once; the operation also holds the connector's state, so this handle
  // may go first too (a temporary, a configuration reload).
  //
  //   connector.async_tcp_connect(task, token)           -> void(error_code, tcp::socket)
  //   connector.async_tcp_connect(ex, task, token)       (the stream on executor `ex`)
  //   connector.async_tcp_connect(task, with_info, token)
  //       -> void(error_code, tcp::socket, DivertInfo)
  //   connector.async_tcp_connect(ex, task, with_info, token)
  // and the same for async_http_forward, and async_https_forward(..., task,
  // tls_name, ctx, ...) with a TlsStream.
  //
  // Executor: the returned stream (and every socket and timer of the
  // operation) uses `ex` when given, else the handler's associated executor
  // (the coroutine's with use_awaitable, one bound with asio::bind_executor).
  // A handler with no I/O executor of its own (a plain callback, use_future)
  // needs the form taking `ex`: without it the call does not compile. The
  // handler is invoked through its associated executor (falling back to
  // `ex`), never inside the initiating call.
  // Cancellation: the handler's associated cancellation slot is honoured
  // (asio::cancellation_type::terminal, as co_spawn passes it): the operation
  // completes with asio::error::operation_aborted and every socket it opened
  // is closed first.
  // Errors: see the top of this file; compare with divert::condition
  // (next_proxy_failed, upstream_failed, timeout) to tell the hop. On error
  // the stream is not open.
  // Thread-safety: may be called from any thread, concurrently.

  // tcp connect (CONNECT tunnels, port forwarding): the next proxy relays bytes.
  template <class Token>
  auto async_tcp_connect(Task task, Token&& token) const {
    return initiate_socket<false>(std::forward<Token>(token), detail::NoExecutor{},
                                  std::move(task));
  }
  template <detail::IoExecutor Executor, class Token>
  auto async_tcp_connect(const Executor& ex, Task task, Token&& token) const {
    return initiate_socket<false>(std::forward<Token>(token), ex, std::move(task));
  }
  template <class Token>
  auto async_tcp_connect(Task task, with_info_t, Token&& token) const {
    return initiate_socket<true>(std::forward<Token>(token), detail::NoExecutor{}, std::move(task));
  }
  template <detail::IoExecutor Executor, class Token>
  auto async_tcp_connect(const Executor& ex, Task task, with_info_t, Token&& token) const {
    return initiate_socket<true>(std::forward<Token>(token), ex, std::move(task));
  }

  // http forward: as tcp connect; the host then writes the origin-form
  // request (or passes it as Task::initial_data to share the header's write).
  template <class Token>
  auto async_http_forward(Task task, Token&& token) const {
    return initiate_socket<false>(std::forward<Token>(token), detail::NoExecutor{},
                                  std::move(task));
  }
  template <detail::IoExecutor Executor, class Token>
  auto async_http_forward(const Executor& ex, Task task, Token&& token) const {
    return initiate_socket<false>(std::forward<Token>(token), ex, std::move(task));
  }
  template <class Token>
  auto async_http_forward(Task task, with_info_t, Token&& token) const {
    return initiate_socket<true>(std::forward<Token>(token), detail::NoExecutor{}, std::move(task));
  }
  template <detail::IoExecutor Executor, class Token>
  auto async_http_forward(const Executor& ex, Task task, with_info_t, Token&& token) const {
    return initiate_socket<true>(std::forward<Token>(token), ex, std::move(task));
  }

  // Coroutine shorthands: tcp_connect(task) is async_tcp_connect(task,
  // use_awaitable) (throws divert::system_error on failure); the forms taking
  // `ec` are redirect_error(use_awaitable, ec): `ec` must stay alive until the
  // awaitable completes.
  asio::awaitable<asio::ip::tcp::socket> tcp_connect(Task task) const;
  asio::awaitable<asio::ip::tcp::socket> tcp_connect(Task task, error_code& ec) const;

  asio::awaitable<asio::ip::tcp::socket> http_forward(Task task) const;
  asio::awaitable<asio::ip::tcp::socket> http_forward(Task task, error_code& ec) const;

#if defined(DIVERT_WITH_TLS)
  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;
  // https forward: 0xE1 = tls_name, then a TLS client handshake over the
  // diverted stream, bounded by tls_handshake_timeout: SNI for a domain name,
  // none for an IP literal; peer verification (the chain against ctx's trust
  // store, and the host name or IP against tls_name, in the certificate's
  // subjectAltName only: a name only in the subject CN is not accepted, as
  // RFC 6125 and the CA/Browser Forum require) is on unless tls_verify_peer
  // is false. tls_name is canonicalised as 0xE0's host is (UpstreamAddr::
  // try_from_domain: lower case, one trailing dot dropped, RFC 5952 IPv6,
  // IPv4-mapped folded to IPv4); that form is sent, and checked. A name it
  // refuses (empty, a NUL or other bad character, an IPv6 zone index as in
  // "fe80::1%1") is asio::error::invalid_argument before anything is
  // connected. Task and tls_name are taken by value; `ctx` must outlive the
  // stream. A failed handshake reports OpenSSL's code
  // (asio::error::get_ssl_category(), e.g. "certificate verify failed"); no
  // handshake within tls_handshake_timeout reports errc::tls_handshake_timeout.
  // Task::initial_data is refused here (it would precede the TLS handshake):
  // asio::error::invalid_argument. Completion: void(error_code, TlsStream)
  // (and DivertInfo with with_info); executor and cancellation as above.
  template <class Token>
  auto async_https_forward(Task task, std::string tls_name, asio::ssl::context& ctx,
                           Token&& token) const {
    return initiate_tls<false>(std::forward<Token>(token), detail::NoExecutor{}, std::move(task),
                               std::move(tls_name), ctx);
  }
  template <detail::IoExecutor Executor, class Token>
  auto async_https_forward(const Executor& ex, Task task, std::string tls_name,
                           asio::ssl::context& ctx, Token&& token) const {
    return initiate_tls<false>(std::forward<Token>(token), ex, std::move(task), std::move(tls_name),
                               ctx);
  }
  template <class Token>
  auto async_https_forward(Task task, std::string tls_name, asio::ssl::context& ctx, with_info_t,
                           Token&& token) const {
    return initiate_tls<true>(std::forward<Token>(token), detail::NoExecutor{}, std::move(task),
                              std::move(tls_name), ctx);
  }
  template <detail::IoExecutor Executor, class Token>
  auto async_https_forward(const Executor& ex, Task task, std::string tls_name,
                           asio::ssl::context& ctx, with_info_t, Token&& token) const {
    return initiate_tls<true>(std::forward<Token>(token), ex, std::move(task), std::move(tls_name),
                              ctx);
  }
  // Coroutine shorthands, as for tcp_connect.
  asio::awaitable<TlsStream> https_forward(Task task, std::string tls_name,
                                           asio::ssl::context& ctx) const;
  asio::awaitable<TlsStream> https_forward(Task task, std::string tls_name, asio::ssl::context& ctx,
                                           error_code& ec) const;
#endif

  // Relays client <-> stream (see relay.hpp) with the configured
  // tcp_sock_speed_limit (upload = client -> next proxy) and counts
  // escaper.traffic.{out,in}.bytes. The operation owns both streams (moved
  // in; closed when it ends) and a copy of this handle. Completion:
  // void(error_code ec, RelayResult r), ec == r.error (empty when both
  // directions reached EOF): with use_awaitable an error throws; use
  // as_tuple(use_awaitable) to keep the byte counts then. The handler is
  // invoked through its associated executor; its cancellation slot is
  // passed to the relay. `options` other than speed_limit and metrics are
  // the caller's (idle_timeout, buffer_size, ...). Throws config_error (an
  // invalid speed limit) before anything starts.
  template <class ClientStream, class ProxyStream, class Token>
  auto async_relay(ClientStream client, ProxyStream stream, RelayOptions options,
                   Token&& token) const {
    options.speed_limit = speed_limit();
    options.metrics = &metrics();
    return asio::async_initiate<Token, void(divert::error_code, RelayResult)>(
        [](auto handler, DivertTcpConnector self, ClientStream client, ProxyStream stream,
           RelayOptions options) {
          auto io_ex = stream.get_executor();
          using Handler = decltype(handler);
          divert::async_relay(std::move(client), std::move(stream), options,
                              detail::ErrorFirst<Handler, DivertTcpConnector>(
                                  std::move(handler), std::move(self), io_ex));
        },
        token, *this, std::move(client), std::move(stream), std::move(options));
  }
  template <class ClientStream, class ProxyStream, class Token>
  auto async_relay(ClientStream client, ProxyStream stream, Token&& token) const {
    return async_relay(std::move(client), std::move(stream), RelayOptions{},
                       std::forward<Token>(token));
  }

  // The coroutine form over streams the caller keeps (references): as
  // async_relay, completing with the RelayResult (never throws for I/O
  // errors). The awaitable holds a copy of this handle (the metrics stay
  // alive); `client` and `stream` must outlive it.
  template <class ClientStream, class ProxyStream>
  asio::awaitable<RelayResult> relay(ClientStream& client, ProxyStream& stream,
                                     RelayOptions options = {}) const {
    return relay_holding(*this, client, stream, std::move(options));
  }

  // A copy of the current configuration (reconfigure() may replace it at any
  // time, so no reference is handed out).
  ConnectorConfig config() const;
  // The current tcp_sock_speed_limit (what relay()/async_relay() apply),
  // without copying the whole configuration: for hosts that relay themselves.
  SpeedLimitConfig speed_limit() const;
  // The connector's metrics: the same object for the connector's whole life,
  // across reconfigure() (a host may keep &metrics()). Its snapshot() has no
  // per-next-proxy part; metrics_snapshot() has.
  Metrics& metrics() const noexcept;
  // metrics().snapshot() plus, in MetricsSnapshot::proxies, one entry per
  // next proxy of the current configuration, in proxy_addr order, labelled by
  // its canonical address (UpstreamAddr::to_string()): the counters
  // escaper.next_proxy.{attempt,establish,error,timeout} (counted as
  // escaper.tcp.connect.* are, per next proxy tried; kept across
  // reconfigure() while the address stays, never decreasing), `up` (false
  // while an active health check marks it down), `ejected` (passive
  // ejection in force now) and `connects_in_flight` (attempts on it in
  // progress). A next proxy removed by reconfigure() leaves the snapshot (a
  // re-added one starts from zero). Thread-safe; the counters are read one
  // by one (relaxed), not as one atomic picture.
  MetricsSnapshot metrics_snapshot() const;
  // Next proxies currently ejected (by canonical address), for diagnostics.
  std::vector<std::string> ejected_proxies() const;
  // Total number of ejections so far (across reconfigure()).
  std::uint64_t ejections() const noexcept;

  // Replaces the configuration with `builder`'s for the operations initiated
  // afterwards; those initiated before (running or not yet run) finish on
  // the configuration current when they were initiated. Validated exactly as
  // build() (same errors); on config_error nothing changes and the old
  // configuration keeps serving. Next proxies kept (same canonical address,
  // whatever their weight or position) keep their counters, passive-ejection
  // state and health-check state; removed ones are forgotten (added back
  // later, they start afresh). The metrics' identity cannot change: a `name`
  // or `extra_metrics_tags` other than the current ones is refused with
  // config_error naming the key (build a new connector for that).
  // Health checks, when started: they follow the new next-proxy list (kept
  // addresses keep their rise/fall state and `down` mark); when
  // health_check, the connect options or the resolver change, they start
  // again with the new settings (every next proxy up until its probes say
  // otherwise); a reconfigure disabling health_check stops them and one
  // enabling it starts them on the executor given to start_health_checks().
  // Thread-safe: any thread, concurrently with connects, relays and other
  // reconfigures (they apply one after the other).
  void reconfigure(const Builder& builder) const;

  // Active health checks (see the health_check key, health_check.hpp): each
  // next proxy is probed on `ex` every health_check.interval, and one found
  // down is left out of selection as an ejected one is (metrics_snapshot():
  // `up` false). While health_check is disabled nothing is probed, but `ex`
  // is kept: a reconfigure() enabling it starts the probes there. Calling it
  // again before stop() changes nothing. The probes stop with stop() or when
  // the connector's last handle is gone; call stop() before the execution
  // context behind `ex` is destroyed. Thread-safe.
  void start_health_checks(asio::any_io_executor ex) const;
  // Stops the health checks: pending probes are cancelled, no mark changes
  // once it returns, and the `down` marks are lifted (selection tries those
  // next proxies again). Idempotent; connects keep working;
  // start_health_checks() may be called again. There are no other timers:
  // domain next proxies are resolved on every connect (see proxy_addr).
  // Thread-safe.
  void stop() const;

 private:
  struct State;
  explicit DivertTcpConnector(std::shared_ptr<State> s) : s_(std::move(s)) {}

  // The compiled operations: start on `ex`, complete `handler` once.
  using SocketHandler =
      detail::ErasedHandler<divert::error_code, asio::ip::tcp::socket, DivertInfo>;
  void start_connect(asio::any_io_executor ex, Task task, SocketHandler handler) const;
  template <bool WithInfo, class Token, class Executor>
  auto initiate_socket(Token&& token, const Executor& ex, Task task) const {
    using Sig =
        std::conditional_t<WithInfo, void(divert::error_code, asio::ip::tcp::socket, DivertInfo),
                           void(divert::error_code, asio::ip::tcp::socket)>;
    return asio::async_initiate<Token, Sig>(
        [](auto handler, DivertTcpConnector self, Executor ex, Task task) {
          auto io_ex = detail::io_executor_for(handler, ex);
          self.start_connect(
              io_ex, std::move(task),
              SocketHandler(std::bool_constant<!WithInfo>(), std::move(handler), io_ex));
        },
        token, *this, ex, std::move(task));
  }
#if defined(DIVERT_WITH_TLS)
  using TlsHandler = detail::ErasedHandler<divert::error_code, TlsStream, DivertInfo>;
  void start_https(asio::any_io_executor ex, Task task, std::string tls_name,
                   asio::ssl::context& ctx, TlsHandler handler) const;
  template <bool WithInfo, class Token, class Executor>
  auto initiate_tls(Token&& token, const Executor& ex, Task task, std::string tls_name,
                    asio::ssl::context& ctx) const {
    using Sig = std::conditional_t<WithInfo, void(divert::error_code, TlsStream, DivertInfo),
                                   void(divert::error_code, TlsStream)>;
    return asio::async_initiate<Token, Sig>(
        [](auto handler, DivertTcpConnector self, Executor ex, Task task, std::string tls_name,
           asio::ssl::context* ctx) {
          auto io_ex = detail::io_executor_for(handler, ex);
          self.start_https(io_ex, std::move(task), std::move(tls_name), *ctx,
                           TlsHandler(std::bool_constant<!WithInfo>(), std::move(handler), io_ex));
        },
        token, *this, ex, std::move(task), std::move(tls_name), &ctx);
  }
#endif

  // relay()'s coroutine; `self` keeps the state alive in its frame.
  template <class ClientStream, class ProxyStream>
  static asio::awaitable<RelayResult> relay_holding(DivertTcpConnector self, ClientStream& client,
                                                    ProxyStream& stream, RelayOptions options) {
    options.speed_limit = self.speed_limit();
    options.metrics = &self.metrics();
    co_return co_await divert::relay(client, stream, options);
  }
  std::shared_ptr<State> s_;
};

class DIVERT_EXPORT DivertTcpConnector::Builder {
 public:
  Builder() = default;

  // Typed setters, one per key of g3proxy's divert_tcp.
  Builder& proxy_addr(std::string_view addr);                    // one address, weight 1
  Builder& proxy_addr(std::vector<WeightedUpstreamAddr> addrs);  // weighted list
  Builder& proxy_addr_pick_policy(PickPolicy p);
  Builder& pick_policy(PickPolicy p) { return proxy_addr_pick_policy(p); }
  Builder& resolver(std::shared_ptr<net::Resolver> r);
  Builder& resolve_strategy(net::ResolveStrategy s);
  Builder& tcp_sock_speed_limit(SpeedLimitConfig s);
  Builder& no_ipv4(bool v);
  Builder& no_ipv6(bool v);
  Builder& tcp_connect(net::TcpConnectConfig c);
  Builder& happy_eyeballs(net::HappyEyeballsConfig c);
  Builder& tcp_misc_opts(net::TcpMiscOpts o);
  Builder& tcp_keepalive(net::TcpKeepalive k);
  Builder& bind_ipv4(asio::ip::address a);
  Builder& bind_ipv6(asio::ip::address a);
  // SO_BINDTODEVICE on the sockets to the next proxy (Linux; g3's bind_interface).
  Builder& bind_interface(std::string name);
  Builder& extra_metrics_tags(std::map<std::string, std::string> tags);
  Builder& shared_logger(Logger l);
  Builder& logger(Logger l) { return shared_logger(std::move(l)); }
  // divert's own keys.
  Builder& name(std::string n);
  Builder& proxy_failover(std::size_t n);
  Builder& passive_ejection(std::uint32_t after_failures, std::chrono::milliseconds duration);
  Builder& tls_handshake_timeout(std::chrono::milliseconds t);
  Builder& tls_verify_peer(bool on);
  Builder& max_header_size(std::size_t bytes);
  Builder& header_crc32c(bool on);
  // Upstream status reply (see above); default off.
  Builder& next_proxy_status_reply(bool on);
  // TCP_QUICKACK off before connect (see net::ConnectOptions); default on.
  Builder& delay_handshake_ack(bool on);
  // Active health checks (health_check.hpp); checked by build() with validate().
  Builder& health_check(HealthCheckConfig c);
  // Key `tcp_fast_open` (bool): TCP Fast Open to the next proxy, the PROXY
  // header and initial data in the SYN once a cookie is cached (see
  // net::ConnectOptions::tcp_fast_open: silent fallback where the kernel or
  // the next proxy refuses). Default off: on the chain benchmark it measured
  // level with it off (docs/performance.md).
  Builder& tcp_fast_open(bool on);

  // Names a resolver for set("resolver", NAME). "system" is always known.
  Builder& register_resolver(std::string name, std::shared_ptr<net::Resolver> r);

  // String keys with g3proxy divert_tcp's names and value syntax (see config_value.hpp):
  //   set("proxy_addr", "[np1:3128, {addr: 10.0.0.7, weight: 2}]")
  //   set("tcp_connect.max_retry", "2"), set("happy_eyeballs", "{connection_attempt_delay: 250ms}")
  // Keys are case-insensitive, '-' equals '_'; nested fields as "key.field".
  // Throws config_error naming the key and the value; an unknown key or field is an error.
  Builder& set(std::string_view key, std::string_view value);
  Builder& set(std::string_view key, const std::string& value) {
    return set(key, std::string_view(value));
  }
  Builder& set(std::string_view key, const char* value) {
    return set(key, std::string_view(value));
  }
  Builder& set(std::string_view key, const ConfigValue& value);

  // Validates as g3proxy's divert_tcp does, plus divert's own checks, and
  // builds. Throws config_error on: no proxy_addr; a domain proxy without a
  // resolver; both no_ipv4 and no_ipv6; an IPv4 proxy with no_ipv4 (and the
  // IPv6 twin); a resolve strategy that contradicts them; a bad bind_interface
  // (empty, over 15 bytes, no such interface); each_timeout <= 0; a speed limit
  // with shift above 12 or a zero limit; a bad extra_metrics_tags name or
  // value; max_header_size outside 16..65551; eject_duration <= 0 with
  // ejection on; tls_handshake_timeout <= 0; a health_check field out of
  // range (HealthCheckConfig::validate).
  DivertTcpConnector build() const;

  const ConnectorConfig& config() const noexcept { return cfg_; }

 private:
  ConnectorConfig cfg_;
  std::map<std::string, std::shared_ptr<net::Resolver>> resolvers_;
};

}  // namespace divert

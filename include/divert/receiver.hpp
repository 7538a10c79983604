// divert/receiver.hpp — the receiving side as a library part: a next proxy
// embedded in a host. One call serves one diverted connection:
//
//   divert::ReceiverOptions o;
//   o.trust.add("10.0.0.0/8");                         // who may send headers
//   o.destinations.allow(divert::net::Cidr::parse("192.168.0.0/16"));
//   divert::Receiver receiver(std::move(o));
//   receiver.guard_listen(acceptor.local_endpoint());  // the loop guard
//   receiver.async_serve(std::move(socket), [](divert::ServeReport r) { log(r); });
//
// Serving one connection, in order (the README's "The receiving side"):
//   1. trust: the peer must be in options.trust, checked before a byte is
//      read (IPv4-mapped peers match IPv4 entries); else closed: untrusted.
//   2. one PROXY header under options.header.timeout (async_read_proxy_header);
//      a bad, late or truncated header: bad_header, closed.
//   3. LOCAL: a health check (the PROXY spec's use of it): closed cleanly
//      (FIN, then the peer's FIN awaited up to close_linger): health_check.
//   4. TLV 0xE0 names the upstream. An IP literal is checked as it is; a name
//      is resolved (both families, resolve_timeout) and EVERY address is
//      checked against options.destinations; one denied address denies the
//      name. Denied by default: loopback, link-local, unspecified, multicast,
//      and the listen endpoints given to guard_listen() (no allow rule lifts
//      those: the loop guard). A 0xE0 that is no valid host (e.g. "127.1",
//      "2130706433", a zone index) is denied too.
//   5. happy-eyeballs connect to exactly the checked addresses (no second
//      lookup, so no rebinding between check and connect).
//   6. status reply: when the header carries TLV 0xE7 = 0x01, the 8 bytes of
//      divert/connector.hpp "Upstream status reply" are written before any upstream
//      byte; on a failure status the connection is closed after them.
//   7. the bytes read past the header go to the upstream, then relay() with
//      options.relay (idle timeout 300 s by default).
// Every step's outcome is in the ServeReport the operation completes with;
// nothing is thrown for network input.
// Thread-safety: TrustList and ReceiverOptions are values. A Receiver is a
// cheap handle to shared, immutable options: configure it (guard_listen)
// before the first async_serve, then serve from any thread. Each serve runs on
// the client socket's executor, which must not run its handlers concurrently
// (an io_context with one thread, or a strand): the lookup and the relay
// share state without locks.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>
#include "divert/asio/co_spawn.hpp"
#include "divert/asio/ip/tcp.hpp"

#include "divert/asio.hpp"
#include "divert/detail/spawn_for_handler.hpp"
#include "divert/export.hpp"
#include "divert/net/destination_policy.hpp"
#include "divert/net/options.hpp"
#include "divert/net/resolver.hpp"
#include "divert/ppv2/read_header.hpp"
#include "divert/ppv2/status_reply.hpp"
#include "divert/relay.hpp"

namespace divert {

// The peers allowed to send PROXY headers. Empty: nobody is trusted.
class DIVERT_EXPORT TrustList {
 public:
  TrustList() = default;
  // 127.0.0.0/8 and ::1: a receiver whose senders run on the same host.
  static TrustList loopback();

  // Adds a network (see net::Cidr::parse for the forms: "10.0.0.0/8",
  // "2001:db8::/32", "::ffff:10.0.0.0/104" = 10.0.0.0/8, a bare address).
  // Throws config_error naming `key` and the value.
  TrustList& add(std::string_view cidr, std::string_view key = "trust");
  TrustList& add(net::Cidr network);

  // True when `peer` (IPv4-mapped IPv6 folded to IPv4) is in one network.
  bool trusts(const asio::ip::address& peer) const noexcept;
  const std::vector<net::Cidr>& networks() const noexcept { return networks_; }
  bool empty() const noexcept { return networks_.empty(); }

 private:
  std::vector<net::Cidr> networks_;
};

// How serving one connection ended.
enum class ServeOutcome : std::uint8_t {
  connected,       // upstream reached and relayed (error: what ended the relay, if anything)
  health_check,    // a LOCAL header: closed cleanly
  untrusted,       // peer not in the trust list: closed before reading
  bad_header,      // no valid header in time (error says why)
  denied,          // the destination policy refused the upstream
  refused,         // the upstream refused the connection
  timed_out,       // connecting to the upstream timed out
  unreachable,     // network or host unreachable
  resolve_failed,  // the upstream's name did not resolve here (or not in time)
  failed,          // any other connect or I/O failure (error says why)
};
inline constexpr std::size_t kServeOutcomeCount = 10;
// "connected", "health_check", "untrusted", ... (the enumerator's name).
DIVERT_EXPORT std::string_view to_string(ServeOutcome outcome) noexcept;
// The status reply byte for an outcome that ends at the upstream step
// (connected, denied, refused, timed_out, unreachable, resolve_failed, failed -> other).
DIVERT_EXPORT ppv2::UpstreamStatus upstream_status(ServeOutcome outcome) noexcept;

// Everything a host may log or count about one served connection.
struct ServeReport {
  ServeOutcome outcome = ServeOutcome::failed;
  error_code error;              // why (empty for a clean relay or a health check)
  asio::ip::tcp::endpoint peer;  // the real TCP peer (the PROXY sender)
  // From the header (empty when it was not read):
  bool header_read = false;
  bool local = false;    // LOCAL command
  std::string src, dst;  // "192.0.2.1:40000", "[2001:db8::1]:443", a unix path, or ""
                         // (UNSPEC: the real endpoints apply, see `peer`)
  std::string upstream;  // 0xE0 as sent
  std::optional<std::string> tls_name, username;  // 0xE1, 0xE2
  std::optional<ppv2::Uuid> task_id;              // 0xE3
  bool status_reply_requested = false;            // 0xE7 = 0x01
  std::optional<ppv2::UpstreamStatus> status_reply_sent;
  // Upstream step:
  std::optional<net::DestinationPolicy::Denial> denial;  // denied: which address and why
  asio::ip::tcp::endpoint upstream_endpoint;             // connected: the address reached
  std::chrono::nanoseconds connect_time{0};              // lookup + connect
  std::uint64_t bytes_up = 0;    // client -> upstream (the bytes read past the header included)
  std::uint64_t bytes_down = 0;  // upstream -> client (the status reply not included)
};

// Counters over served connections (atomics; record() and the getters may be
// called from any thread).
class DIVERT_EXPORT ReceiverMetrics {
 public:
  // Kinds of upstream connect errors.
  enum class ConnectError : std::uint8_t { refused, timed_out, unreachable, resolve_failed, other };
  static constexpr std::size_t kConnectErrorCount = 5;

  void record(const ServeReport& report) noexcept;
  std::uint64_t connections(ServeOutcome outcome) const noexcept;
  std::uint64_t connect_errors(ConnectError kind) const noexcept;
  std::uint64_t bytes_up() const noexcept { return bytes_up_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_down() const noexcept { return bytes_down_.load(std::memory_order_relaxed); }
  std::uint64_t status_replies() const noexcept {
    return status_replies_.load(std::memory_order_relaxed);
  }
  // StatsD lines, each "<prefix>.<name>:<value>|c\n" (no "." when prefix is empty):
  //   receiver.connection.<outcome>         connections by outcome
  //   receiver.upstream.connect_error.<kind> refused, timed_out, unreachable, resolve_failed, other
  //   receiver.traffic.up.bytes / receiver.traffic.down.bytes
  //   receiver.status_reply.sent
  std::string format_statsd(std::string_view prefix) const;

 private:
  std::array<std::atomic<std::uint64_t>, kServeOutcomeCount> outcomes_{};
  std::array<std::atomic<std::uint64_t>, kConnectErrorCount> connect_errors_{};
  std::atomic<std::uint64_t> bytes_up_{0}, bytes_down_{0}, status_replies_{0};
};

// Prometheus text exposition format 0.0.4 (as format_prometheus(MetricsSnapshot)
// in metrics.hpp: HELP and TYPE lines, names prefix + "_" + ...):
//   <prefix>_receiver_connection_total{outcome="connected"|"health_check"|...}
//   <prefix>_receiver_upstream_connect_error_total{kind="refused"|...|"other"}
//   <prefix>_receiver_traffic_up_bytes_total, <prefix>_receiver_traffic_down_bytes_total
//   <prefix>_receiver_status_reply_sent_total
// Every outcome and kind is listed, zeros included. Throws std::invalid_argument
// for a prefix that is not empty or [A-Za-z_:][A-Za-z0-9_:]*.
DIVERT_EXPORT std::string format_prometheus(const ReceiverMetrics& metrics,
                                            std::string_view prefix = "divert");

struct ReceiverOptions {
  TrustList trust;                      // empty: every connection is untrusted
  net::DestinationPolicy destinations;  // the defaults, no rules (see destination_policy.hpp)
  ppv2::ReadHeaderOptions header{};     // 5 s for the whole header, 4096 bytes at most
  std::chrono::milliseconds resolve_timeout{5000};                   // both families of a name
  net::ConnectOptions connect = default_connect_options();           // must pass validate()
  std::shared_ptr<net::Resolver> resolver = net::system_resolver();  // nullptr: names fail
  RelayOptions relay = default_relay_options();                      // idle timeout 300 s
  // After a failure status reply or a health check: how long to wait for the
  // peer's FIN after ours before closing (so the reply is not lost to a RST).
  std::chrono::milliseconds close_linger{1000};
  std::shared_ptr<ReceiverMetrics> metrics;  // optional: every report is recorded

  // Connect attempts of 10 s each, no retry: one address per family is tried
  // (connect.tcp_connect.max_retry = 0; which one: connect.resolve_strategy.pick).
  // Raise tcp_connect.max_retry to try more of a name's addresses.
  static net::ConnectOptions default_connect_options();
  // idle_timeout 300 s, otherwise RelayOptions{}.
  static RelayOptions default_relay_options();
};

class DIVERT_EXPORT Receiver {
 public:
  // Throws config_error for invalid connect or relay options.
  explicit Receiver(ReceiverOptions options);

  // Loop guard: never connect to `listen` (one of this host's listening
  // endpoints). A wildcard address guards its port on loopback and on every
  // interface address (net::interface_addresses()). Call before serving.
  Receiver& guard_listen(const asio::ip::tcp::endpoint& listen);

  const ReceiverOptions& options() const noexcept { return *state_; }

  // Serves one diverted connection (steps at the top), owning `client`.
  // Completion signature void(ServeReport); any completion token. The
  // handler's cancellation slot stops the operation (the report then says
  // failed with asio::error::operation_aborted; both sockets are closed).
  // The peer is taken from the socket (getpeername); pass it when known.
  template <class CompletionToken>
  auto async_serve(asio::ip::tcp::socket client, CompletionToken&& token) const {
    error_code ec;
    auto peer = client.remote_endpoint(ec);
    return async_serve(std::move(client), peer, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_serve(asio::ip::tcp::socket client, asio::ip::tcp::endpoint peer,
                   CompletionToken&& token) const {
    return asio::async_initiate<CompletionToken, void(ServeReport)>(
        [](auto handler, std::shared_ptr<const ReceiverOptions> state, asio::ip::tcp::socket client,
           asio::ip::tcp::endpoint peer) {
          auto ex = client.get_executor();
          detail::spawn_for_handler(ex, serve_one(std::move(state), std::move(client), peer),
                                    std::move(handler));
        },
        token, state_, std::move(client), peer);
  }

 private:
  static asio::awaitable<ServeReport> serve_one(std::shared_ptr<const ReceiverOptions> state,
                                                asio::ip::tcp::socket client,
                                                asio::ip::tcp::endpoint peer);
  std::shared_ptr<ReceiverOptions> state_;
};

}  // namespace divert

#include "divert/receiver.hpp"

#include "divert/asio/as_tuple.hpp"
#include "divert/asio/post.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/this_coro.hpp"
#include "divert/asio/use_awaitable.hpp"
#include "divert/asio/write.hpp"

#include "divert/error.hpp"
#include "divert/net/connect.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/upstream.hpp"

namespace divert {

using asio::ip::tcp;

std::string_view to_string(ServeOutcome o) noexcept {
  switch (o) {
    case ServeOutcome::connected:
      return "connected";
    case ServeOutcome::health_check:
      return "health_check";
    case ServeOutcome::untrusted:
      return "untrusted";
    case ServeOutcome::bad_header:
      return "bad_header";
    case ServeOutcome::denied:
      return "denied";
    case ServeOutcome::refused:
      return "refused";
    case ServeOutcome::timed_out:
      return "timed_out";
    case ServeOutcome::unreachable:
      return "unreachable";
    case ServeOutcome::resolve_failed:
      return "resolve_failed";
    case ServeOutcome::failed:
      return "failed";
  }
  return "unknown";
}

ppv2::UpstreamStatus upstream_status(ServeOutcome o) noexcept {
  using S = ppv2::UpstreamStatus;
  switch (o) {
    case ServeOutcome::connected:
      return S::connected;
    case ServeOutcome::refused:
      return S::refused;
    case ServeOutcome::timed_out:
      return S::timed_out;
    case ServeOutcome::unreachable:
      return S::unreachable;
    case ServeOutcome::resolve_failed:
      return S::resolve_failed;
    case ServeOutcome::denied:
      return S::denied;
    default:
      return S::other;
  }
}

net::ConnectOptions ReceiverOptions::default_connect_options() {
  net::ConnectOptions o;
  o.tcp_connect.each_timeout = std::chrono::seconds(10);
  o.tcp_connect.max_retry = 0;
  return o;
}

RelayOptions ReceiverOptions::default_relay_options() {
  RelayOptions o;
  o.idle_timeout = std::chrono::seconds(300);
  return o;
}

Receiver::Receiver(ReceiverOptions options)
    : state_(std::make_shared<ReceiverOptions>(std::move(options))) {
  state_->connect.validate();
  state_->relay.speed_limit.validate();
}

Receiver& Receiver::guard_listen(const tcp::endpoint& listen) {
  const auto a = net::unmap_v4(listen.address());
  state_->destinations.guard(a, listen.port());
  if (a.is_unspecified())
    for (const auto& own : net::interface_addresses())
      state_->destinations.guard(own, listen.port());
  return *this;
}

namespace {

constexpr auto use_tuple = divert::detail::as_tuple(asio::use_awaitable);

// Answers with the addresses the destination policy has checked, so that the
// connect goes exactly where the check looked (no second lookup to rebind).
class CheckedAddresses final : public net::Resolver {
 public:
  explicit CheckedAddresses(std::vector<asio::ip::address> a) : addresses_(std::move(a)) {}
  void async_resolve(const std::string&, net::AddressFamily family,
                     const asio::any_io_executor& executor, Handler handler) override {
    std::vector<asio::ip::address> out;
    for (const auto& a : addresses_)
      if (a.is_v4() == (family == net::AddressFamily::ipv4)) out.push_back(a);
    asio::post(executor, [h = std::move(handler), out = std::move(out)]() mutable {
      h(error_code{}, std::move(out));
    });
  }

 private:
  std::vector<asio::ip::address> addresses_;
};

std::string endpoint_text(const ppv2::Endpoint& e) {
  if (e.kind == ppv2::Endpoint::Kind::unix_path) return std::string(e.path);
  if (!e.is_ip()) return "";
  auto ip = e.ip_string();
  return (e.kind == ppv2::Endpoint::Kind::ipv6 ? "[" + ip + "]" : ip) + ":" +
         std::to_string(e.port);
}

ServeOutcome outcome_of_connect_error(const error_code& ec) noexcept {
  if (ec == asio::error::connection_refused) return ServeOutcome::refused;
  if (ec == asio::error::timed_out || ec == std::errc::timed_out) return ServeOutcome::timed_out;
  if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable)
    return ServeOutcome::unreachable;
  return ServeOutcome::failed;
}

// FIN first, then wait up to `linger` for the peer's FIN (discarding what it
// sends), then close: a close with unread bytes would send a RST that can
// destroy a status reply the peer has not read yet.
asio::awaitable<void> close_gracefully(tcp::socket& s, std::chrono::milliseconds linger) {
  error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec && linger.count() > 0) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(s.get_executor());
    timer.expires_after(linger);
    std::array<char, 512> sink;
    auto drain = [&]() -> asio::awaitable<void> {
      for (;;) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(sink), use_tuple);
        if (rec) co_return;
      }
    };
    co_await (drain() || timer.async_wait(use_tuple));
  }
  s.close(ec);
}

}  // namespace

asio::awaitable<ServeReport> Receiver::serve_one(std::shared_ptr<const ReceiverOptions> state,
                                                 tcp::socket client, tcp::endpoint peer) {
  // After a cancellation the steps below still close what is open and report:
  // they must not throw at their next co_await.
  co_await asio::this_coro::throw_if_cancelled(false);
  const ReceiverOptions& o = *state;
  ServeReport rep;
  rep.peer = peer;
  auto done = [&](ServeOutcome outcome, error_code ec) {
    rep.outcome = outcome;
    rep.error = ec;
    if (o.metrics) o.metrics->record(rep);
    return std::move(rep);
  };
  error_code ignored;

  // 1. Trust, before a byte is read.
  if (!o.trust.trusts(peer.address())) {
    client.close(ignored);
    co_return done(ServeOutcome::untrusted, errc::untrusted_source);
  }

  // 2. The header.
  auto [hec, got] = co_await ppv2::async_read_proxy_header(client, o.header, use_tuple);
  if (hec) {
    client.close(ignored);
    co_return done(
        hec == asio::error::operation_aborted ? ServeOutcome::failed : ServeOutcome::bad_header,
        hec);
  }
  rep.header_read = true;
  const auto& h = got.header();
  const auto& tlvs = got.divert();
  rep.local = h.command == ppv2::Command::local;
  rep.src = endpoint_text(h.src);
  rep.dst = endpoint_text(h.dst);

  // 3. LOCAL: a health check.
  if (rep.local) {
    co_await close_gracefully(client, o.close_linger);
    co_return done(ServeOutcome::health_check, {});
  }
  if (tlvs.upstream_text) rep.upstream = std::string(*tlvs.upstream_text);
  if (tlvs.tls_name) rep.tls_name = std::string(*tlvs.tls_name);
  if (tlvs.username) rep.username = std::string(*tlvs.username);
  if (tlvs.task_id) rep.task_id = *tlvs.task_id;
  const auto request = tlvs.status_reply;  // TLV 0xE7
  if (request && *request != 0x01) {       // a reply version we cannot give
    client.close(ignored);
    co_return done(ServeOutcome::bad_header, ppv2::errc::invalid_tlv_value);
  }
  rep.status_reply_requested = request.has_value();
  if (!tlvs.upstream) {
    client.close(ignored);
    co_return done(ServeOutcome::bad_header, ppv2::errc::bad_upstream);
  }

  // Ends the connection at the upstream step: the status reply when asked,
  // then a clean close.
  auto fail = [&](ServeOutcome outcome, error_code ec) -> asio::awaitable<ServeReport> {
    if (rep.status_reply_requested) {
      const auto status = upstream_status(outcome);
      const auto bytes =
          ppv2::encode_status_reply({status, ppv2::status_reply_ms(rep.connect_time)});
      auto [wec, n] = co_await asio::async_write(client, asio::buffer(bytes), use_tuple);
      if (!wec) rep.status_reply_sent = status;
    }
    co_await close_gracefully(client, o.close_linger);
    co_return done(outcome, ec);
  };

  // 4. The destination policy on every address of the upstream.
  const auto t0 = std::chrono::steady_clock::now();
  auto target = UpstreamAddr::try_parse(rep.upstream);
  if (!target) co_return co_await fail(ServeOutcome::denied, errc::upstream_denied);
  auto check =
      co_await net::check_destination(o.destinations, *target.addr, o.resolver, o.resolve_timeout);
  if (check.outcome == net::DestinationCheck::Outcome::unresolved) {
    rep.connect_time = std::chrono::steady_clock::now() - t0;
    co_return co_await fail(ServeOutcome::resolve_failed, check.error);
  }
  if (check.outcome == net::DestinationCheck::Outcome::denied) {
    rep.denial = check.denial;
    co_return co_await fail(ServeOutcome::denied, errc::upstream_denied);
  }

  // 5. Happy eyeballs over exactly those addresses.
  auto r = co_await net::happy_eyeballs_connect(
      target.addr->host(), target.addr->port(), o.connect,
      std::make_shared<CheckedAddresses>(std::move(check.addresses)));
  rep.connect_time = std::chrono::steady_clock::now() - t0;
  if (r.error) {
    co_return co_await fail(r.error == asio::error::operation_aborted
                                ? ServeOutcome::failed
                                : outcome_of_connect_error(r.error),
                            r.error);
  }
  tcp::socket upstream = std::move(*r.socket);
  rep.upstream_endpoint = r.peer;

  // 6. The status reply, before any upstream byte.
  if (rep.status_reply_requested) {
    const auto bytes = ppv2::encode_status_reply(
        {ppv2::UpstreamStatus::connected, ppv2::status_reply_ms(rep.connect_time)});
    auto [wec, n] = co_await asio::async_write(client, asio::buffer(bytes), use_tuple);
    if (wec) {
      client.close(ignored);
      upstream.close(ignored);
      co_return done(ServeOutcome::connected, wec);
    }
    rep.status_reply_sent = ppv2::UpstreamStatus::connected;
  }

  // 7. The bytes that came with the header, then the relay.
  auto extra = got.extra();
  if (!extra.empty()) {
    auto [wec, n] =
        co_await asio::async_write(upstream, asio::buffer(extra.data(), extra.size()), use_tuple);
    rep.bytes_up += n;
    if (wec) {
      client.close(ignored);
      upstream.close(ignored);
      co_return done(ServeOutcome::connected, wec);
    }
  }
  auto res = co_await relay(client, upstream, o.relay);
  rep.bytes_up += res.upload_bytes;
  rep.bytes_down += res.download_bytes;
  co_return done(ServeOutcome::connected, res.error);
}

}  // namespace divert

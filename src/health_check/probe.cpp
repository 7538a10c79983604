// One health probe (health_check/probe.hpp): connect, PROXY v2 LOCAL, watch, close.
#include "health_check/probe.hpp"

#include <variant>

#include "divert/asio/as_tuple.hpp"
#include "divert/asio/experimental/awaitable_operators.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/this_coro.hpp"
#include "divert/asio/use_awaitable.hpp"
#include "divert/asio/write.hpp"

#include "divert/net/connect.hpp"
#include "divert/ppv2/encoder.hpp"

namespace divert::health {

namespace {
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto tuple_awaitable = divert::detail::as_tuple(asio::use_awaitable);

// Connects to `target` and writes the LOCAL header.
asio::awaitable<ProbeResult> connect_and_send(const UpstreamAddr& target, const ProbeOptions& o,
                                              std::optional<tcp::socket>& out) {
  ProbeResult r;
  auto copts = o.connect;
  copts.tcp_connect.each_timeout = o.timeout;
  net::ConnectResult c;
  if (target.is_ip()) {
    copts.tcp_connect.max_retry = 0;
    c = co_await net::connect_with_retry(tcp::endpoint(target.ip(), target.port()), copts);
  } else {
    c = co_await net::happy_eyeballs_connect(target.host(), target.port(), copts, o.resolver);
  }
  r.peer = c.peer;
  if (c.error) {
    r.error = c.error;
    co_return r;
  }
  out = std::move(c.socket);
  r.stage = ProbeStage::write;
  static const auto header = local_header();
  auto [ec, n] = co_await asio::async_write(*out, asio::buffer(header), tuple_awaitable);
  r.error = ec;
  if (!ec) r.stage = ProbeStage::watch;
  co_return r;
}

// Reads (and drops) until the watch has a verdict.
asio::awaitable<divert::error_code> watch(tcp::socket& s) {
  std::array<std::uint8_t, 512> sink;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(sink), tuple_awaitable);
    if (watch_verdict(ec)) co_return ec;
  }
}
}  // namespace

std::array<std::uint8_t, 16> local_header() {
  std::array<std::uint8_t, 16> out{};
  ppv2::HeaderSpec spec;
  spec.command = ppv2::Command::local;
  ppv2::encode(spec, out);  // cannot fail: 16 bytes, no TLV
  return out;
}

std::string_view to_string(ProbeStage s) noexcept {
  switch (s) {
    case ProbeStage::connect:
      return "connect";
    case ProbeStage::write:
      return "write";
    case ProbeStage::watch:
      return "watch";
  }
  return "?";
}

std::optional<bool> watch_verdict(const error_code& read_error) noexcept {
  if (!read_error) return std::nullopt;             // bytes from the peer: keep watching
  if (read_error == asio::error::eof) return true;  // a clean close
  return false;                                     // reset, broken pipe, aborted, anything else
}

asio::awaitable<ProbeResult> probe(UpstreamAddr target, ProbeOptions options) {
  using namespace asio::experimental::awaitable_operators;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex, Clock::now() + options.timeout);
  std::optional<tcp::socket> sock;
  ProbeResult r;
  try {
    auto sent =
        co_await (connect_and_send(target, options, sock) || deadline.async_wait(tuple_awaitable));
    if (sent.index() == 1) {  // nothing accepted (or took the header) in time, or cancelled
      auto [timer_error] = std::get<1>(sent);
      r.stage = sock ? ProbeStage::write : ProbeStage::connect;
      r.error = timer_error ? timer_error : divert::error_code(asio::error::timed_out);
      co_return r;
    }
    r = std::get<0>(sent);
    if (r.error) co_return r;
    auto watched = co_await (watch(*sock) || deadline.async_wait(tuple_awaitable));
    // The deadline reached with the connection open is success; the timer
    // aborted is the caller's cancellation.
    r.error = watched.index() == 0 ? std::get<0>(watched) : std::get<0>(std::get<1>(watched));
    if (r.error == asio::error::eof) r.error = {};
    r.ok = !r.error;
  } catch (const divert::system_error& e) {
    r.ok = false;
    r.error = e.code();
  }
  co_return r;  // `sock` closes here, on every path
}

}  // namespace divert::health

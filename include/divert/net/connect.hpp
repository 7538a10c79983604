// divert/net/connect.hpp — connecting to a next proxy: happy eyeballs over a
// resolved host name, or a bounded retry toward an IP literal.
//
// Both are Asio coroutines that report errors in the result (they do not
// throw for I/O errors) and honour the caller's cancellation (the awaiting
// coroutine's cancellation slot, e.g. from `||` or a parallel group): every
// socket is closed before the result, asio::error::operation_aborted, is
// delivered. A timeout is asio::error::timed_out, distinct from
// connection_refused. Sockets are opened and configured with
// open_configured_socket() before connect; a failed option is named in
// ConnectResult::option.
// Thread-safety: each call is independent; the returned socket uses the
// caller's executor; the race's handlers run on it too, serialised by a
// mutex, so a multi-threaded io_context is fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "divert/asio/any_io_executor.hpp"
#include "divert/asio/async_result.hpp"
#include "divert/asio/awaitable.hpp"
#include "divert/asio/ip/tcp.hpp"

#include "divert/asio.hpp"
#include "divert/detail/erased_handler.hpp"
#include "divert/export.hpp"
#include "divert/net/options.hpp"
#include "divert/net/resolver.hpp"

namespace divert::net {

struct ConnectResult {
  error_code error;              // empty on success
  const char* option = nullptr;  // socket option key when `error` came from one
  // Engaged, open and connected iff !error (optional so that the result is
  // default-constructible, as co_spawn requires).
  std::optional<asio::ip::tcp::socket> socket;
  asio::ip::tcp::endpoint peer;  // the endpoint connected to (or last tried)
  // How many leading bytes of the SynData the socket has already taken with
  // its SYN (TCP Fast Open, ConnectOptions::tcp_fast_open): the caller writes
  // only the rest. 0 without Fast Open, when no cookie was cached, and when a
  // later attempt than the first won.
  std::size_t syn_bytes = 0;
};

// Bytes for the SYN of a connect's first attempt when
// ConnectOptions::tcp_fast_open is on (ignored when it is off): e.g. a PROXY
// header and the first client bytes, in this order. The buffers must stay
// valid until the connect completes; the connect never writes more than
// ConnectResult::syn_bytes of them. (Two named buffers rather than an
// array: GCC 12 cannot copy an array into a coroutine frame.)
struct SynData {
  asio::const_buffer first;   // e.g. the PROXY header
  asio::const_buffer second;  // e.g. the initial data
  std::size_t size() const noexcept { return first.size() + second.size(); }
};

// Connects to `host`:`port` with RFC 8305 happy eyeballs (see
// happy_eyeballs_planner.hpp for the rules). `host` is an IP literal (no
// resolution, one attempt; IPv6 with or without brackets) or a domain name
// resolved per family with `resolver` (required for a domain; nullptr gives
// errc::resolve_failed). `options` must have passed validate(). Exactly one
// socket wins; every loser is closed synchronously when the winner is known.
// `syn` (optional): see SynData.
DIVERT_EXPORT asio::awaitable<ConnectResult> happy_eyeballs_connect(
    std::string host, std::uint16_t port, ConnectOptions options,
    std::shared_ptr<Resolver> resolver, SynData syn = {});

// happy_eyeballs_connect as an Asio initiating function: completion
// void(divert::error_code, asio::ip::tcp::socket) (the socket open and
// connected iff no error; ConnectResult's `option` and `peer` are not
// reported: use socket.remote_endpoint(), or the coroutine form above).
// Arguments are moved into the operation at initiation. The socket uses
// `ex` when given, else the handler's associated executor (a plain callback
// or use_future needs `ex`: without it the call does not compile); the
// handler is invoked through its associated executor, never inside the
// initiating call; a terminal cancellation through its cancellation slot
// completes with operation_aborted after every socket is closed.
DIVERT_EXPORT void start_happy_eyeballs(
    asio::any_io_executor ex, std::string host, std::uint16_t port, ConnectOptions options,
    std::shared_ptr<Resolver> resolver,
    detail::ErasedHandler<divert::error_code, asio::ip::tcp::socket> handler);

template <class Executor, class Token>
auto async_happy_eyeballs_connect(const Executor& ex, std::string host, std::uint16_t port,
                                  ConnectOptions options, std::shared_ptr<Resolver> resolver,
                                  Token&& token) {
  return asio::async_initiate<Token, void(divert::error_code, asio::ip::tcp::socket)>(
      [](auto handler, Executor ex, std::string host, std::uint16_t port, ConnectOptions options,
         std::shared_ptr<Resolver> resolver) {
        auto io_ex = divert::detail::io_executor_for(handler, ex);
        start_happy_eyeballs(io_ex, std::move(host), port, std::move(options), std::move(resolver),
                             {std::false_type(), std::move(handler), io_ex});
      },
      token, ex, std::move(host), port, std::move(options), std::move(resolver));
}

template <class Token>
auto async_happy_eyeballs_connect(std::string host, std::uint16_t port, ConnectOptions options,
                                  std::shared_ptr<Resolver> resolver, Token&& token) {
  return async_happy_eyeballs_connect(divert::detail::NoExecutor{}, std::move(host), port,
                                      std::move(options), std::move(resolver),
                                      std::forward<Token>(token));
}

// Connects to one endpoint with up to tcp_connect.max_retry + 1 tries, each
// bounded by tcp_connect.each_timeout; the next try starts at once after a
// failure. A family not allowed by the options gives
// address_family_not_supported; a socket option failure is not retried.
// `syn` (optional): see SynData; only the first try carries it.
DIVERT_EXPORT asio::awaitable<ConnectResult> connect_with_retry(asio::ip::tcp::endpoint endpoint,
                                                                ConnectOptions options,
                                                                SynData syn = {});

}  // namespace divert::net

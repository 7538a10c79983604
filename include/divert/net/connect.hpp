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

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "divert/asio/awaitable.hpp"
#include "divert/asio/ip/tcp.hpp"

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
};

// Connects to `host`:`port` with RFC 8305 happy eyeballs (see
// happy_eyeballs_planner.hpp for the rules). `host` is an IP literal (no
// resolution, one attempt; IPv6 with or without brackets) or a domain name
// resolved per family with `resolver` (required for a domain; nullptr gives
// errc::resolve_failed). `options` must have passed validate(). Exactly one
// socket wins; every loser is closed synchronously when the winner is known.
DIVERT_EXPORT asio::awaitable<ConnectResult> happy_eyeballs_connect(
    std::string host, std::uint16_t port, ConnectOptions options,
    std::shared_ptr<Resolver> resolver);

// Connects to one endpoint with up to tcp_connect.max_retry + 1 tries, each
// bounded by tcp_connect.each_timeout; the next try starts at once after a
// failure. A family not allowed by the options gives
// address_family_not_supported; a socket option failure is not retried.
DIVERT_EXPORT asio::awaitable<ConnectResult> connect_with_retry(asio::ip::tcp::endpoint endpoint,
                                                                ConnectOptions options);

}  // namespace divert::net

// divert/relay.hpp — bidirectional copy between the client's stream and the
// diverted stream, with half-close, a per-direction speed limit, an idle
// timeout and byte counters.
//
//   RelayResult r = co_await divert::relay(client_socket, diverted_stream, options);
//   divert::async_relay(std::move(client), std::move(stream), options, token);
//
// Directions: "upload" is a -> b (pass the client as `a` and the next proxy's
// stream as `b`: client -> next proxy, g3proxy divert_tcp's "north"); "download" is
// b -> a ("south"). SpeedLimitConfig::upload limits a -> b, ::download b -> a;
// Metrics traffic.out counts upload bytes, traffic.in download bytes.
//
// Streams: asio::ip::tcp::socket and asio::ssl::stream<asio::ip::tcp::socket>
// in any combination (generally: an Asio async stream with lowest_layer()).
// Behaviour:
//  * Both directions run concurrently until each has seen EOF, or until an
//    error or the idle timeout ends both. On return both streams are closed.
//  * Half-close: EOF read from one side -> shutdown(send) on the other side's
//    TCP socket; the opposite direction keeps running until its own EOF.
//    Toward a TLS stream the close_notify is deferred until both directions
//    are done (Asio's ssl::stream shutdown also reads), then sent with a
//    bounded wait (tls_shutdown_timeout). A TLS peer's TCP FIN without
//    close_notify (ssl::error::stream_truncated) counts as EOF.
//  * Errors (reset, broken pipe, ...): bytes already read are written to the
//    other side first (when it is still writable), then the error is recorded
//    for that direction, becomes RelayResult::error and both streams close.
//  * Idle timeout: no byte read or written in either direction for
//    idle_timeout -> both closed, error divert::errc::idle_timeout.
//  * Paths (RelayResult::path tells which ran). The copy path, used for every
//    stream type, on every platform and whenever a speed limit is set, reads
//    into one buffer of buffer_size bytes per direction (from a small
//    per-thread pool) and writes it out. The splice path (Linux only) is taken
//    when both streams are plain tcp::socket, the speed limit is off and
//    allow_splice is true: small transfers are copied with recv()/send(),
//    bulk ones move socket -> pipe -> socket with splice(2); the sockets are
//    switched to O_NONBLOCK, and a relay holds a pipe (from a per-thread pool)
//    only while bytes wait in it. Unless the process ignores SIGPIPE, the
//    relay blocks SIGPIPE in the calling thread around each splice into a
//    socket and discards the one it raised.
// Errors: SpeedLimitConfig::validate() throws config_error before any I/O.
// Everything else is reported in RelayResult, never thrown (except bad_alloc).
// Cancellation: cancelling the awaiting coroutine (or the async_relay
// operation) ends the relay with asio::error::operation_aborted.
// Thread-safety: run relay() on a single-threaded io_context or a strand (the
// directions share state without locks; ssl::stream requires it anyway). The
// live counters (RelayCounters) and Metrics are atomics and may be read from
// any thread while the relay runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "divert/asio/awaitable.hpp"

#include "divert/asio.hpp"
#include "divert/error.hpp"
#include "divert/export.hpp"
#include "divert/metrics.hpp"
#include "divert/speed_limit.hpp"

namespace divert {

enum class RelayPath : std::uint8_t { copy, splice };

// Live byte counters, updated after every write (relaxed atomics).
struct RelayCounters {
  std::atomic<std::uint64_t> upload{0};    // a -> b
  std::atomic<std::uint64_t> download{0};  // b -> a
};

struct RelayOptions {
  std::size_t buffer_size = 16 * 1024;        // bytes per direction (copy path); 0 -> 16 KiB
  SpeedLimitConfig speed_limit{};             // off by default
  std::chrono::milliseconds idle_timeout{0};  // 0: no idle timeout
  bool allow_splice = true;                   // false forces the copy path (tests run both)
  RelayCounters* counters = nullptr;          // optional live counters; must outlive relay()
  Metrics* metrics = nullptr;                 // optional: bytes in/out, relays_open; must outlive
  std::chrono::milliseconds tls_shutdown_timeout{1000};  // bound for the final close_notify
};

struct RelayResult {
  std::uint64_t upload_bytes = 0;    // a -> b, bytes written to b
  std::uint64_t download_bytes = 0;  // b -> a, bytes written to a
  error_code upload_error;    // why a -> b stopped, empty on EOF (or when stopped by the other)
  error_code download_error;  // why b -> a stopped, idem
  // What ended the relay: empty when both directions reached EOF; else
  // errc::idle_timeout, operation_aborted (cancelled) or the first direction
  // error (e.g. connection_reset).
  error_code error;
  RelayPath path = RelayPath::copy;

  bool ok() const noexcept { return !error; }
};

// See the header comment. `a` is the client side, `b` the next proxy side;
// both must outlive the returned awaitable.
template <class StreamA, class StreamB>
asio::awaitable<RelayResult> relay(StreamA& a, StreamB& b, RelayOptions options = {});

// relay() as an asynchronous operation owning both streams, so the caller
// need not stay suspended for the relay's lifetime (with asio::detached or a
// callback an accept loop keeps no coroutine frame per open connection).
// Completion signature void(RelayResult). Throws config_error (as relay()
// does) before starting when the speed limit is invalid.
template <class StreamA, class StreamB, class CompletionToken>
auto async_relay(StreamA a, StreamB b, RelayOptions options, CompletionToken&& token);

}  // namespace divert

#include "divert/detail/relay.hpp"  // the definitions

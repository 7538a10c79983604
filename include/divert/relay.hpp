// divert/relay.hpp — bidirectional copy between the client's stream and the
// diverted stream, with half-close, a per-direction speed limit, an idle
// timeout, byte counters, and a Linux splice() fast path.
//
//   RelayResult r = co_await divert::relay(client_socket, diverted_stream, options);
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
//    Toward a TLS stream a half-close cannot be sent while the other direction
//    still reads from it (Asio's ssl::stream shutdown also reads), so the
//    close_notify is deferred until both directions are done, then sent with
//    a bounded wait (tls_shutdown_timeout). A TLS peer's TCP FIN without
//    close_notify (ssl::error::stream_truncated) counts as EOF.
//  * Errors (reset, broken pipe, ...): bytes already read are written to the
//    other side first (when it is still writable), then the error is recorded
//    for that direction, becomes RelayResult::error and both streams close.
//  * Idle timeout: no byte read or written in either direction for
//    idle_timeout -> both closed, error divert::errc::idle_timeout.
//  * Copy path: one buffer of buffer_size bytes per direction (default 16 KiB),
//    taken from a small per-thread pool and reused for every read.
//  * Splice path (Linux): when both streams are plain tcp::socket, the speed
//    limit is off and allow_splice is true, each direction moves bytes
//    socket -> pipe -> socket with splice(2) (SPLICE_F_MOVE|SPLICE_F_NONBLOCK),
//    in chunks of up to 64 KiB (the kernel's default pipe size). The sockets
//    are switched to O_NONBLOCK. Until a direction has read a full page at
//    once it copies instead (cheaper for small transfers; bytes send()
//    leaves over wait in a pipe): it waits for bytes with an Asio receive
//    into a 512-byte buffer of its own (no epoll_ctl() per wait, unlike
//    async_wait; 1 KiB per relay) and reads any further bytes with recv()
//    into a per-thread page. After a read that did not fill the buffer, one
//    recv() looks for the source's FIN: when it is there, the bytes go out
//    with MSG_MORE and the half-close in the same segment (otherwise the
//    recv() returns EAGAIN: one system call per short read, the price of
//    not seeing EPOLLRDHUP through Asio). splice(2) into a socket cannot be told not to
//    raise SIGPIPE: unless the process ignores SIGPIPE, the relay blocks it
//    in the calling thread around that call and discards the one it raised.
//    A direction holds a pipe only while bytes are in flight: it takes one
//    from a per-thread pool of empty pipes when its source is readable and
//    gives it back once the pipe is drained, so an idle relay holds no pipe
//    and a new one costs no pipe2()/close(). The pool keeps at most two pipes
//    per live splice relay on the thread (256 at most): with no relay left
//    it holds no descriptor. The whole path is one callback
//    object per relay (no coroutine frame per direction).
//    RelayResult::path tells which path ran.
// Errors: SpeedLimitConfig::validate() throws config_error before any I/O.
// Everything else is reported in RelayResult, never thrown (except bad_alloc).
//
//   divert::async_relay(std::move(client), std::move(stream), options, token);
//
// The same as an Asio asynchronous operation (completion void(RelayResult))
// that owns both streams, so the caller need not stay suspended for the
// relay's lifetime: with asio::detached or a callback an accept loop keeps
// no coroutine frame per open connection.
// Thread-safety: run relay() on a single-threaded io_context or a strand (the
// directions share state without locks; ssl::stream requires it anyway). The
// live counters (RelayCounters) and Metrics are atomics and may be read from
// any thread while the relay runs.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <utility>
#include <type_traits>

#include "divert/asio/all.hpp"
#include "divert/asio/as_tuple.hpp"
#include "divert/asio/experimental/awaitable_operators.hpp"
#if defined(DIVERT_WITH_TLS)
#include "divert/asio/ssl/error.hpp"
#endif

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
  bool allow_splice = true;                   // false forces the copy path
  RelayCounters* counters = nullptr;          // optional live counters; must outlive relay()
  Metrics* metrics = nullptr;                 // optional: traffic.out/in bytes; must outlive
  std::chrono::milliseconds tls_shutdown_timeout{1000};  // bound for the final close_notify
};

struct RelayResult {
  std::uint64_t upload_bytes = 0;    // a -> b, bytes written to b
  std::uint64_t download_bytes = 0;  // b -> a, bytes written to a
  error_code upload_error;    // why a -> b stopped, empty on EOF (or when stopped by the other)
  error_code download_error;  // why b -> a stopped, idem
  // What ended the relay: empty when both directions reached EOF; else
  // errc::idle_timeout or the first direction error (e.g. connection_reset).
  error_code error;
  RelayPath path = RelayPath::copy;

  bool ok() const noexcept { return !error; }
};

namespace detail {

using RelayClock = std::chrono::steady_clock;

// A buffer from a per-thread free list (returned to the releasing thread's list).
struct DIVERT_EXPORT RelayBufferDeleter {
  std::size_t size = 0;
  void operator()(char* p) const noexcept;
};
using RelayBuffer = std::unique_ptr<char[], RelayBufferDeleter>;
DIVERT_EXPORT RelayBuffer acquire_relay_buffer(std::size_t size);

struct RelayShared {
  RelayClock::time_point last_activity = RelayClock::now();
  error_code first_error;
  bool aborted = false;
  int running = 2;
  std::function<void()> close_all;  // closes both streams, cancels every timer
  asio::steady_timer* idle_timer = nullptr;

  void touch() { last_activity = RelayClock::now(); }
  void fail(error_code ec) {
    if (aborted) return;
    aborted = true;
    first_error = ec;
    if (close_all) close_all();
  }
  void finished() {
    if (--running == 0 && idle_timer) idle_timer->cancel();
  }
};

// Bytes written in one direction: the result, the live counter, the metric.
struct RelayByteCount {
  RelayByteCount(std::atomic<std::uint64_t>* live_counter, Metrics* m, MetricsCounter c)
      : live(live_counter), metrics(m), metric(c) {}
  // The upload (a -> b) or download (b -> a) counters of `o`.
  RelayByteCount(const RelayOptions& o, bool upload)
      : RelayByteCount(o.counters ? (upload ? &o.counters->upload : &o.counters->download) : nullptr,
                       o.metrics,
                       upload ? MetricsCounter::traffic_out_bytes
                              : MetricsCounter::traffic_in_bytes) {}

  void count(std::size_t n) {
    if (n == 0) return;
    bytes += n;
    if (live) live->fetch_add(n, std::memory_order_relaxed);
    if (metrics) metrics->add(metric, n);
  }

  std::atomic<std::uint64_t>* live;
  Metrics* metrics;
  MetricsCounter metric;
  std::uint64_t bytes = 0;
};

struct RelayDirection : RelayByteCount {
  RelayDirection(const asio::any_io_executor& ex, const RelayOptions& o, bool upload)
      : RelayByteCount(o, upload), timer(ex) {}

  asio::steady_timer timer;  // speed-limit waits
  std::optional<TokenBucket> bucket;
  error_code error;
  bool eof = false;
  bool deferred_tls_close = false;  // EOF seen, destination is TLS: close_notify at the end
};

// True when splice(2) is usable on this platform build.
DIVERT_EXPORT bool splice_available() noexcept;

// True when two tcp::sockets relayed with `o` take the splice path.
inline bool splice_path(const RelayOptions& o) noexcept {
  return o.allow_splice && !o.speed_limit.enabled() && splice_available();
}

// Empty pipes parked in this thread's pool (for tests and diagnostics).
DIVERT_EXPORT std::size_t pooled_pipes() noexcept;

// The splice path: both directions and the idle timeout driven by callbacks
// on one object. start() dispatches the first step; complete() is called once,
// after both sockets are closed. On systems without splice(2) it completes
// with errc::config_conflict.
class DIVERT_EXPORT SpliceRelay : public std::enable_shared_from_this<SpliceRelay> {
 public:
  SpliceRelay(asio::ip::tcp::socket& a, asio::ip::tcp::socket& b, const RelayOptions& options);
  SpliceRelay(const SpliceRelay&) = delete;
  SpliceRelay& operator=(const SpliceRelay&) = delete;
  virtual ~SpliceRelay();
  void start();
  // Ends the relay with operation_aborted (the awaiting operation was cancelled).
  void cancel();

 protected:
  virtual void complete(RelayResult result) = 0;

 private:
  struct Direction : RelayByteCount {
    Direction(asio::ip::tcp::socket& f, asio::ip::tcp::socket& t, const RelayOptions& o,
              bool upload)
        : RelayByteCount(o, upload), from(f), to(t) {}
    asio::ip::tcp::socket& from;
    asio::ip::tcp::socket& to;
    int pipe[2] = {-1, -1};  // held only while bytes are in it
    std::size_t in_pipe = 0;
    error_code error;
    error_code read_error;  // reported once the pipe is drained
    bool source_done = false;
    bool bulk = false;  // a full copy chunk was seen: splice from now on
    bool finished = false;
    char head[512];  // what an Asio receive reads (see read_async())
  };
  void pump(Direction& d);
  bool copy_small(Direction& d);
  bool forward(Direction& d, const char* data, std::size_t n, int more = 0);
  void read_async(Direction& d);
  void wait(Direction& d, asio::socket_base::wait_type what);
  void finish(Direction& d);
  void fail(Direction* d, error_code ec);
  void arm_idle_timer();
  void close_all() noexcept;
  static void count_live(int delta) noexcept;  // sizes this thread's pipe pool

  Direction up_, down_;
  asio::steady_timer idle_timer_;
  std::chrono::milliseconds idle_timeout_;
  RelayClock::time_point last_activity_;
  error_code first_error_;
  bool aborted_ = false;
  bool done_ = false;
  signed char sigpipe_ignored_ = -1;  // the process ignores SIGPIPE (-1: not asked yet)
};

// SpliceRelay completing into an Asio handler on its associated executor.
// Owned (what holds the streams, or an empty tuple) is kept alive with it.
template <class Handler, class Owned>
class SpliceRelayOp final : public SpliceRelay {
 public:
  template <class H>
  SpliceRelayOp(Owned owned, asio::ip::tcp::socket& a, asio::ip::tcp::socket& b,
                const RelayOptions& options, H&& handler)
      : SpliceRelay(a, b, options),
        owned_(std::move(owned)),
        handler_(std::forward<H>(handler)),
        work_(asio::prefer(asio::get_associated_executor(handler_, a.get_executor()),
                           asio::execution::outstanding_work.tracked)) {}

  void connect_cancellation() {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) {
      slot.assign([w = std::weak_ptr<SpliceRelay>(shared_from_this())](asio::cancellation_type) {
        if (auto self = w.lock()) self->cancel();
      });
    }
  }

 private:
  void complete(RelayResult result) override {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    auto ex = work_;
    asio::dispatch(ex, [h = std::move(handler_), r = std::move(result),
                        w = std::move(work_)]() mutable { std::move(h)(std::move(r)); });
  }

  Owned owned_;
  Handler handler_;
  asio::any_io_executor work_;
};

// Starts a SpliceRelayOp over `a` and `b` (which live in `owned` or outlive the
// operation). Everything is passed by value: use_awaitable initiates later.
template <class Owned, class Token>
auto async_splice_relay(Owned owned, asio::ip::tcp::socket& a, asio::ip::tcp::socket& b,
                        RelayOptions options, Token&& token) {
  return asio::async_initiate<Token, void(RelayResult)>(
      [](auto handler, Owned owned, asio::ip::tcp::socket* a, asio::ip::tcp::socket* b,
         const RelayOptions& options) {
        using Op = SpliceRelayOp<std::decay_t<decltype(handler)>, Owned>;
        auto op = std::make_shared<Op>(std::move(owned), *a, *b, options, std::move(handler));
        op->connect_cancellation();
        op->start();
      },
      token, std::move(owned), &a, &b, std::move(options));
}

DIVERT_EXPORT asio::awaitable<void> idle_watch(asio::steady_timer& timer, RelayShared& shared,
                                               std::chrono::milliseconds idle);

template <class S>
concept TlsLikeStream = requires(S& s) {
  s.next_layer();
  s.native_handle();
  s.async_shutdown(asio::use_awaitable);
};

template <class S>
void close_stream(S& s) noexcept {
  error_code ec;
  s.lowest_layer().close(ec);
}

// Returns false when the half-close must be deferred (TLS, see the header comment).
template <class S>
bool half_close(S& s) noexcept {
  if constexpr (TlsLikeStream<S>) {
    return false;
  } else {
    error_code ec;
    s.lowest_layer().shutdown(asio::socket_base::shutdown_send, ec);
    return true;
  }
}

inline bool is_eof(const error_code& ec) noexcept {
  if (ec == asio::error::eof) return true;
#if defined(DIVERT_WITH_TLS)
  if (ec == asio::ssl::error::stream_truncated) return true;
#endif
  return false;
}

template <class From, class To>
asio::awaitable<void> copy_pump(From& from, To& to, RelayDirection& dir, RelayShared& shared,
                                std::size_t buffer_size) {
  co_await asio::this_coro::throw_if_cancelled(false);
  RelayBuffer buf = acquire_relay_buffer(buffer_size);
  error_code read_error;
  while (!shared.aborted) {
    std::size_t want = buffer_size;
    if (dir.bucket) {
      const auto now = RelayClock::now().time_since_epoch();
      const std::uint64_t avail = dir.bucket->available(now);
      const std::uint64_t need = std::min<std::uint64_t>(buffer_size, dir.bucket->capacity());
      if (avail < need) {
        const auto at = dir.bucket->when_available(need, now);
        dir.timer.expires_at(
            RelayClock::time_point(std::chrono::duration_cast<RelayClock::duration>(at)));
        auto [ec] = co_await dir.timer.async_wait(as_tuple(asio::use_awaitable));
        if (ec && !shared.aborted) {  // cancelled from outside the relay
          dir.error = ec;
          shared.fail(ec);
        }
        continue;
      }
      want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer_size, avail));
    }
    auto [rec, n] =
        co_await from.async_read_some(asio::buffer(buf.get(), want), as_tuple(asio::use_awaitable));
    if (n > 0) {
      shared.touch();
      if (dir.bucket) dir.bucket->consume(n, RelayClock::now().time_since_epoch());
      auto [wec, written] =
          co_await asio::async_write(to, asio::buffer(buf.get(), n), as_tuple(asio::use_awaitable));
      dir.count(written);
      if (wec) {
        if (!shared.aborted) {
          dir.error = wec;
          shared.fail(wec);
        }
        break;
      }
      shared.touch();
    }
    if (rec) {
      if (is_eof(rec)) {
        dir.eof = true;
        if (!half_close(to)) dir.deferred_tls_close = true;
      } else if (!shared.aborted) {
        dir.error = rec;
        shared.fail(rec);
      }
      break;
    }
  }
  shared.finished();
}

template <class S>
asio::awaitable<void> tls_close(S& s, std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(limit);
  co_await (s.async_shutdown(as_tuple(asio::use_awaitable)) ||
            timer.async_wait(as_tuple(asio::use_awaitable)));
}

}  // namespace detail

// See the header comment. `a` is the client side, `b` the next proxy side.
template <class StreamA, class StreamB>
asio::awaitable<RelayResult> relay(StreamA& a, StreamB& b, RelayOptions options = {}) {
  using namespace asio::experimental::awaitable_operators;
  co_await asio::this_coro::throw_if_cancelled(false);
  options.speed_limit.validate();
  if (options.buffer_size == 0) options.buffer_size = 16 * 1024;

  if constexpr (std::is_same_v<StreamA, asio::ip::tcp::socket> &&
                std::is_same_v<StreamB, asio::ip::tcp::socket>) {
    if (detail::splice_path(options)) {
      co_return co_await detail::async_splice_relay(std::tuple<>(), a, b, options,
                                                    asio::use_awaitable);
    }
  }

  auto ex = co_await asio::this_coro::executor;
  detail::RelayShared shared;
  detail::RelayDirection up(ex, options, true);
  detail::RelayDirection down(ex, options, false);
  if (options.speed_limit.enabled()) {
    const auto now = detail::RelayClock::now().time_since_epoch();
    up.bucket.emplace(options.speed_limit.upload, options.speed_limit.shift_millis, now);
    down.bucket.emplace(options.speed_limit.download, options.speed_limit.shift_millis, now);
  }
  asio::steady_timer idle_timer(ex);
  const bool use_idle = options.idle_timeout.count() > 0;
  shared.idle_timer = use_idle ? &idle_timer : nullptr;
  shared.close_all = [&] {
    detail::close_stream(a);
    detail::close_stream(b);
    up.timer.cancel();
    down.timer.cancel();
    idle_timer.cancel();
  };
  shared.touch();

  RelayResult result;
  const std::size_t n = options.buffer_size;
  if (use_idle) {
    co_await (detail::copy_pump(a, b, up, shared, n) && detail::copy_pump(b, a, down, shared, n) &&
              detail::idle_watch(idle_timer, shared, options.idle_timeout));
  } else {
    co_await (detail::copy_pump(a, b, up, shared, n) && detail::copy_pump(b, a, down, shared, n));
  }

  if (!shared.aborted) {
    if constexpr (detail::TlsLikeStream<StreamB>) {
      if (up.deferred_tls_close) co_await detail::tls_close(b, options.tls_shutdown_timeout);
    }
    if constexpr (detail::TlsLikeStream<StreamA>) {
      if (down.deferred_tls_close) co_await detail::tls_close(a, options.tls_shutdown_timeout);
    }
  }
  shared.close_all();

  result.upload_bytes = up.bytes;
  result.download_bytes = down.bytes;
  result.upload_error = up.error;
  result.download_error = down.error;
  result.error = shared.first_error;
  co_return result;
}

namespace detail {
template <class StreamA, class StreamB>
asio::awaitable<RelayResult> owning_relay(StreamA a, StreamB b, RelayOptions options) {
  co_return co_await relay(a, b, options);
}
}  // namespace detail

// See the header comment: relay() as an asynchronous operation owning both
// streams. Completion signature void(RelayResult). Throws config_error (as
// relay() does) before starting when the speed limit is invalid.
template <class StreamA, class StreamB, class CompletionToken>
auto async_relay(StreamA a, StreamB b, RelayOptions options, CompletionToken&& token) {
  options.speed_limit.validate();
  if constexpr (std::is_same_v<StreamA, asio::ip::tcp::socket> &&
                std::is_same_v<StreamB, asio::ip::tcp::socket>) {
    if (detail::splice_path(options)) {
      auto owned = std::make_unique<std::pair<StreamA, StreamB>>(std::move(a), std::move(b));
      auto& sa = owned->first;
      auto& sb = owned->second;
      return detail::async_splice_relay(std::move(owned), sa, sb, options,
                                        std::forward<CompletionToken>(token));
    }
  }
  return asio::async_initiate<CompletionToken, void(RelayResult)>(
      [](auto handler, StreamA a, StreamB b, RelayOptions options) {
        auto ex = a.get_executor();
        asio::co_spawn(ex, detail::owning_relay(std::move(a), std::move(b), options),
                       [h = std::move(handler)](std::exception_ptr e, RelayResult r) mutable {
                         if (e) std::rethrow_exception(e);  // bad_alloc only
                         std::move(h)(std::move(r));
                       });
      },
      token, std::move(a), std::move(b), options);
}

}  // namespace divert

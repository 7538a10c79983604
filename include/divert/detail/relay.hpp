// divert/detail/relay.hpp — the parts of divert::relay() that must be templates:
// the copy path (any Asio stream) and the splice path's completion handler.
// Not part of the API: divert/relay.hpp includes it after its declarations.
// Everything that needs no template parameter lives in src/relay/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "divert/asio/any_io_executor.hpp"
#include "divert/asio/associated_cancellation_slot.hpp"
#include "divert/asio/associated_executor.hpp"
#include "divert/asio/async_result.hpp"
#include "divert/asio/awaitable.hpp"
#include "divert/asio/buffer.hpp"
#include "divert/asio/co_spawn.hpp"
#include "divert/asio/dispatch.hpp"
#include "divert/asio/error.hpp"
#include "divert/asio/execution/outstanding_work.hpp"
#include "divert/asio/ip/tcp.hpp"
#include "divert/asio/prefer.hpp"
#include "divert/asio/redirect_error.hpp"
#include "divert/asio/socket_base.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/this_coro.hpp"
#include "divert/asio/use_awaitable.hpp"
#include "divert/asio/write.hpp"
#if defined(DIVERT_WITH_TLS)
#include "divert/asio/ssl/error.hpp"
#endif

#include "divert/asio.hpp"
#include "divert/detail/spawn_for_handler.hpp"
#include "divert/error.hpp"
#include "divert/export.hpp"
#include "divert/metrics.hpp"
#include "divert/relay.hpp"
#include "divert/speed_limit.hpp"

namespace divert::detail {

using RelayClock = std::chrono::steady_clock;

enum class RelayDir : std::uint8_t { upload, download };  // a -> b, b -> a

// What both paths share (src/relay/session.cpp): byte counts, the idle
// timeout, the first error and the result. A path derives from it, closes
// its streams in close_streams() and calls finish() once per direction.
// Owned by a shared_ptr (the idle timer holds a weak one). Not synchronised.
// With RelayOptions::metrics, the relays_open gauge counts the session from
// construction until both directions have finished (or its destruction).
class DIVERT_EXPORT RelaySession : public std::enable_shared_from_this<RelaySession> {
 public:
  RelaySession(const asio::any_io_executor& ex, const RelayOptions& options, RelayPath path);
  RelaySession(const RelaySession&) = delete;
  RelaySession& operator=(const RelaySession&) = delete;
  virtual ~RelaySession();

  // Closes both streams and cancels every wait of the path (idempotent).
  virtual void close_streams() noexcept = 0;

  void start_idle_timer();  // no-op when RelayOptions::idle_timeout is 0
  void touch() noexcept { last_activity_ = RelayClock::now(); }
  void count(RelayDir d, std::size_t n) noexcept;
  // True once an error, the idle timeout or a cancellation ended the relay.
  bool stopped() const noexcept { return state_ == State::stopped; }
  // The first error ends the relay: it is recorded (as `d`'s error too) and
  // both streams close. Errors after that (or after finish()) are ignored.
  void fail(RelayDir d, error_code ec);
  void stop(error_code ec);                                // idem, no direction to blame
  void cancel() { stop(asio::error::operation_aborted); }  // the awaiting operation was cancelled
  bool finish() noexcept;  // one direction ended; true when both have (the idle timer stops)
  RelayResult result() const;

 private:
  // running -> stopped (an error ended the relay; the directions wind down)
  // running -> finished (both directions ended on their own)
  enum class State : std::uint8_t { running, stopped, finished };
  struct Flow {
    std::atomic<std::uint64_t>* live;  // RelayOptions::counters, or null
    MetricsCounter metric;
    std::uint64_t bytes = 0;
    error_code error;
  };
  void end(error_code ec, Flow* blamed);
  void release_relays_open() noexcept;  // once: Metrics::relay_closed()

  Flow flows_[2];
  Metrics* metrics_;
  bool counted_open_ = false;  // relay_opened() called, relay_closed() not yet
  asio::steady_timer idle_timer_;
  std::chrono::milliseconds idle_timeout_;
  RelayClock::time_point last_activity_;
  error_code first_error_;
  int running_ = 2;
  State state_ = State::running;
  RelayPath path_;
};

// A buffer from a per-thread free list (src/relay/buffer_pool.cpp).
struct DIVERT_EXPORT RelayBufferDeleter {
  std::size_t size = 0;
  void operator()(char* p) const noexcept;
};
using RelayBuffer = std::unique_ptr<char[], RelayBufferDeleter>;
DIVERT_EXPORT RelayBuffer acquire_relay_buffer(std::size_t size);

// The speed limit of one copy-path direction (src/relay/copy_path.cpp).
class DIVERT_EXPORT RelayPacer {
 public:
  RelayPacer(const asio::any_io_executor& ex, const SpeedLimitConfig& limit, RelayDir d);
  // Sets `want` (1..buffer_size) to what the next read may take, or returns
  // the time to wait on `timer` first.
  std::optional<RelayClock::time_point> hold(std::size_t buffer_size, std::size_t& want);
  void consumed(std::size_t n) noexcept;

  asio::steady_timer timer;

 private:
  std::optional<TokenBucket> bucket_;  // empty: no limit
};

template <class S>
concept TlsLikeStream = requires(S& s) {
  s.next_layer();
  s.native_handle();
  s.async_shutdown(asio::use_awaitable);
};

inline bool is_eof(const error_code& ec) noexcept {
  if (ec == asio::error::eof) return true;
#if defined(DIVERT_WITH_TLS)
  if (ec == asio::ssl::error::stream_truncated) return true;
#endif
  return false;
}

// The copy path's session: both streams and both pacers, and the end of the
// download direction, which runs in a coroutine of its own.
template <class A, class B>
class CopyRelay final : public RelaySession {
 public:
  CopyRelay(const asio::any_io_executor& ex, A& a, B& b, const RelayOptions& o)
      : RelaySession(ex, o, RelayPath::copy),
        a(a),
        b(b),
        up(ex, o.speed_limit, RelayDir::upload),
        down(ex, o.speed_limit, RelayDir::download),
        download_wait(ex, asio::steady_timer::time_point::max()) {}
  void close_streams() noexcept override {
    error_code ec;
    a.lowest_layer().close(ec);
    b.lowest_layer().close(ec);
    up.timer.cancel();
    down.timer.cancel();
  }
  void download_ended(bool eof) {
    download_done = true;
    download_eof = eof;
    download_wait.cancel();
  }
  A& a;
  B& b;
  RelayPacer up, down;
  bool download_done = false;
  bool download_eof = false;
  asio::steady_timer download_wait;  // never expires: download_ended() cancels it
};

// One direction of the copy path; true when it ended with EOF (a TLS
// destination then gets its close_notify once both directions are done).
template <class From, class To>
asio::awaitable<bool> copy_direction(From& from, To& to, RelaySession& s, RelayDir dir,
                                     RelayPacer& pacer, std::size_t buffer_size) {
  using asio::redirect_error;
  co_await asio::this_coro::throw_if_cancelled(false);
  RelayBuffer buf = acquire_relay_buffer(buffer_size);
  bool eof = false;
  while (!s.stopped()) {
    std::size_t want = buffer_size;
    if (auto until = pacer.hold(buffer_size, want)) {
      pacer.timer.expires_at(*until);
      error_code ec;
      co_await pacer.timer.async_wait(redirect_error(asio::use_awaitable, ec));
      if (ec) s.fail(dir, ec);  // cancelled from outside (ignored after a stop)
      continue;
    }
    error_code rec;
    const std::size_t n = co_await from.async_read_some(asio::buffer(buf.get(), want),
                                                        redirect_error(asio::use_awaitable, rec));
    if (n > 0) {
      s.touch();
      pacer.consumed(n);
      error_code wec;
      const std::size_t written = co_await asio::async_write(
          to, asio::buffer(buf.get(), n), redirect_error(asio::use_awaitable, wec));
      s.count(dir, written);
      if (wec) {
        s.fail(dir, wec);
        break;
      }
      s.touch();
    }
    if (rec) {
      eof = is_eof(rec);
      if (!eof) {
        s.fail(dir, rec);
      } else if constexpr (!TlsLikeStream<To>) {
        // Half-close. Toward TLS it waits: ssl::stream's shutdown also reads.
        error_code ec;
        to.lowest_layer().shutdown(asio::socket_base::shutdown_send, ec);
      }
      break;
    }
  }
  s.finish();
  co_return eof;
}

// Sends `s`'s close_notify, waiting at most `limit` (then its socket's
// operations are cancelled). `session` owns the wait on `s`.
template <class S>
asio::awaitable<void> tls_close(S& s, RelaySession& session, std::chrono::milliseconds limit) {
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(limit);
  // The session is alive (and with it `s`) while copy_relay() runs.
  timer.async_wait([w = session.weak_from_this(), &s](error_code ec) {
    error_code ignored;
    if (!ec && w.lock()) s.lowest_layer().cancel(ignored);
  });
  error_code ec;
  co_await s.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

// The copy path (relay()'s contract; `o` already validated). The download
// direction runs in a coroutine of its own, this one copies the upload and
// then waits for it: both use `a` and `b`. Cancelling this coroutine stops the
// relay (the streams close, both directions end) and still waits.
template <class A, class B>
asio::awaitable<RelayResult> copy_relay(A& a, B& b, const RelayOptions& o) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto ex = co_await asio::this_coro::executor;
  auto s = std::make_shared<CopyRelay<A, B>>(ex, a, b, o);
  s->start_idle_timer();
  asio::co_spawn(ex, copy_direction(b, a, *s, RelayDir::download, s->down, o.buffer_size),
                 [s](std::exception_ptr e, bool eof) {
                   if (e) std::rethrow_exception(e);  // bad_alloc only
                   s->download_ended(eof);
                 });
  const bool up_eof = co_await copy_direction(a, b, *s, RelayDir::upload, s->up, o.buffer_size);
  while (!s->download_done) {
    error_code ec;
    co_await s->download_wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!s->download_done) s->cancel();  // this coroutine was cancelled
  }
  const bool down_eof = s->download_eof;
  if (!s->stopped()) {
    if constexpr (TlsLikeStream<B>) {
      if (up_eof) co_await tls_close(b, *s, o.tls_shutdown_timeout);
    }
    if constexpr (TlsLikeStream<A>) {
      if (down_eof) co_await tls_close(a, *s, o.tls_shutdown_timeout);
    }
  }
  s->close_streams();
  co_return s->result();
}

// How the splice path (src/relay/splice_relay.cpp) reports its result.
class DIVERT_EXPORT RelayCompletion {
 public:
  virtual ~RelayCompletion();
  virtual void complete(RelayResult result) = 0;
};

// True when splice(2) is usable on this platform build.
DIVERT_EXPORT bool splice_available() noexcept;
// Empty pipes parked in this thread's pool (for tests and diagnostics).
DIVERT_EXPORT std::size_t pooled_pipes() noexcept;
// A splice relay over `a` and `b`, to start with start_splice_relay(). On
// builds without splice(2) (never reached: relay() checks splice_available())
// `done` completes with errc::config_conflict and the result is null.
DIVERT_EXPORT std::shared_ptr<RelaySession> make_splice_relay(
    asio::ip::tcp::socket& a, asio::ip::tcp::socket& b, const RelayOptions& options,
    std::unique_ptr<RelayCompletion> done);
DIVERT_EXPORT void start_splice_relay(const std::shared_ptr<RelaySession>& relay);

// True when two tcp::sockets relayed with `o` take the splice path.
inline bool splice_path(const RelayOptions& o) noexcept {
  return o.allow_splice && !o.speed_limit.enabled() && splice_available();
}

// Completes into an Asio handler on its associated executor; keeps `Owned`
// (what holds the streams, or an empty tuple) alive until then.
template <class Handler, class Owned>
class HandlerCompletion final : public RelayCompletion {
 public:
  HandlerCompletion(Owned owned, Handler handler, const asio::any_io_executor& ex)
      : owned_(std::move(owned)),
        handler_(std::move(handler)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ex),
                           asio::execution::outstanding_work.tracked)) {}
  void complete(RelayResult result) override {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    auto ex = work_;
    asio::dispatch(ex, [h = std::move(handler_), r = std::move(result),
                        w = std::move(work_)]() mutable { std::move(h)(std::move(r)); });
  }
  Handler& handler() noexcept { return handler_; }

 private:
  Owned owned_;
  Handler handler_;
  asio::any_io_executor work_;
};

// The splice path as an Asio operation over `a` and `b` (which live in
// `owned` or outlive it). By value: use_awaitable initiates later.
template <class Owned, class Token>
auto async_splice_relay(Owned owned, asio::ip::tcp::socket& a, asio::ip::tcp::socket& b,
                        RelayOptions options, Token&& token) {
  return asio::async_initiate<Token, void(RelayResult)>(
      [](auto handler, Owned owned, asio::ip::tcp::socket* a, asio::ip::tcp::socket* b,
         const RelayOptions& options) {
        using Done = HandlerCompletion<std::decay_t<decltype(handler)>, Owned>;
        auto done = std::make_unique<Done>(std::move(owned), std::move(handler), a->get_executor());
        auto slot = asio::get_associated_cancellation_slot(done->handler());
        auto relay = make_splice_relay(*a, *b, options, std::move(done));
        if (relay && slot.is_connected()) {
          slot.assign([w = std::weak_ptr<RelaySession>(relay)](asio::cancellation_type) {
            if (auto r = w.lock()) r->cancel();
          });
        }
        start_splice_relay(relay);
      },
      token, std::move(owned), &a, &b, std::move(options));
}

}  // namespace divert::detail

namespace divert {

template <class StreamA, class StreamB>
asio::awaitable<RelayResult> relay(StreamA& a, StreamB& b, RelayOptions options) {
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
  co_return co_await detail::copy_relay(a, b, options);
}

namespace detail {
template <class StreamA, class StreamB>
asio::awaitable<RelayResult> owning_relay(StreamA a, StreamB b, RelayOptions options) {
  co_return co_await relay(a, b, options);
}
}  // namespace detail

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
        // The handler's executor and cancellation slot apply (as on the splice path).
        auto ex = a.get_executor();
        detail::spawn_for_handler(ex, detail::owning_relay(std::move(a), std::move(b), options),
                                  std::move(handler));
      },
      token, std::move(a), std::move(b), options);
}

}  // namespace divert

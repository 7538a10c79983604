// Non-template parts of divert/relay.hpp: the buffer pool, the idle watchdog
// and the Linux splice() direction pump.
#include "divert/relay.hpp"

#include <algorithm>
#include <array>
#include <vector>

#if defined(__linux__)
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#endif

namespace divert::detail {

namespace {
// Per-thread free lists, one per buffer size seen (normally just one size).
struct BufferPool {
  static constexpr std::size_t kMaxPerSize = 32;
  struct Slot {
    std::size_t size;
    std::vector<char*> free;
  };
  std::vector<Slot> slots;
  ~BufferPool() {
    for (auto& s : slots) {
      for (char* p : s.free) delete[] p;
    }
  }
  Slot& slot(std::size_t size) {
    for (auto& s : slots) {
      if (s.size == size) return s;
    }
    slots.push_back(Slot{size, {}});
    return slots.back();
  }
};
thread_local BufferPool t_pool;
}  // namespace

void RelayBufferDeleter::operator()(char* p) const noexcept {
  if (!p) return;
  try {
    auto& slot = t_pool.slot(size);
    if (slot.free.size() < BufferPool::kMaxPerSize) {
      slot.free.push_back(p);
      return;
    }
  } catch (...) {  // bad_alloc while growing the list: just free the buffer
  }
  delete[] p;
}

RelayBuffer acquire_relay_buffer(std::size_t size) {
  auto& slot = t_pool.slot(size);
  if (!slot.free.empty()) {
    char* p = slot.free.back();
    slot.free.pop_back();
    return RelayBuffer(p, RelayBufferDeleter{size});
  }
  return RelayBuffer(new char[size], RelayBufferDeleter{size});
}

asio::awaitable<void> idle_watch(asio::steady_timer& timer, RelayShared& shared,
                                 std::chrono::milliseconds idle) {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (shared.running > 0 && !shared.aborted) {
    timer.expires_at(shared.last_activity + idle);
    auto [ec] = co_await timer.async_wait(as_tuple(asio::use_awaitable));
    if (shared.running == 0 || shared.aborted) break;
    if (ec && ec != asio::error::operation_aborted) break;
    if (ec) {
      // Cancelled from outside while pumps still run: they see the same
      // cancellation and end on their own.
      break;
    }
    if (RelayClock::now() - shared.last_activity >= idle) {
      shared.fail(make_error_code(errc::idle_timeout));
      break;
    }
  }
}

namespace {
error_code errno_code(int e) {
  return {e, asio::error::get_system_category()};
}
}  // namespace

SpliceRelay::SpliceRelay(asio::ip::tcp::socket& a, asio::ip::tcp::socket& b,
                         const RelayOptions& options)
    : up_(a, b, options, true),
      down_(b, a, options, false),
      idle_timer_(a.get_executor()),
      idle_timeout_(options.idle_timeout),
      last_activity_(RelayClock::now()) {
  count_live(+1);
}

// Dispatched: started inline when the caller already runs on the sockets'
// executor (no trip through the scheduler per relay). Nothing completes inline:
// a failure to start is posted, and Asio posts the receives' completions.
void SpliceRelay::start() {
  asio::dispatch(up_.from.get_executor(), [self = shared_from_this()] {
    error_code ec;
    for (auto* s : {&self->up_.from, &self->up_.to}) {  // asio caches the mode: no ioctl when set
      if (!ec && !s->native_non_blocking()) s->native_non_blocking(true, ec);
    }
#if !defined(__linux__)
    if (!ec) ec = make_error_code(errc::config_conflict);
#endif
    if (ec) {
      asio::post(self->up_.from.get_executor(), [self, ec] {
        self->fail(&self->up_, ec);
        self->finish(self->up_);
        self->finish(self->down_);
      });
      return;
    }
    if (self->idle_timeout_.count() > 0) self->arm_idle_timer();
    self->read_async(self->up_);
    self->read_async(self->down_);
  });
}

void SpliceRelay::cancel() {
  fail(nullptr, asio::error::operation_aborted);
}

void SpliceRelay::fail(Direction* d, error_code ec) {
  if (aborted_ || done_) return;
  if (d) d->error = ec;
  aborted_ = true;
  first_error_ = ec;
  close_all();
}

void SpliceRelay::close_all() noexcept {
  error_code ec;
  up_.from.close(ec);
  up_.to.close(ec);
  idle_timer_.cancel();
}

void SpliceRelay::wait(Direction& d, asio::socket_base::wait_type what) {
  auto& s = what == asio::socket_base::wait_read ? d.from : d.to;
  s.async_wait(what, [self = shared_from_this(), &d](error_code ec) {
    if (ec) {
      if (!self->aborted_) self->fail(&d, ec);
      self->finish(d);
      return;
    }
    self->pump(d);
  });
}

void SpliceRelay::arm_idle_timer() {
  idle_timer_.expires_at(last_activity_ + idle_timeout_);
  idle_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->done_ || self->aborted_) return;
    if (RelayClock::now() - self->last_activity_ >= self->idle_timeout_) {
      self->fail(nullptr, make_error_code(errc::idle_timeout));
      return;
    }
    self->arm_idle_timer();
  });
}

#if defined(__linux__)

bool splice_available() noexcept {
  return true;
}

namespace {
constexpr std::size_t kSpliceChunk = 64 * 1024;  // the kernel's default pipe capacity

// Per-thread pool of empty pipes: a relay direction takes one while bytes are
// in flight and gives it back drained, so most relays never call pipe2().
// It keeps at most two pipes per splice relay alive on this thread (and
// kMax): when the last relay ends the pool is empty and holds no descriptor.
struct PipePool {
  static constexpr std::size_t kMax = 256;
  std::vector<std::array<int, 2>> free;
  long live_relays = 0;
  void trim() noexcept {
    const auto keep = static_cast<std::size_t>(std::max(live_relays, 0L)) * 2;
    while (free.size() > keep) {
      ::close(free.back()[0]);
      ::close(free.back()[1]);
      free.pop_back();
    }
  }
  ~PipePool() {
    live_relays = 0;
    trim();
  }
};
thread_local PipePool t_pipes;

error_code take_pipe(int (&fds)[2]) {
  if (!t_pipes.free.empty()) {
    fds[0] = t_pipes.free.back()[0];
    fds[1] = t_pipes.free.back()[1];
    t_pipes.free.pop_back();
    return {};
  }
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return errno_code(errno);
  return {};
}

// Returns the pipe to the pool when it is empty, else closes it.
void put_pipe(int (&fds)[2], bool empty) noexcept {
  if (fds[0] < 0) return;
  bool pooled = false;
  if (empty && t_pipes.free.size() < PipePool::kMax) {
    try {
      t_pipes.free.push_back({fds[0], fds[1]});
      pooled = true;
    } catch (...) {  // bad_alloc: close it instead
    }
  }
  if (!pooled) {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  fds[0] = fds[1] = -1;
}
}  // namespace

std::size_t pooled_pipes() noexcept {
  return t_pipes.free.size();
}

// splice(2) from a pipe into a socket has no MSG_NOSIGNAL: writing to a peer
// that reset raises SIGPIPE, whose default action ends the host process. Asio
// consumes the reset itself when a receive is pending on that socket, so the
// splice that follows gets EPIPE, not ECONNRESET. Unless the process ignores
// SIGPIPE, the calling thread blocks it for the call and takes a SIGPIPE the
// call raised off its pending set (a SIGPIPE the host had blocked is left alone).
// `ignored` caches, per relay, whether the process ignores SIGPIPE (-1: not
// asked yet), so a bulk transfer asks once.
namespace {
ssize_t splice_to_socket(int pipe_rd, int sock, std::size_t n, unsigned flags,
                         signed char& ignored) noexcept {
  if (ignored < 0) {
    struct sigaction sa {};
    ignored = ::sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN;
  }
  if (ignored) return ::splice(pipe_rd, nullptr, sock, nullptr, n, flags);
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  if (::pthread_sigmask(SIG_BLOCK, &pipe_only, &old) != 0 || sigismember(&old, SIGPIPE))
    return ::splice(pipe_rd, nullptr, sock, nullptr, n, flags);
  const ssize_t r = ::splice(pipe_rd, nullptr, sock, nullptr, n, flags);
  const int e = errno;
  if (r < 0 && e == EPIPE) {
    const timespec now{0, 0};
    while (::sigtimedwait(&pipe_only, nullptr, &now) == SIGPIPE) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return r;
}
}  // namespace

// Small transfers: recv() into this thread's scratch buffer and send() at
// once costs half of splice() in and out of a pipe (measured on loopback,
// tests/bench/chain_bench.sh). One page: whatever send() leaves over always
// fits in an empty pipe (at least one page, PIPE_BUF writes are atomic). A
// full page switches the direction to splice() for the rest of the relay.
constexpr std::size_t kCopyChunk = 4096;
thread_local char t_scratch[kCopyChunk];

// Waiting for bytes: an Asio receive into the direction's 512-byte head
// buffer. Asio tries the read at once and, after a read that came back short,
// queues the next one without a system call until epoll reports the socket;
// async_wait() instead re-arms the descriptor with epoll_ctl() on every wait
// (one system call per wait, three in a short request/response). Bytes that
// arrive are forwarded like copy_small()'s; a full head means more is queued,
// and recv() into the scratch page takes over.
void SpliceRelay::read_async(Direction& d) {
  d.from.async_receive(
      asio::buffer(d.head), [self = shared_from_this(), &d](error_code ec, std::size_t n) {
        if (ec == asio::error::operation_aborted || self->aborted_) {
          if (!self->aborted_) self->fail(&d, ec);
          self->finish(d);
          return;
        }
        if (ec) {  // eof: the source is done; anything else is reported once the pipe drains
          if (ec != asio::error::eof) d.read_error = ec;
          d.source_done = true;
          self->pump(d);
          return;
        }
        self->last_activity_ = RelayClock::now();
        if (n == sizeof d.head) {  // more is queued: recv() into the scratch page goes on
          if (self->forward(d, d.head, n)) self->pump(d);
          return;
        }
        // A short read. A source that closed right after these bytes (a
        // response that ends its connection) has its FIN queued already: one
        // recv() finds it, and the bytes then go out corked (MSG_MORE) so the
        // half-close that follows leaves in the same segment, with no further
        // wait for the source (HAProxy learns the same from EPOLLRDHUP).
        const ssize_t m = ::recv(d.from.native_handle(), t_scratch, kCopyChunk, MSG_DONTWAIT);
        const int e = errno;
        if (m == 0) {
          d.source_done = true;
          if (self->forward(d, d.head, n, MSG_MORE)) self->pump(d);
          return;
        }
        if (!self->forward(d, d.head, n)) return;
        if (m > 0) {
          if (static_cast<std::size_t>(m) == kCopyChunk) d.bulk = true;
          if (self->forward(d, t_scratch, static_cast<std::size_t>(m))) self->pump(d);
          return;
        }
        if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
          d.read_error = errno_code(e);
          d.source_done = true;
        } else if (d.in_pipe == 0) {  // drained: Asio waits without a system call
          self->read_async(d);
          return;
        }
        self->pump(d);
      });
}

// Sends `n` bytes read from d.from to d.to (`more`: MSG_MORE when a half-close
// follows at once); what send() leaves over waits in a pipe until d.to is
// writable, and while bytes wait there new ones are queued behind them (at
// most 512 + 4096 bytes, always room in an empty pipe). False when the
// direction failed (and finished).
bool SpliceRelay::forward(Direction& d, const char* data, std::size_t n, int more) {
  if (d.in_pipe > 0) {  // earlier bytes still wait in the pipe: these go behind them
    const ssize_t p = ::write(d.pipe[1], data, n);
    if (p != static_cast<ssize_t>(n)) {
      fail(&d, p < 0 ? errno_code(errno) : make_error_code(asio::error::no_buffer_space));
      finish(d);
      return false;
    }
    d.in_pipe += n;
    return true;
  }
  ssize_t w;
  do {
    w = ::send(d.to.native_handle(), data, n, MSG_DONTWAIT | MSG_NOSIGNAL | more);
  } while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    fail(&d, errno_code(errno));
    finish(d);
    return false;
  }
  const std::size_t sent = w > 0 ? static_cast<std::size_t>(w) : 0;
  d.count(sent);
  if (sent < n) {
    if (auto ec = take_pipe(d.pipe)) {
      fail(&d, ec);
      finish(d);
      return false;
    }
    const ssize_t p = ::write(d.pipe[1], data + sent, n - sent);
    if (p != static_cast<ssize_t>(n - sent)) {
      fail(&d, p < 0 ? errno_code(errno) : make_error_code(asio::error::no_buffer_space));
      finish(d);
      return false;
    }
    d.in_pipe = n - sent;
  }
  return true;
}

// Returns true when the direction should go on with pump()'s loop, false
// when it is waiting or finished.
bool SpliceRelay::copy_small(Direction& d) {
  const ssize_t n = ::recv(d.from.native_handle(), t_scratch, kCopyChunk, MSG_DONTWAIT);
  if (n == 0) {
    d.source_done = true;
    return true;
  }
  if (n < 0) {
    if (errno == EINTR) return true;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      read_async(d);
      return false;
    }
    d.read_error = errno_code(errno);
    d.source_done = true;
    return true;
  }
  last_activity_ = RelayClock::now();
  const auto got = static_cast<std::size_t>(n);
  if (got == kCopyChunk) d.bulk = true;
  if (!forward(d, t_scratch, got)) return false;
  if (d.in_pipe > 0) return true;  // pump() splices the rest out when `to` is writable
  if (got < kCopyChunk) {  // drained
    read_async(d);
    return false;
  }
  return true;
}

void SpliceRelay::pump(Direction& d) {
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  while (!aborted_) {
    if (!d.source_done && !d.bulk && d.in_pipe == 0) {
      if (!copy_small(d)) return;
      continue;
    }
    if (!d.source_done && d.in_pipe < kSpliceChunk) {
      if (d.pipe[0] < 0) {
        if (auto ec = take_pipe(d.pipe)) {
          fail(&d, ec);
          break;
        }
      }
      const ssize_t n = ::splice(d.from.native_handle(), nullptr, d.pipe[1], nullptr,
                                 kSpliceChunk - d.in_pipe, kFlags);
      if (n > 0) {
        d.in_pipe += static_cast<std::size_t>(n);
        last_activity_ = RelayClock::now();
      } else if (n == 0) {
        d.source_done = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (d.in_pipe == 0) {  // nothing to forward: park the pipe, wait for the source
          put_pipe(d.pipe, true);
          wait(d, asio::socket_base::wait_read);
          return;
        }
      } else {
        d.read_error = errno_code(errno);
        d.source_done = true;
      }
    }
    if (d.in_pipe > 0) {
      const ssize_t n = splice_to_socket(d.pipe[0], d.to.native_handle(), d.in_pipe, kFlags,
                                         sigpipe_ignored_);
      if (n > 0) {
        d.in_pipe -= static_cast<std::size_t>(n);
        d.count(static_cast<std::size_t>(n));
        last_activity_ = RelayClock::now();
        if (d.in_pipe == 0 && !d.bulk) put_pipe(d.pipe, true);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wait(d, asio::socket_base::wait_write);
        return;
      }
      fail(&d, n < 0 ? errno_code(errno) : make_error_code(asio::error::eof));
      break;
    }
    if (d.source_done) {  // and the pipe is empty
      if (d.read_error) {
        fail(&d, d.read_error);
      } else if (!(&d == &up_ ? down_ : up_).finished) {
        // Half-close. When the other direction is already done, finish()
        // closes both sockets now and close() sends the same FIN: one
        // shutdown() per relay saved (both receive queues are drained).
        error_code ec;
        d.to.shutdown(asio::socket_base::shutdown_send, ec);
      }
      break;
    }
  }
  finish(d);
}
void SpliceRelay::count_live(int delta) noexcept {
  t_pipes.live_relays += delta;
  if (delta < 0) t_pipes.trim();
}

SpliceRelay::~SpliceRelay() {
  put_pipe(up_.pipe, false);
  put_pipe(down_.pipe, false);
  count_live(-1);
}

#else  // !__linux__

bool splice_available() noexcept {
  return false;
}

std::size_t pooled_pipes() noexcept {
  return 0;
}

void SpliceRelay::pump(Direction& d) {
  finish(d);
}

bool SpliceRelay::copy_small(Direction&) {
  return false;
}

bool SpliceRelay::forward(Direction&, const char*, std::size_t, int) {
  return false;
}

void SpliceRelay::read_async(Direction& d) {
  finish(d);
}

void SpliceRelay::count_live(int) noexcept {}

SpliceRelay::~SpliceRelay() = default;

#endif

void SpliceRelay::finish(Direction& d) {
  if (d.finished) return;
  d.finished = true;
#if defined(__linux__)
  put_pipe(d.pipe, d.in_pipe == 0);
#endif
  if (!up_.finished || !down_.finished) return;
  done_ = true;
  close_all();
  RelayResult r;
  r.path = RelayPath::splice;
  r.upload_bytes = up_.bytes;
  r.download_bytes = down_.bytes;
  r.upload_error = up_.error;
  r.download_error = down_.error;
  r.error = first_error_;
  complete(std::move(r));
}

}  // namespace divert::detail

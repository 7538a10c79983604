#include "relay/splice_direction.hpp"

#if DIVERT_RELAY_SPLICE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "relay/splice_relay.hpp"

namespace divert::detail {

namespace {
constexpr std::size_t kSpliceChunk = 64 * 1024;  // the kernel's default pipe capacity
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
// One page: whatever send() leaves over fits in an empty pipe.
constexpr std::size_t kCopyChunk = 4096;
thread_local char t_scratch[kCopyChunk];

error_code errno_code(int e) {
  return {e, asio::error::get_system_category()};
}

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK;
}

// splice(2) from a pipe into a socket has no MSG_NOSIGNAL: writing to a peer
// that reset raises SIGPIPE, whose default action ends the host process. Asio
// consumes the reset itself when a receive is pending on that socket, so the
// splice that follows gets EPIPE, not ECONNRESET. Unless the process ignores
// SIGPIPE, the calling thread blocks it for the call and takes a SIGPIPE the
// call raised off its pending set (a SIGPIPE the host had blocked is left
// alone). `ignored` caches whether the process ignores SIGPIPE (-1: not asked).
ssize_t splice_to_socket(int pipe_rd, int sock, std::size_t n, signed char& ignored) noexcept {
  if (ignored < 0) {
    struct sigaction sa {};
    ignored = ::sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN;
  }
  if (ignored) return ::splice(pipe_rd, nullptr, sock, nullptr, n, kSpliceFlags);
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  if (::pthread_sigmask(SIG_BLOCK, &pipe_only, &old) != 0 || sigismember(&old, SIGPIPE))
    return ::splice(pipe_rd, nullptr, sock, nullptr, n, kSpliceFlags);
  const ssize_t r = ::splice(pipe_rd, nullptr, sock, nullptr, n, kSpliceFlags);
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

void SpliceDirection::start() {
  run(relay_.stopped() ? Next::step : Next::receive);
}

void SpliceDirection::run(Next next) {
  while (next == Next::step) next = step();
  switch (next) {
    case Next::receive:
      from_.async_receive(asio::buffer(head_),
                          [keep = relay_.shared_from_this(), this](error_code ec, std::size_t n) {
                            run(on_receive(ec, n));
                          });
      return;
    case Next::wait_readable:
    case Next::wait_writable: {
      const bool read = next == Next::wait_readable;
      (read ? from_ : to_)
          .async_wait(
              read ? asio::socket_base::wait_read : asio::socket_base::wait_write,
              [keep = relay_.shared_from_this(), this](error_code ec) { run(on_wait(ec)); });
      return;
    }
    case Next::finished:
      put_pipe(pipe_);
      relay_.finished();
      return;
    case Next::step:
      return;
  }
}

SpliceDirection::Next SpliceDirection::step() {
  if (relay_.stopped()) on(Event::failed);
  switch (state_) {
    case State::small:
      return pipe_.empty() ? copy_page() : splice_through();
    case State::bulk:
      return splice_through();
    case State::draining:
      return pipe_.empty() ? end() : flush();
    case State::done:
      break;
  }
  return Next::finished;
}

// Bytes in the head buffer, or the source's end. A full head means more is
// queued: copy_page() reads on. After a short read one recv() looks for a FIN
// right behind the bytes (a response that ends its connection), so they go
// out corked (MSG_MORE) together with the half-close.
SpliceDirection::Next SpliceDirection::on_receive(error_code ec, std::size_t n) {
  if (relay_.stopped()) {
    on(Event::failed);
    return Next::finished;
  }
  if (ec == asio::error::operation_aborted) {
    fail(ec);
    return Next::finished;
  }
  if (ec) {
    source_ended(ec == asio::error::eof ? error_code() : ec);
    return Next::step;
  }
  relay_.touch();
  if (n == sizeof head_) return forward(head_, n, 0) ? Next::step : Next::finished;
  const ssize_t m = ::recv(from_.native_handle(), t_scratch, kCopyChunk, MSG_DONTWAIT);
  const int e = errno;
  if (m == 0) {
    source_ended({});
    return forward(head_, n, MSG_MORE) ? Next::step : Next::finished;
  }
  if (!forward(head_, n, 0)) return Next::finished;
  if (m > 0) {
    if (static_cast<std::size_t>(m) == kCopyChunk) on(Event::full_page);
    return forward(t_scratch, static_cast<std::size_t>(m), 0) ? Next::step : Next::finished;
  }
  if (!would_block(e) && e != EINTR) {
    source_ended(errno_code(e));
    return Next::step;
  }
  return pipe_.empty() ? Next::receive : Next::step;  // drained: Asio waits without a system call
}

SpliceDirection::Next SpliceDirection::on_wait(error_code ec) {
  if (!ec) return Next::step;
  fail(ec);  // ignored when the relay stopped already
  return Next::finished;
}

SpliceDirection::Next SpliceDirection::copy_page() {
  const ssize_t n = ::recv(from_.native_handle(), t_scratch, kCopyChunk, MSG_DONTWAIT);
  if (n == 0) {
    source_ended({});
    return Next::step;
  }
  if (n < 0) {
    const int e = errno;
    if (e == EINTR) return Next::step;
    if (would_block(e)) return Next::receive;
    source_ended(errno_code(e));
    return Next::step;
  }
  relay_.touch();
  const auto got = static_cast<std::size_t>(n);
  if (got == kCopyChunk) on(Event::full_page);
  if (!forward(t_scratch, got, 0)) return Next::finished;
  if (!pipe_.empty()) return Next::step;  // flushed once `to` is writable
  return got < kCopyChunk ? Next::receive : Next::step;
}

SpliceDirection::Next SpliceDirection::splice_through() {
  if (pipe_.bytes < kSpliceChunk) {
    if (auto ec = take_pipe(pipe_)) {
      fail(ec);
      return Next::finished;
    }
    const ssize_t n = ::splice(from_.native_handle(), nullptr, pipe_.write_end, nullptr,
                               kSpliceChunk - pipe_.bytes, kSpliceFlags);
    const int e = errno;
    if (n > 0) {
      pipe_.bytes += static_cast<std::size_t>(n);
      relay_.touch();
    } else if (n == 0) {
      source_ended({});
    } else if (e == EINTR) {
      return Next::step;
    } else if (!would_block(e)) {
      source_ended(errno_code(e));
    } else if (pipe_.empty()) {  // nothing to forward: park the pipe, wait for the source
      put_pipe(pipe_);
      return Next::wait_readable;
    }
  }
  return pipe_.empty() ? Next::step : flush();
}

SpliceDirection::Next SpliceDirection::flush() {
  const ssize_t n =
      splice_to_socket(pipe_.read_end, to_.native_handle(), pipe_.bytes, relay_.sigpipe_ignored());
  const int e = errno;
  if (n > 0) {
    pipe_.bytes -= static_cast<std::size_t>(n);
    relay_.count(dir_, static_cast<std::size_t>(n));
    relay_.touch();
    if (pipe_.empty() && state_ != State::bulk) put_pipe(pipe_);  // bulk keeps it
    return Next::step;
  }
  if (n < 0 && e == EINTR) return Next::step;
  if (n < 0 && would_block(e)) return Next::wait_writable;
  fail(n < 0 ? errno_code(e) : make_error_code(asio::error::eof));
  return Next::finished;
}

// Half-close. When the other direction is done already, the relay closes both
// sockets now and close() sends the same FIN: one shutdown() per relay saved
// (both receive queues are drained).
SpliceDirection::Next SpliceDirection::end() {
  if (source_error_) {
    fail(source_error_);
    return Next::finished;
  }
  if (!relay_.other_done(*this)) {
    error_code ec;
    to_.shutdown(asio::socket_base::shutdown_send, ec);
  }
  on(Event::drained);
  return Next::finished;
}

bool SpliceDirection::forward(const char* data, std::size_t n, int flags) {
  if (!pipe_.empty()) return queue(data, n);  // earlier bytes wait in the pipe: these go behind
  ssize_t w;
  do {
    w = ::send(to_.native_handle(), data, n, MSG_DONTWAIT | MSG_NOSIGNAL | flags);
  } while (w < 0 && errno == EINTR);
  if (w < 0 && !would_block(errno)) {
    fail(errno_code(errno));
    return false;
  }
  const std::size_t sent = w > 0 ? static_cast<std::size_t>(w) : 0;
  relay_.count(dir_, sent);
  if (sent == n) return true;
  if (auto ec = take_pipe(pipe_)) {
    fail(ec);
    return false;
  }
  return queue(data + sent, n - sent);
}

bool SpliceDirection::queue(const char* data, std::size_t n) {
  const ssize_t p = ::write(pipe_.write_end, data, n);
  if (p != static_cast<ssize_t>(n)) {
    fail(p < 0 ? errno_code(errno) : make_error_code(asio::error::no_buffer_space));
    return false;
  }
  pipe_.bytes += n;
  return true;
}

void SpliceDirection::source_ended(error_code ec) noexcept {
  source_error_ = ec;
  on(Event::source_ended);
}

void SpliceDirection::fail(error_code ec) {
  relay_.fail(dir_, ec);
  on(Event::failed);
}

}  // namespace divert::detail
#endif

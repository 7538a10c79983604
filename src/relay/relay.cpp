// Non-template parts of divert/relay.hpp: the buffer pool, the idle watchdog
// and the Linux splice() direction pump.
#include "divert/relay.hpp"

#include <vector>

#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
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
  using asio::experimental::as_tuple;
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

#if defined(__linux__)

bool splice_available() noexcept {
  return true;
}

namespace {
std::error_code errno_code(int e) {
  return {e, asio::error::get_system_category()};
}

struct PipePair {
  int fds[2] = {-1, -1};
  ~PipePair() {
    if (fds[0] >= 0) ::close(fds[0]);
    if (fds[1] >= 0) ::close(fds[1]);
  }
};

constexpr std::size_t kSpliceChunk = 64 * 1024;  // the kernel's default pipe capacity
}  // namespace

asio::awaitable<void> splice_pump(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to,
                                  RelayDirection& dir, RelayShared& shared) {
  using asio::experimental::as_tuple;
  co_await asio::this_coro::throw_if_cancelled(false);
  PipePair pipe;
  std::error_code ec;
  if (::pipe2(pipe.fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    ec = errno_code(errno);
  } else {
    from.native_non_blocking(true, ec);
    if (!ec) to.native_non_blocking(true, ec);
  }
  if (ec) {
    dir.error = ec;
    shared.fail(ec);
    shared.finished();
    co_return;
  }

  std::size_t in_pipe = 0;
  bool source_done = false;    // EOF or read error seen
  std::error_code read_error;  // reported after the pipe is drained
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  while (!shared.aborted) {
    if (!source_done && in_pipe < kSpliceChunk) {
      const ssize_t n = ::splice(from.native_handle(), nullptr, pipe.fds[1], nullptr,
                                 kSpliceChunk - in_pipe, kFlags);
      if (n > 0) {
        in_pipe += static_cast<std::size_t>(n);
        shared.touch();
      } else if (n == 0) {
        source_done = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (in_pipe == 0) {
          // Nothing to forward: wait until the source is readable.
          auto [wec] =
              co_await from.async_wait(asio::socket_base::wait_read, as_tuple(asio::use_awaitable));
          if (wec) {
            if (!shared.aborted) {
              dir.error = wec;
              shared.fail(wec);
            }
            break;
          }
          continue;
        }
      } else {
        read_error = errno_code(errno);
        source_done = true;
      }
    }
    if (in_pipe > 0) {
      const ssize_t n =
          ::splice(pipe.fds[0], nullptr, to.native_handle(), nullptr, in_pipe, kFlags);
      if (n > 0) {
        in_pipe -= static_cast<std::size_t>(n);
        dir.count(static_cast<std::size_t>(n));
        shared.touch();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        auto [wec] =
            co_await to.async_wait(asio::socket_base::wait_write, as_tuple(asio::use_awaitable));
        if (wec) {
          if (!shared.aborted) {
            dir.error = wec;
            shared.fail(wec);
          }
          break;
        }
        continue;
      }
      const std::error_code wec = n < 0 ? errno_code(errno) : make_error_code(asio::error::eof);
      if (!shared.aborted) {
        dir.error = wec;
        shared.fail(wec);
      }
      break;
    }
    if (source_done) {  // and the pipe is empty
      if (read_error) {
        if (!shared.aborted) {
          dir.error = read_error;
          shared.fail(read_error);
        }
      } else {
        dir.eof = true;
        half_close(to);
      }
      break;
    }
  }
  shared.finished();
}

#else  // !__linux__

bool splice_available() noexcept {
  return false;
}

asio::awaitable<void> splice_pump(asio::ip::tcp::socket&, asio::ip::tcp::socket&,
                                  RelayDirection& dir, RelayShared& shared) {
  dir.error = make_error_code(errc::config_conflict);
  shared.fail(dir.error);
  shared.finished();
  co_return;
}

#endif

}  // namespace divert::detail

#include "relay/pipe_pool.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "divert/relay.hpp"

#if DIVERT_RELAY_SPLICE
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace divert::detail {

namespace {
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
}  // namespace

error_code take_pipe(Pipe& p) {
  if (p.held()) return {};
  if (!t_pipes.free.empty()) {
    p.read_end = t_pipes.free.back()[0];
    p.write_end = t_pipes.free.back()[1];
    t_pipes.free.pop_back();
    return {};
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {errno, asio::error::get_system_category()};
  p.read_end = fds[0];
  p.write_end = fds[1];
  return {};
}

void put_pipe(Pipe& p) noexcept {
  if (!p.held()) return;
  bool pooled = false;
  if (p.empty() && t_pipes.free.size() < PipePool::kMax) {
    try {
      t_pipes.free.push_back({p.read_end, p.write_end});
      pooled = true;
    } catch (...) {  // bad_alloc: close it instead
    }
  }
  if (!pooled) {
    ::close(p.read_end);
    ::close(p.write_end);
  }
  p = Pipe{};
}

PipePoolUser::PipePoolUser() noexcept {
  ++t_pipes.live_relays;
}

PipePoolUser::~PipePoolUser() {
  --t_pipes.live_relays;
  t_pipes.trim();
}

std::size_t pooled_pipes() noexcept {
  return t_pipes.free.size();
}

}  // namespace divert::detail

#else

namespace divert::detail {
std::size_t pooled_pipes() noexcept {
  return 0;
}
}  // namespace divert::detail

#endif

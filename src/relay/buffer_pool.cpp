// The copy path's buffers: per-thread free lists, one per buffer size seen
// (normally just one size), so a relay allocates no buffer in steady state.
#include <vector>

#include "divert/relay.hpp"

namespace divert::detail {

namespace {
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

}  // namespace divert::detail

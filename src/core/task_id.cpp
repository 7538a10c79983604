#include <chrono>
#include <random>

#include "divert/task.hpp"

namespace divert {

TaskId make_task_id_v7() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  std::uint64_t r1 = rng(), r2 = rng();
  TaskId id;
  auto& b = id.bytes;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  for (int i = 6; i < 16; ++i) {
    std::uint64_t src = i < 14 ? r1 : r2;
    b[i] = static_cast<std::uint8_t>(src >> (8 * (i % 8)));
  }
  b[6] = static_cast<std::uint8_t>(0x70 | (b[6] & 0x0F));  // version 7
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));  // RFC 9562 variant
  return id;
}

}  // namespace divert

#include <chrono>
#include <cstring>
#include <random>

#include "divert/task.hpp"

namespace divert {

namespace {

// xoshiro256** (Blackman & Vigna): 32 bytes of state per thread, so a task id
// touches one cache line instead of mt19937_64's 2.5 KB. Seeded once per
// thread from std::random_device through splitmix64. Task ids correlate log
// lines; they are not secrets.
class Xoshiro256 {
 public:
  Xoshiro256() {
    std::random_device rd;
    std::uint64_t x = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    for (auto& w : s_) {
      x += 0x9E3779B97F4A7C15ULL;  // splitmix64
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      w = z ^ (z >> 31);
    }
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace

TaskId make_task_id_v7() {
  thread_local Xoshiro256 rng;
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  const std::uint64_t r1 = rng.next(), r2 = rng.next();
  TaskId id;
  auto& b = id.bytes;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  std::memcpy(b.data() + 6, &r1, 8);
  std::memcpy(b.data() + 14, &r2, 2);
  b[6] = static_cast<std::uint8_t>(0x70 | (b[6] & 0x0F));  // version 7
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));  // RFC 9562 variant
  return id;
}

}  // namespace divert

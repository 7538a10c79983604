#include <chrono>
#include <set>

#include "divert/task.hpp"
#include "support/catch.hpp"

TEST_CASE("task ids are UUID v7: version, variant, time prefix, unique") {
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = divert::make_task_id_v7();
    CHECK((id.bytes[6] >> 4) == 7);
    CHECK((id.bytes[8] & 0xC0) == 0x80);
    std::uint64_t ms = 0;
    for (int b = 0; b < 6; ++b) ms = (ms << 8) | id.bytes[b];
    CHECK(ms >= static_cast<std::uint64_t>(before));
    CHECK(ms <= static_cast<std::uint64_t>(before) + 60'000);
    seen.insert(id.to_string());
  }
  CHECK(seen.size() == 1000);
}

#include <random>
#include <string_view>

#include "divert/ppv2/crc32c.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;

TEST_CASE("crc32c check value 123456789 = E3069283 on every path") {
  const auto data = as_bytes("123456789");
  CHECK(crc32c(data) == 0xE3069283u);
  CHECK(crc32c_portable(data) == 0xE3069283u);
  if (crc32c_hardware_available()) {
    CHECK(crc32c_hardware(data) == 0xE3069283u);
  } else {
    WARN("no hardware CRC32C on this CPU/build: only the portable path was checked");
  }
  CHECK(crc32c({}) == 0u);
  // RFC 3720 B.4: 32 bytes of zeros -> 8A9136AA.
  std::uint8_t zeros[32] = {};
  CHECK(crc32c_portable(zeros) == 0x8A9136AAu);
}

TEST_CASE("crc32c hardware and portable agree on random data, any length and alignment") {
  std::mt19937 rng(12345);
  std::vector<std::uint8_t> buf(1100);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (int i = 0; i < 2000; ++i) {
    const std::size_t off = rng() % 16;
    const std::size_t len = rng() % 1000;
    std::span<const std::uint8_t> s(buf.data() + off, len);
    const auto p = crc32c_portable(s);
    CHECK(crc32c(s) == p);
    if (crc32c_hardware_available()) CHECK(crc32c_hardware(s) == p);
    // chaining: crc(a || b) == crc(b, crc(a))
    const std::size_t cut = len ? rng() % len : 0;
    CHECK(crc32c(s.subspan(cut), crc32c(s.first(cut))) == p);
    CHECK(crc32c_portable(s.subspan(cut), crc32c_portable(s.first(cut))) == p);
  }
}

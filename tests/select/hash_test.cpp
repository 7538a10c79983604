// The selection hashes against the vectors written in divert/select/hash.hpp.
#include <cstdint>
#include <string>

#include "divert/select/hash.hpp"
#include "support/catch.hpp"

namespace h = divert::hash;

namespace {
// Bitwise CRC-32 (no tables): an independent check of the slicing-by-8 code.
std::uint32_t crc32_bitwise(std::string_view s, std::uint32_t prev = 0) {
  std::uint32_t c = ~prev;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}
}  // namespace

TEST_CASE("crc32 vectors (zlib / nginx ngx_crc32_long)") {
  CHECK(h::crc32("") == 0x00000000u);
  CHECK(h::crc32("a") == 0xE8B7BE43u);
  CHECK(h::crc32("123456789") == 0xCBF43926u);
  CHECK(h::crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
  // Chaining like zlib.
  CHECK(h::crc32("56789", h::crc32("1234")) == 0xCBF43926u);
  // Every length 0..64 and every alignment agrees with the bitwise form.
  std::string s;
  for (int i = 0; i < 80; ++i) s.push_back(static_cast<char>(i * 37 + 11));
  for (std::size_t off = 0; off < 8; ++off) {
    for (std::size_t len = 0; off + len <= s.size(); ++len) {
      auto v = std::string_view(s).substr(off, len);
      REQUIRE(h::crc32(v) == crc32_bitwise(v));
    }
  }
}

TEST_CASE("xxh3_64 vectors (seed 0)") {
  CHECK(h::xxh3_64("") == 0x2D06800538D394C2ULL);
  CHECK(h::xxh3_64("a") == 0xE6C632B61E964E1FULL);
  CHECK(h::xxh3_64("123456789") == 0x72DCB18B67A17DFFULL);
}

TEST_CASE("mix64 vectors") {
  CHECK(h::mix64(0) == 0);
  CHECK(h::mix64(1) == 0x5692161D100B05E5ULL);
  static_assert(h::mix64(1) == 0x5692161D100B05E5ULL);
}

TEST_CASE("jump consistent hash: vectors from the reference code") {
  for (std::int32_t n = 1; n <= 1000; ++n) REQUIRE(h::jump_consistent_hash(0, n) == 0);
  const std::int32_t key1[] = {0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17, 17};
  for (std::int32_t n = 1; n <= 20; ++n) {
    INFO("n = " << n);
    CHECK(h::jump_consistent_hash(1, n) == key1[n - 1]);
  }
  // Computed independently with the paper's code in Python (double arithmetic).
  CHECK(h::jump_consistent_hash(0xDEADBEEF, 1000) == 285);
  CHECK(h::jump_consistent_hash(0xDEADBEEF, 10) == 5);
  CHECK(h::jump_consistent_hash(0xFFFFFFFFFFFFFFFFULL, 100) == 92);
  CHECK(h::jump_consistent_hash(123456789, 1000) == 294);
  CHECK(h::jump_consistent_hash(0x8000000000000000ULL, 7) == 5);
  CHECK(h::jump_consistent_hash(42, 1000000) == 153897);
  static_assert(h::jump_consistent_hash(1, 18) == 17);
}

TEST_CASE("ketama node hashing follows nginx (host NUL port, chained points)") {
  CHECK(h::ketama_base("127.0.0.1:80") == 0x5D561A4Eu);
  CHECK(h::ketama_base("127.0.0.1:80") ==
        crc32_bitwise("80", crc32_bitwise(std::string_view("\0", 1), crc32_bitwise("127.0.0.1"))));
  auto p0 = h::ketama_next_point(0x5D561A4Eu, 0);
  CHECK(p0 == 0xB205012Fu);
  CHECK(h::ketama_next_point(0x5D561A4Eu, p0) == 0x138EF295u);
  CHECK(h::ketama_base("[2001:db8::1]:443") == 0x939F904Fu);
  // nginx's split: no digits-only tail after ':' → whole name is the host, empty port.
  CHECK(h::ketama_base("example.com") ==
        crc32_bitwise(std::string_view("\0", 1), crc32_bitwise("example.com")));
  CHECK(h::ketama_base("[::1]") ==
        crc32_bitwise(std::string_view("\0", 1), crc32_bitwise("[::1]")));
  CHECK(h::ketama_base("a:") == crc32_bitwise(std::string_view("\0", 1), crc32_bitwise("a")));
}

TEST_CASE("rendezvous unit and score vectors") {
  auto k = h::xxh3_64("k");
  auto n = h::xxh3_64("10.0.0.1:3128");
  CHECK(k == 0xA921E3704FDA881DULL);
  CHECK(n == 0xAADF59560431C9D4ULL);
  double u = h::rendezvous_unit(k, n);
  CHECK(u == 0.5138180458094982);
  CHECK(h::rendezvous_score(2.0, u) == 3.003516790727137);
  // The open interval: extremes of the mix never give 0 or 1.
  CHECK(h::rendezvous_unit(0, 0) == 0x1.0p-53);  // mix64(0) = 0
  // The formula at its largest input (mix64 output of all ones) stays below 1.
  double top = (static_cast<double>((~0ULL) >> 12) + 0.5) * 0x1.0p-52;
  CHECK(top < 1.0);
  CHECK(top == 1.0 - 0x1.0p-53);
  // The 53-bit form would have reached 1.0 (ln U = 0): the reason for 52 bits.
  CHECK((static_cast<double>((~0ULL) >> 11) + 0.5) * 0x1.0p-53 == 1.0);
}

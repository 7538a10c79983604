// divert/select/hash.hpp — every hash the next-proxy selectors use, written down
// so that another implementation (any language) can reproduce divert's picks.
//
// Byte encoding: keys and node names are hashed as their raw bytes (UTF-8 text,
// no terminator). Integers fed into a hash are 4-byte little-endian where stated.
//
// 1. crc32 — CRC-32/ISO-HDLC, the zlib crc32() and nginx ngx_crc32_long():
//    reflected polynomial 0xEDB88320, initial value 0xFFFFFFFF, final XOR
//    0xFFFFFFFF. Chained like zlib: crc32(b, crc32(a)) == crc32(a ‖ b).
//    Vectors: crc32("") = 0x00000000, crc32("a") = 0xE8B7BE43,
//             crc32("123456789") = 0xCBF43926,
//             crc32("The quick brown fox jumps over the lazy dog") = 0x414FA339.
//
// 2. xxh3_64 — XXH3_64bits(data, len) of xxHash ≥ 0.8 with seed 0 (the default
//    secret). Vectors: xxh3_64("") = 0x2D06800538D394C2,
//             xxh3_64("a") = 0xE6C632B61E964E1F,
//             xxh3_64("123456789") = 0x72DCB18B67A17DFF.
//
// 3. mix64 — the SplitMix64 finaliser (Stafford "Mix13"):
//      x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27;
//      x *= 0x94D049BB133111EB; x ^= x >> 31.
//    Vectors: mix64(0) = 0, mix64(1) = 0x5692161D100B05E5.
//
// 4. jump_consistent_hash(key, n) — Lamping & Veach 2014, exactly the paper's form
//    with double arithmetic:
//      b = -1; j = 0;
//      while (j < n) { b = j; key = key * 2862933555777941757 + 1;
//                      j = (b + 1) * (double(1 << 31) / double((key >> 33) + 1)); }
//    Vectors: key 0 → 0 for every n; key 1 → 0 for n = 1..6, 6 for n = 7..17,
//    17 for n = 18..20; key 0xDEADBEEF, n = 1000 → 285; key 2^64-1, n = 100 → 92;
//    key 42, n = 1000000 → 153897.
//
// 5. Ketama (nginx `hash $key consistent`, ngx_http_upstream_init_chash):
//    a node name "host:port" is split at the last ':' when only digits follow it
//    (nginx's rule; our canonical names always have a port: "[::1]:80" →
//    host "[::1]", port "80"). Then
//      base      = crc32(host ‖ 0x00 ‖ port)
//      point[0]  = crc32(00 00 00 00, base)            (chained crc32 of 4 bytes)
//      point[j]  = crc32(le32(point[j-1]), base)
//    with round(weight × 160) points per node (at least 1). All points of all
//    nodes are sorted by value; of equal values only the first (lowest node index,
//    then lowest j) is kept. A key maps to crc32(key) and picks the node of the
//    first point ≥ that hash, wrapping to point 0.
//    Vectors: ketama_base("127.0.0.1:80") = 0x5D561A4E, its first points
//             0xB205012F, 0x138EF295; ketama_base("[2001:db8::1]:443") = 0x939F904F.
//
// 6. Rendezvous (weighted highest random weight): with k = xxh3_64(key) and
//    h_i = xxh3_64(node name i),
//      x_i = mix64(k ^ h_i);  U_i = ((x_i >> 12) + 0.5) × 2^-52   (2^-53 ≤ U_i ≤ 1 - 2^-53)
//    (52 bits, not 53: ((2^53 - 1) + 0.5) rounds to 2^53 in a double and U would be 1.)
//      score_i = -weight_i / ln(U_i)
//    The node with the highest score wins; equal scores go to the lower index.
//    Vector: k = xxh3_64("k") = 0xA921E3704FDA881D, h = xxh3_64("10.0.0.1:3128") =
//    0xAADF59560431C9D4 → U = 0.5138180458094982, score (weight 2) = 3.003516790727137.
//
// Thread-safety: pure functions.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "divert/export.hpp"

namespace divert::hash {

// CRC-32/ISO-HDLC (zlib). `previous` is the result of an earlier call, to chain.
DIVERT_EXPORT std::uint32_t crc32_bytes(const void* data, std::size_t size,
                                        std::uint32_t previous = 0) noexcept;
inline std::uint32_t crc32(std::string_view data, std::uint32_t previous = 0) noexcept {
  return crc32_bytes(data.data(), data.size(), previous);
}

// XXH3_64bits with seed 0.
DIVERT_EXPORT std::uint64_t xxh3_64(std::string_view data) noexcept;

// SplitMix64 finaliser: a bijective 64-bit mix.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

// Lamping–Veach jump consistent hash: a bucket in [0, num_buckets). num_buckets ≥ 1.
constexpr std::int32_t jump_consistent_hash(std::uint64_t key, std::int32_t num_buckets) noexcept {
  std::int64_t b = -1;
  std::int64_t j = 0;
  while (j < num_buckets) {
    b = j;
    key = key * 2862933555777941757ULL + 1;
    j = static_cast<std::int64_t>(
        static_cast<double>(b + 1) *
        (static_cast<double>(1LL << 31) / static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<std::int32_t>(b);
}

// Ketama base hash of a node name (crc32(host ‖ 0x00 ‖ port), nginx's split).
DIVERT_EXPORT std::uint32_t ketama_base(std::string_view node_name) noexcept;
// The point after `previous_point` (use 0 for the first point) of a node with base `base`.
DIVERT_EXPORT std::uint32_t ketama_next_point(std::uint32_t base,
                                              std::uint32_t previous_point) noexcept;

// Rendezvous: U in the open interval (0, 1) for a key hash and a node hash.
constexpr double rendezvous_unit(std::uint64_t key_hash, std::uint64_t node_hash) noexcept {
  std::uint64_t x = mix64(key_hash ^ node_hash);
  return (static_cast<double>(x >> 12) + 0.5) * 0x1.0p-52;
}
// Rendezvous score of a node of `weight` (> 0) for U = rendezvous_unit(...). Higher wins.
inline double rendezvous_score(double weight, double unit) noexcept {
  return -weight / std::log(unit);
}

}  // namespace divert::hash

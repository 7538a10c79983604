// Hashes for selection (definitions and vectors in divert/select/hash.hpp).
#include "divert/select/hash.hpp"

#include <array>
#include <cstring>

#include <xxhash.h>

namespace divert::hash {

namespace {

// Slicing-by-8 tables for the reflected polynomial 0xEDB88320, built at compile
// time: table[0] is the classic byte table, table[k][b] advances k more zero bytes.
using Crc32Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Crc32Tables make_crc32_tables() {
  Crc32Tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    t[0][b] = c;
  }
  for (std::uint32_t b = 0; b < 256; ++b) {
    for (std::size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr Crc32Tables kCrc32 = make_crc32_tables();

std::uint32_t load_le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

}  // namespace

std::uint32_t crc32_bytes(const void* data, std::size_t size, std::uint32_t previous) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~previous;
  while (size >= 8) {
    std::uint32_t lo = load_le32(p) ^ c;
    std::uint32_t hi = load_le32(p + 4);
    c = kCrc32[7][lo & 0xFF] ^ kCrc32[6][(lo >> 8) & 0xFF] ^ kCrc32[5][(lo >> 16) & 0xFF] ^
        kCrc32[4][lo >> 24] ^ kCrc32[3][hi & 0xFF] ^ kCrc32[2][(hi >> 8) & 0xFF] ^
        kCrc32[1][(hi >> 16) & 0xFF] ^ kCrc32[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size--) c = (c >> 8) ^ kCrc32[0][(c ^ *p++) & 0xFF];
  return ~c;
}

std::uint64_t xxh3_64(std::string_view data) noexcept {
  return XXH3_64bits(data.data(), data.size());
}

std::uint32_t ketama_base(std::string_view name) noexcept {
  // nginx: host is everything before the last ':' if only digits follow it;
  // otherwise the whole name is the host and the port is empty.
  std::string_view host = name;
  std::string_view port;
  for (std::size_t j = 0; j < name.size(); ++j) {
    char c = name[name.size() - j - 1];
    if (c == ':') {
      host = name.substr(0, name.size() - j - 1);
      port = name.substr(name.size() - j);
      break;
    }
    if (c < '0' || c > '9') break;
  }
  std::uint32_t base = crc32(host);
  base = crc32_bytes("\0", 1, base);
  return crc32(port, base);
}

std::uint32_t ketama_next_point(std::uint32_t base, std::uint32_t previous_point) noexcept {
  unsigned char le[4] = {static_cast<unsigned char>(previous_point & 0xFF),
                         static_cast<unsigned char>((previous_point >> 8) & 0xFF),
                         static_cast<unsigned char>((previous_point >> 16) & 0xFF),
                         static_cast<unsigned char>((previous_point >> 24) & 0xFF)};
  return crc32_bytes(le, 4, base);
}

}  // namespace divert::hash

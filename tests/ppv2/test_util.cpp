#include "test_util.hpp"

#include <stdexcept>

#include "divert/ppv2/crc32c.hpp"
#include "support/catch.hpp"

namespace divert::ppv2::test {

Bytes from_hex(std::string_view hex) {
  Bytes out;
  int hi = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else if (c == ' ' || c == '\n')
      continue;
    else
      throw std::invalid_argument("bad hex");
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("odd hex");
  return out;
}

std::string to_hex(std::span<const std::uint8_t> b) {
  static constexpr char d[] = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    s += d[x >> 4];
    s += d[x & 0xF];
  }
  return s;
}

Bytes encode_ok(const HeaderSpec& spec, const EncodeOptions& opts) {
  auto sz = encoded_size(spec, opts);
  REQUIRE_FALSE(sz.ec);
  Bytes out(sz.size);
  auto r = encode(spec, out, opts);
  REQUIRE_FALSE(r.ec);
  REQUIRE(r.size == out.size());
  return out;
}

void fix_crc(Bytes& h, std::size_t crc_at) {
  for (int i = 0; i < 4; ++i) h[crc_at + i] = 0;
  const std::uint32_t c = crc32c(h);
  h[crc_at] = static_cast<std::uint8_t>(c >> 24);
  h[crc_at + 1] = static_cast<std::uint8_t>(c >> 16);
  h[crc_at + 2] = static_cast<std::uint8_t>(c >> 8);
  h[crc_at + 3] = static_cast<std::uint8_t>(c);
}

Endpoint ep(std::string_view ip, std::uint16_t port) {
  auto e = Endpoint::ip_literal(ip, port);
  if (!e) throw std::invalid_argument("bad ip literal in test");
  return *e;
}

Bytes aws_nlb_golden() {
  return from_hex(
      "0d0a0d0a000d0a515549540a2111 0054 ac1f0771 ac1f0a1f c8f2 0050"
      "03 0004 e8d6892d ea 0017 01 7670 63652d30 38643262 66313566 61633530 30316339"
      "04 0024 000000000000000000000000000000000000000000000000000000000000000000000000");
}

Bytes haproxy_golden() {
  return from_hex(
      "0d0a0d0a000d0a515549540a211100727f0000017f000001b05262a503000454fdc6ff"
      "020009415554484f52495459050009554e495155455f4944200044010000000021000754"
      "4c5376312e322500075253413430393624000a5253412d53484132353623001b45434448"
      "452d5253412d4145533235362d47434d2d534841333834");
}

}  // namespace divert::ppv2::test

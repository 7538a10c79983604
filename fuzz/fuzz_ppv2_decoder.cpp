// libFuzzer target for the PROXY decoder: v2 parse() (its fast path must agree
// with the general decoder), the push Decoder fed in data-dependent chunks (must
// agree with parse()), v1 parse_v1()/parse_any(), the divert TLV view, and
// encode -> decode round trips of whatever decoded (fast and general encoder agree).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "ppv2/general.hpp"

using namespace divert::ppv2;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

Endpoint expected_after_encode(const Endpoint& e, const Endpoint& other) {
  // The encoder folds v4-mapped IPv6 to IPv4 when both sides then are IPv4.
  if (e.is_v4_mapped() && other.is_v4_mapped())
    return Endpoint::v4({e.ip[12], e.ip[13], e.ip[14], e.ip[15]}, e.port);
  return e;
}

void round_trip(const HeaderView& h) {
  HeaderSpec s;
  s.command = h.command;
  s.transport = h.transport == Transport::dgram ? Transport::dgram : Transport::stream;
  s.src = h.src;
  s.dst = h.dst;
  std::vector<TlvView> extra;
  for (auto t : h.tlvs()) {
    if (t.type == tlv::crc32c) continue;
    extra.push_back(t);
  }
  s.extra = extra;
  s.crc32c = h.crc32c.has_value();
  std::vector<std::uint8_t> out(h.raw.size() + 8);
  auto r = encode(s, out, {.max_size = 16 + 65535});
  check(!r.ec);
  std::vector<std::uint8_t> general(out.size());
  const auto g = detail::encode_general(s, general, {.max_size = 16 + 65535});
  check(!g.ec && g.size == r.size && std::memcmp(general.data(), out.data(), r.size) == 0);
  auto back = parse({out.data(), r.size}, {.max_size = 16 + 65535});
  check(back.complete());
  check(back.header.command == h.command);
  if (h.command == Command::local) return;
  check(back.header.src == expected_after_encode(h.src, h.dst));
  check(back.header.dst == expected_after_encode(h.dst, h.src));
  check(back.header.crc32c.has_value() == h.crc32c.has_value());
  std::size_t i = 0;
  for (auto t : back.header.tlvs()) {
    if (t.type == tlv::crc32c) continue;
    check(i < extra.size());
    check(t.type == extra[i].type && t.value.size() == extra[i].value.size());
    check(std::memcmp(t.value.data(), extra[i].value.data(), t.value.size()) == 0);
    ++i;
  }
  check(i == extra.size());
}

void inspect(const ParseResult& r, std::span<const std::uint8_t> in) {
  if (!r.complete()) return;
  check(r.consumed <= in.size());
  check(r.header.raw.data() >= in.data() && r.header.raw.size() == r.consumed);
  if (r.header.version == 2) {
    check(r.consumed == 16u + (std::size_t(in[14]) << 8 | in[15]));
    std::size_t total = 0;
    for (auto t : r.header.tlvs()) total += 3 + t.value.size();
    check(total == r.header.tlv_bytes.size());
    DivertTlvs d;
    const std::error_code ec = read_divert_tlvs(r.header, d);
    if (d.task_id) (void)d.task_id->to_string();
    // What the receiving side accepts in 0xE0-0xE2, the encoder takes.
    if (!ec) {
      HeaderSpec s;
      if (d.upstream_text) s.upstream = *d.upstream_text;
      if (d.tls_name) s.tls_name = *d.tls_name;
      if (d.username) s.username = *d.username;
      check(encoded_size(s, {.max_size = 16 + 3 * 65538}).ec != errc::invalid_tlv_value);
    }
    round_trip(r.header);
  }
  (void)r.header.src.ip_string();
  (void)r.message();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  const ParseResult r = parse(in);
  inspect(r, in);
  // The fast path and the general decoder agree.
  const ParseResult general = detail::parse_general(in);
  check(general.status == r.status && general.ec == r.ec && general.consumed == r.consumed &&
        general.error_offset == r.error_offset && general.need == r.need);
  if (r.complete())
    check(general.header.src == r.header.src && general.header.dst == r.header.dst &&
          general.header.tlv_bytes.data() == r.header.tlv_bytes.data() &&
          general.header.tlv_bytes.size() == r.header.tlv_bytes.size() &&
          general.header.crc32c == r.header.crc32c);
  inspect(parse(in, {.max_size = 200, .verify_crc = false, .accept_proxy_unspec = false}), in);
  inspect(parse_v1(in), in);
  inspect(parse_any(in), in);

  // The push decoder, fed in chunks whose sizes come from the data, must agree.
  Decoder d;
  std::size_t pos = 0, used = 0;
  ParseResult last;
  for (int guard = 0; guard < 100000 && pos < size; ++guard) {
    const std::size_t n = std::min<std::size_t>(size - pos, 1 + data[pos] % 37);
    last = d.feed(in.subspan(pos, n));
    used += last.consumed;
    pos += n;
    if (!last.need_more()) break;
  }
  if (size > 0) {
    check(last.status == r.status);
    if (r.complete()) check(used == r.consumed);
    if (r.error()) check(last.ec == r.ec && last.error_offset == r.error_offset);
  }
  Decoder d1({}, true);
  (void)d1.feed(in);
  return 0;
}

// Property: decode(encode(spec)) gives back what the wire contract says, for random specs.
#include <cstring>
#include <random>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

namespace {

struct Gen {
  std::mt19937_64 rng{20261126};
  std::size_t below(std::size_t n) { return n ? rng() % n : 0; }
  bool coin() { return rng() & 1; }
  std::string text(std::size_t max) {
    std::string s(below(max + 1), '\0');
    for (auto& c : s) c = static_cast<char>('a' + below(26));
    return s;
  }
  Endpoint endpoint(int kind, std::vector<std::string>& keep) {
    Endpoint e;
    switch (kind) {
      case 0:
        e.kind = Endpoint::Kind::ipv4;
        for (int i = 0; i < 4; ++i) e.ip[i] = static_cast<std::uint8_t>(rng());
        break;
      case 1:
        e.kind = Endpoint::Kind::ipv6;
        for (auto& b : e.ip) b = static_cast<std::uint8_t>(rng());
        break;
      case 2:  // v4-mapped
        e.kind = Endpoint::Kind::ipv6;
        e.ip[10] = e.ip[11] = 0xff;
        for (int i = 12; i < 16; ++i) e.ip[i] = static_cast<std::uint8_t>(rng());
        break;
      default:
        keep.push_back("/" + text(107));
        return Endpoint::unix_socket(keep.back());
    }
    e.port = static_cast<std::uint16_t>(rng());
    return e;
  }
};

Endpoint fold(Endpoint e) {
  if (!e.is_v4_mapped()) return e;
  Endpoint f = Endpoint::v4({e.ip[12], e.ip[13], e.ip[14], e.ip[15]}, e.port);
  return f;
}
Endpoint promote(Endpoint e) {
  if (e.kind != Endpoint::Kind::ipv4) return e;
  std::array<std::uint8_t, 16> a{};
  a[10] = a[11] = 0xff;
  std::memcpy(a.data() + 12, e.ip.data(), 4);
  return Endpoint::v6(a, e.port);
}

}  // namespace

TEST_CASE("round trip over random headers (fixed seed)") {
  Gen g;
  int encoded = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::string> keep;
    keep.reserve(64);
    HeaderSpec s;
    s.command = g.below(8) == 0 ? Command::local : Command::proxy;
    s.transport = g.coin() ? Transport::stream : Transport::dgram;
    const bool unix_side = g.below(6) == 0;
    if (g.below(10) != 0) {
      s.src = g.endpoint(unix_side ? 3 : static_cast<int>(g.below(3)), keep);
      s.dst = g.endpoint(unix_side ? 3 : static_cast<int>(g.below(3)), keep);
    }
    if (g.coin()) {
      keep.push_back(g.text(40) + "x:" + std::to_string(1 + g.below(65535)));
      s.upstream = keep.back();
    }
    if (g.coin()) {
      keep.push_back("t" + g.text(299));  // a TLS name is never empty
      s.tls_name = keep.back();
    }
    if (g.coin()) {
      keep.push_back(g.text(20));
      s.username = keep.back();
    }
    if (g.coin()) {
      Uuid u;
      for (auto& b : u.bytes) b = static_cast<std::uint8_t>(g.rng());
      s.task_id = u;
    }
    s.status_reply = iter % 3 == 0;  // not drawn from g: the other fields stay as they were
    if (g.below(4) == 0) {
      keep.push_back(g.text(255));
      s.authority = keep.back();
    }
    if (g.below(4) == 0) {
      keep.push_back(g.text(128));
      s.unique_id = as_bytes(keep.back());
    }
    std::vector<TlvView> extra;
    const std::size_t n_extra = g.below(4);
    for (std::size_t i = 0; i < n_extra; ++i) {
      keep.push_back(g.text(g.below(8) == 0 ? 3000 : 50));
      std::uint8_t type = static_cast<std::uint8_t>(g.rng());
      // CRC and the divert TLVs have their own fields; a second one would be a duplicate.
      if (type == tlv::crc32c || (type >= 0xE0 && type <= 0xE3) || type == tlv::divert_status_reply)
        type = 0xEF;
      extra.push_back({type, as_bytes(keep.back())});
    }
    s.extra = extra;
    if (g.below(5) == 0) s.noop_padding = static_cast<std::uint16_t>(g.below(64));
    s.crc32c = g.coin();

    auto sz = encoded_size(s);
    if (sz.ec) {
      CHECK(sz.ec == errc::header_too_large);  // the only failure these specs can hit
      continue;
    }
    ++encoded;
    Bytes h = encode_ok(s);
    auto r = parse(h);
    CAPTURE(iter, to_hex(std::span(h).first(16)));
    REQUIRE(r.complete());
    REQUIRE(r.consumed == h.size());
    const HeaderView& v = r.header;
    CHECK(v.command == s.command);
    if (s.command == Command::proxy && s.src.kind != Endpoint::Kind::none) {
      Endpoint es = s.src, ed = s.dst;
      if (es.kind != Endpoint::Kind::unix_path) {
        es = fold(es);
        ed = fold(ed);
        if (es.kind != ed.kind) {
          es = promote(es);
          ed = promote(ed);
        }
      }
      CHECK(v.src == es);
      CHECK(v.dst == ed);
      CHECK(v.transport == s.transport);
    } else {
      CHECK_FALSE(v.addresses_known());
    }
    if (s.command == Command::local) continue;  // TLVs are not interpreted for LOCAL
    DivertTlvs d;
    REQUIRE_FALSE(read_divert_tlvs(v, d));
    CHECK(d.upstream_text == s.upstream);
    CHECK(d.upstream.has_value() == s.upstream.has_value());
    CHECK(d.tls_name == s.tls_name);
    CHECK(d.username == s.username);
    CHECK(d.task_id == s.task_id);
    CHECK(d.status_reply == (s.status_reply ? std::optional<std::uint8_t>(1) : std::nullopt));
    std::size_t i_extra = 0;
    // Ours is emitted before the extras, so the first AUTHORITY / UNIQUE_ID is ours.
    if (s.authority) CHECK(v.find(tlv::authority)->text() == *s.authority);
    if (s.unique_id) CHECK(v.find(tlv::unique_id)->value.size() == s.unique_id->size());
    CHECK(v.crc32c.has_value() == s.crc32c);
    // extra TLVs appear in order after the standard ones
    std::vector<TlvView> got(v.tlvs().begin(), v.tlvs().end());
    std::size_t first_extra = (s.upstream ? 1 : 0) + (s.tls_name ? 1 : 0) + (s.username ? 1 : 0) +
                              (s.task_id ? 1 : 0) + (s.status_reply ? 1 : 0) +
                              (s.authority ? 1 : 0) + (s.unique_id ? 1 : 0);
    for (; i_extra < extra.size(); ++i_extra) {
      const auto& t = got.at(first_extra + i_extra);
      CHECK(t.type == extra[i_extra].type);
      CHECK(t.text() == std::string_view(reinterpret_cast<const char*>(extra[i_extra].value.data()),
                                         extra[i_extra].value.size()));
    }
    // The push decoder agrees when fed in two halves.
    Decoder dec;
    const std::size_t cut = g.below(h.size());
    auto a = dec.feed(std::span(h).first(cut));
    auto b = dec.feed(std::span(h).subspan(cut));
    CHECK(a.consumed + b.consumed == h.size());
    REQUIRE(b.complete());
    CHECK(b.header.src == v.src);
  }
  CHECK(encoded > 2000);
}

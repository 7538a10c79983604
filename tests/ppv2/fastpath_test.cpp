// The encoder's and decoder's fast paths must agree with the general paths: same
// bytes, same errors, same views, on random specs (including the shapes that must
// leave the fast path: v4-mapped, mixed families, extra TLVs, CRC, bad values,
// tight buffers and caps).
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

namespace {

struct Rng {
  std::mt19937_64 rng{0x5eed2026};
  std::size_t below(std::size_t n) { return n ? rng() % n : 0; }
  bool one_in(std::size_t n) { return below(n) == 0; }
  std::string text(std::size_t max, bool allow_nul) {
    std::string s(below(max + 1), '\0');
    for (auto& c : s) c = static_cast<char>(allow_nul && one_in(20) ? 0 : 'a' + below(26));
    return s;
  }
  Endpoint endpoint(int kind) {
    Endpoint e;
    if (kind == 0) {
      e.kind = Endpoint::Kind::ipv4;
      for (int i = 0; i < 4; ++i) e.ip[i] = static_cast<std::uint8_t>(rng());
    } else if (kind == 1) {
      e.kind = Endpoint::Kind::ipv6;
      for (auto& b : e.ip) b = static_cast<std::uint8_t>(rng());
    } else if (kind == 2) {  // v4-mapped: must be folded by the general path
      e.kind = Endpoint::Kind::ipv6;
      e.ip[10] = e.ip[11] = 0xff;
      for (int i = 12; i < 16; ++i) e.ip[i] = static_cast<std::uint8_t>(rng());
    }  // 3: none
    e.port = static_cast<std::uint16_t>(rng());
    return e;
  }
};

}  // namespace

TEST_CASE("encode fast path writes the same bytes and errors as the general path",
          "[ppv2][encoder][fastpath]") {
  Rng g;
  std::uint8_t fast[1024], general[1024];
  int fast_shapes = 0, mismatches = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::deque<std::string> keep;  // stable addresses: the spec holds views into it
    HeaderSpec s;
    s.command = g.one_in(10) ? Command::local : Command::proxy;
    s.transport = g.one_in(4) ? Transport::dgram : Transport::stream;
    const int ks = g.one_in(8) ? static_cast<int>(g.below(4)) : static_cast<int>(g.below(2));
    const int kd = g.one_in(8) ? static_cast<int>(g.below(4)) : ks;
    s.src = g.endpoint(ks);
    s.dst = g.endpoint(kd);
    if (!g.one_in(5)) {
      std::string up = g.text(g.one_in(10) ? 300 : 24, true);
      if (!up.empty() && !g.one_in(10)) up += ":" + std::to_string(1 + g.below(65535));
      keep.push_back(up);
      s.upstream = keep.back();
    }
    if (g.one_in(2)) keep.push_back(g.text(40, false)), s.tls_name = keep.back();
    if (!g.one_in(4))
      keep.push_back(g.text(g.one_in(20) ? 200 : 12, false)), s.username = keep.back();
    if (!g.one_in(4)) {
      Uuid u;
      for (auto& b : u.bytes) b = static_cast<std::uint8_t>(g.rng());
      s.task_id = u;
    }
    // Shapes outside the fast path, now and then.
    if (g.one_in(15)) keep.push_back(g.text(20, false)), s.authority = keep.back();
    if (g.one_in(15)) s.noop_padding = static_cast<std::uint16_t>(g.below(9));
    if (g.one_in(15)) s.crc32c = true;
    s.status_reply = iter % 7 == 0;  // not drawn from g: the other fields stay as they were
    EncodeOptions o;
    if (g.one_in(10)) o.max_size = 16 + g.below(120);
    const std::size_t out_size = g.one_in(10) ? g.below(120) : sizeof fast;

    const bool plain = s.command == Command::proxy && ks == kd && ks < 2 && !s.authority &&
                       !s.noop_padding && !s.crc32c && !s.status_reply;
    fast_shapes += plain;
    std::memset(fast, 0xAA, sizeof fast);
    std::memset(general, 0x55, sizeof general);
    const auto a = encode(s, std::span<std::uint8_t>(fast, out_size), o);
    const auto b = detail::encode_general(s, std::span<std::uint8_t>(general, out_size), o);
    const bool same =
        a.ec == b.ec && a.size == b.size && (a.ec || std::memcmp(fast, general, a.size) == 0);
    if (!same) {
      ++mismatches;
      INFO("iteration " << iter << ": fast " << a.size << " " << a.ec.message() << " / general "
                        << b.size << " " << b.ec.message());
      if (!a.ec && !b.ec) INFO(to_hex({fast, a.size}) << "\n" << to_hex({general, b.size}));
      CHECK(same);
      if (mismatches > 5) break;
    }
    // The HeaderBuffer entry point takes the same path and must agree too.
    HeaderBuffer hb;
    const auto ec = encode(s, hb, o);
    CHECK((ec == b.ec || (b.ec == errc::buffer_too_small && !ec)));
    if (!ec && !b.ec) CHECK(std::memcmp(hb.data(), general, hb.size()) == 0);
  }
  CHECK(mismatches == 0);
  CHECK(fast_shapes > 5000);  // the fast path was really exercised
}

TEST_CASE("decode fast path and divert TLV view agree with the general decoder",
          "[ppv2][decoder][fastpath]") {
  // The same header decoded in one piece (fast path) and through the push decoder fed
  // byte by byte (every prefix goes through the general checks first).
  Rng g;
  for (int iter = 0; iter < 3000; ++iter) {
    std::deque<std::string> keep;  // stable addresses: the spec holds views into it
    HeaderSpec s;
    const int k = static_cast<int>(g.below(2));
    s.src = g.endpoint(k);
    s.dst = g.endpoint(k);
    s.transport = g.one_in(4) ? Transport::dgram : Transport::stream;
    std::string host = g.text(30, false);
    if (host.empty()) host = "h";
    if (g.one_in(8)) host[g.below(host.size())] = "\0:[] "[g.below(5)];
    keep.push_back(host + ":" + std::to_string(g.below(70000)));
    s.upstream = keep.back();
    if (g.one_in(2)) keep.push_back(g.text(20, false)), s.username = keep.back();
    if (g.one_in(2)) {
      Uuid u;
      for (auto& b : u.bytes) b = static_cast<std::uint8_t>(g.rng());
      s.task_id = u;
    }
    s.crc32c = g.one_in(4);
    HeaderBuffer hb;
    if (encode(s, hb)) continue;  // e.g. a NUL in the upstream: refused by the encoder
    Bytes wire(hb.bytes().begin(), hb.bytes().end());
    if (g.one_in(3)) wire[g.below(wire.size())] ^= static_cast<std::uint8_t>(1 + g.below(255));

    const auto whole = parse(wire);
    Decoder dec;
    ParseResult step;
    for (std::size_t i = 0; i < wire.size(); ++i) {
      step = dec.feed(std::span<const std::uint8_t>(&wire[i], 1));
      if (!step.need_more()) break;
    }
    REQUIRE(whole.status == step.status);
    CHECK(whole.ec == step.ec);
    if (whole.error()) {
      CHECK(whole.error_offset == step.error_offset);
      continue;
    }
    if (!whole.complete()) continue;
    CHECK(whole.header.src == step.header.src);
    CHECK(whole.header.dst == step.header.dst);
    CHECK(whole.header.family == step.header.family);
    CHECK(whole.header.transport == step.header.transport);
    CHECK(whole.header.crc32c == step.header.crc32c);
    CHECK(whole.header.tlv_bytes.size() == step.header.tlv_bytes.size());
    DivertTlvs a, b;
    const auto ea = read_divert_tlvs(whole.header, a);
    const auto eb = read_divert_tlvs(step.header, b);
    CHECK(ea == eb);
    if (ea) continue;
    CHECK(a.upstream_text == b.upstream_text);
    CHECK(a.upstream == b.upstream);
    CHECK(a.username == b.username);
    CHECK(a.task_id == b.task_id);
    // The typed view agrees with the standalone parser of 0xE0.
    if (a.upstream_text) CHECK(a.upstream == parse_upstream(*a.upstream_text));
  }
}

TEST_CASE("TlvField reads like std::optional", "[ppv2][divert]") {
  DivertTlvs d;
  CHECK_FALSE(d.upstream);
  CHECK(d.username == std::nullopt);
  CHECK(d.username != "alice");
  CHECK(d.tls_name.value_or("none") == "none");
  CHECK_THROWS_AS(d.task_id.value(), std::bad_optional_access);
  d.username = std::string_view("alice");
  CHECK(d.username == "alice");
  CHECK(d.username == std::optional<std::string_view>("alice"));
  CHECK(d.username != std::optional<std::string_view>());
  CHECK(d.username->size() == 5);
  std::optional<std::string_view> copy = d.username;
  CHECK(copy == "alice");
  d.username.reset();
  CHECK_FALSE(d.username.has_value());
}

namespace {
// The 0xE0 grammar written plainly, as a reference for the optimised parser.
std::optional<UpstreamView> upstream_reference(std::string_view t) {
  const auto colon = t.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view port = t.substr(colon + 1);
  if (port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0')) return std::nullopt;
  unsigned v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  UpstreamView u;
  u.port = static_cast<std::uint16_t>(v);
  std::string_view host = t.substr(0, colon);
  if (host[0] == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
    if (host.find('\0') != std::string_view::npos) return std::nullopt;
    const auto e = Endpoint::ip_literal(host, 0);
    if (!e || e->kind != Endpoint::Kind::ipv6) return std::nullopt;
    u.ipv6_literal = true;
  } else {
    for (char c : host)
      if (c == '\0' || c == ':' || c == '[' || c == ']' || c == ' ') return std::nullopt;
  }
  u.host = host;
  return u;
}
}  // namespace

TEST_CASE("parse_upstream matches a plain reference on random strings", "[ppv2][divert]") {
  Rng g;
  // High bytes whose low 7 bits are '0', '9', ':' check that only ASCII digits count.
  static constexpr char kAlphabet[] = "ab.-09:[] \0xyz5\x80\xb0\xb9\xba";
  const char* const v6[] = {"[2001:db8::1]", "[::1]",        "[::ffff:1.2.3.4]", "[1.2.3.4]", "[]",
                            "[:::]",         "[2001:db8::1", "2001:db8::1]"};
  int valid = 0;
  for (int iter = 0; iter < 50000; ++iter) {
    std::string t;
    if (g.one_in(6)) t = v6[g.below(std::size(v6))];
    const std::size_t host_len = g.below(g.one_in(5) ? 70 : 20);
    for (std::size_t i = 0; i < host_len; ++i)
      t += g.one_in(3) ? kAlphabet[g.below(sizeof kAlphabet - 1)]
                       : static_cast<char>('a' + g.below(26));
    if (!g.one_in(10)) t += ':';
    if (g.one_in(10)) t += g.one_in(2) ? "0" : "00";  // leading zeros
    if (!g.one_in(10))
      t += g.one_in(4) ? std::to_string(g.below(200000)) : std::to_string(1 + g.below(65535));
    if (g.one_in(20)) t += kAlphabet[g.below(sizeof kAlphabet - 1)];
    const auto want = upstream_reference(t);
    const auto got = parse_upstream(t);
    valid += want.has_value();
    INFO("upstream " << to_hex(as_bytes(t)));
    REQUIRE(got.has_value() == want.has_value());
    if (want) {
      CHECK(got->host == want->host);
      CHECK(got->host.data() == want->host.data());
      CHECK(got->port == want->port);
      CHECK(got->ipv6_literal == want->ipv6_literal);
    }
  }
  CHECK(valid > 5000);
}

TEST_CASE("read_divert_tlvs: the index parse() fills agrees with a TLV walk", "[ppv2][divert]") {
  // Raw headers with random TLV sequences: divert types repeated, out of order, bad
  // 0xE0 and 0xE3 values, other types around them, optionally a CRC32C TLV.
  Rng g;
  const char* const upstreams[] = {"example.com:443", "a:1", "[::1]:65535",        "bad",
                                   "h:0443",          ":80", "host.example:99999", "x y:5"};
  const std::uint8_t types[] = {0xE0, 0xE1, 0xE2, 0xE3, 0x01, 0x04, 0xDF, 0xE4, 0x02};
  int indexed = 0, errors = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes wire(kSignature.begin(), kSignature.end());
    wire.insert(wire.end(), {0x21, 0x11, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1, 0x1F, 0x90, 0, 80});
    bool seen[4] = {}, dup = false;
    const std::size_t count = g.below(7);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint8_t type = types[g.below(std::size(types))];
      Bytes value;
      if (type == 0xE0) {
        const std::string_view u = upstreams[g.below(std::size(upstreams))];
        value.assign(u.begin(), u.end());
      } else if (type == 0xE3) {
        value.resize(g.one_in(6) ? g.below(20) : 16);
      } else {
        value.resize(g.below(12));
      }
      for (auto& b : value)
        if (type != 0xE0) b = static_cast<std::uint8_t>(g.rng());
      if (type >= 0xE0 && type <= 0xE3) {
        dup |= seen[type - 0xE0];
        seen[type - 0xE0] = true;
      }
      wire.push_back(type);
      wire.push_back(static_cast<std::uint8_t>(value.size() >> 8));
      wire.push_back(static_cast<std::uint8_t>(value.size()));
      wire.insert(wire.end(), value.begin(), value.end());
    }
    const std::size_t len = wire.size() - kFixedHeaderSize;
    wire[14] = static_cast<std::uint8_t>(len >> 8);
    wire[15] = static_cast<std::uint8_t>(len);
    const auto r = parse(wire);
    REQUIRE(r.complete());
    INFO("header " << to_hex(wire));
    // Indexed exactly when no divert TLV repeats.
    CHECK((r.header.divert_index.base != nullptr) == !dup);
    indexed += r.header.divert_index.base != nullptr;
    HeaderView walk = r.header;
    walk.divert_index = {};  // forces the walk
    DivertTlvs a, b;
    // Stale contents must be reset by both paths.
    b.username = std::string_view("stale");
    a.tls_name = std::string_view("stale");
    const auto ea = read_divert_tlvs(r.header, a);
    const auto eb = read_divert_tlvs(walk, b);
    CHECK(ea == eb);
    errors += static_cast<bool>(ea);
    CHECK(a.upstream_text == b.upstream_text);
    CHECK(a.upstream == b.upstream);
    CHECK(a.tls_name == b.tls_name);
    CHECK(a.username == b.username);
    CHECK(a.task_id == b.task_id);
    // A view whose tlv_bytes no longer match the index is not read through it.
    if (!r.header.tlv_bytes.empty()) {
      HeaderView shorter = r.header;
      shorter.tlv_bytes = shorter.tlv_bytes.first(shorter.tlv_bytes.size() - 1);
      DivertTlvs c;
      walk.tlv_bytes = shorter.tlv_bytes;
      CHECK(read_divert_tlvs(shorter, c) == read_divert_tlvs(walk, b));
      CHECK(c.upstream_text == b.upstream_text);
      CHECK(c.username == b.username);
      CHECK(c.task_id == b.task_id);
    }
  }
  CHECK(indexed > 5000);
  CHECK(errors > 1000);
}

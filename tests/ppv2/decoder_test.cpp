#include <random>
#include <set>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

namespace {

// A PROXY TCP4 header with a few TLVs, 12-byte address block.
Bytes sample(bool with_crc = false) {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1111);
  s.dst = ep("192.0.2.2", 2222);
  s.upstream = "example.com:443";
  s.username = "alice";
  s.crc32c = with_crc;
  return encode_ok(s);
}

void set_len(Bytes& h, std::size_t len) {
  h[14] = static_cast<std::uint8_t>(len >> 8);
  h[15] = static_cast<std::uint8_t>(len);
}

}  // namespace

TEST_CASE("decoder: parse() never reads past 16 + len and reports consumed") {
  Bytes h = sample();
  Bytes stream = h;
  for (int i = 0; i < 50; ++i) stream.push_back(0xEE);
  auto r = parse(stream);
  REQUIRE(r.complete());
  CHECK(r.consumed == h.size());
  CHECK(r.header.raw.size() == h.size());
  // Prefixes ask for more, with the total size once the length is known.
  for (std::size_t n = 0; n < h.size(); ++n) {
    auto p = parse(std::span(h).first(n));
    CAPTURE(n);
    REQUIRE(p.need_more());
    CHECK(p.need == (n < 16 ? 16 : h.size()));
  }
}

TEST_CASE("decoder: push decoder, byte by byte and in random tears, leaves payload alone") {
  const Bytes h = sample(true);
  Bytes stream = h;
  const std::string payload = "GET / HTTP/1.1\r\n";
  stream.insert(stream.end(), payload.begin(), payload.end());
  SECTION("byte by byte") {
    Decoder d;
    std::size_t used = 0;
    std::size_t i = 0;
    ParseResult r;
    for (; i < stream.size(); ++i) {
      r = d.feed(std::span(stream).subspan(i, 1));
      used += r.consumed;
      if (!r.need_more()) break;
    }
    REQUIRE(r.complete());
    CHECK(i + 1 == h.size());
    CHECK(used == h.size());
  }
  SECTION("random tears") {
    std::mt19937 rng(7);
    for (int round = 0; round < 500; ++round) {
      Decoder d;
      std::size_t pos = 0;
      ParseResult r;
      std::size_t feeds = 0;
      while (pos < stream.size() && feeds++ < 1000) {
        const std::size_t n = std::min<std::size_t>(1 + rng() % 40, stream.size() - pos);
        r = d.feed(std::span(stream).subspan(pos, n));
        pos += r.consumed;
        if (!r.need_more()) {
          CHECK(r.consumed <= n);
          break;
        }
        REQUIRE(r.consumed == n);
      }
      REQUIRE(r.complete());
      CHECK(pos == h.size());  // the payload was not taken
      CHECK(to_hex(d.result().header.raw) == to_hex(h));
      CHECK(d.result().header.find(tlv::divert_username)->text() == "alice");
      // After completion: same outcome, nothing consumed.
      auto again = d.feed(std::span(stream).subspan(pos));
      CHECK(again.complete());
      CHECK(again.consumed == 0);
    }
  }
  SECTION("large header moves to the heap and stays intact") {
    HeaderSpec s;
    s.src = ep("2001:db8::1", 1);
    s.dst = ep("2001:db8::2", 2);
    std::string up(1500, 'a');
    up += ":1";
    s.upstream = up;
    s.crc32c = true;
    Bytes big = encode_ok(s);
    Decoder d;
    std::size_t pos = 0;
    ParseResult r;
    while (pos < big.size()) {
      r = d.feed(std::span(big).subspan(pos, std::min<std::size_t>(100, big.size() - pos)));
      pos += r.consumed;
      if (!r.need_more()) break;
    }
    REQUIRE(r.complete());
    CHECK(r.header.find(tlv::divert_upstream)->text() == up);
    d.reset();
    CHECK(d.feed(big).complete());
  }
}

TEST_CASE("decoder: all 256 family bytes with both commands") {
  const std::set<int> defined = {0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32};
  for (int cmd = 0; cmd <= 1; ++cmd) {
    for (int fam = 0; fam < 256; ++fam) {
      Bytes h(kSignature.begin(), kSignature.end());
      h.push_back(static_cast<std::uint8_t>(0x20 | cmd));
      h.push_back(static_cast<std::uint8_t>(fam));
      const std::size_t block = fam == 0 ? 0 : (fam >> 4) == 1 ? 12 : (fam >> 4) == 2 ? 36 : 216;
      h.push_back(0);
      h.push_back(static_cast<std::uint8_t>(block));
      h.resize(16 + block, 0x01);
      CAPTURE(cmd, fam);
      auto r = parse(h);
      if (!defined.count(fam)) {
        REQUIRE(r.error());
        CHECK(r.ec == errc::bad_family);
        CHECK(r.error_offset == 13);
        // Rejected as soon as byte 14 arrives.
        CHECK(parse(std::span(h).first(14)).ec == errc::bad_family);
        continue;
      }
      REQUIRE(r.complete());
      CHECK(r.consumed == 16 + block);
      if (cmd == 0) {
        CHECK(r.header.command == Command::local);
        CHECK_FALSE(r.header.addresses_known());
        CHECK(r.header.tlv_bytes.empty());
      } else {
        CHECK(r.header.command == Command::proxy);
        CHECK(static_cast<int>(r.header.family) == fam >> 4);
        CHECK(static_cast<int>(r.header.transport) == (fam & 0xF));
        CHECK(r.header.addresses_known() == (fam != 0));
      }
    }
  }
}

TEST_CASE("decoder: bad signature is detected at its first wrong byte") {
  for (std::size_t pos = 0; pos < 12; ++pos) {
    Bytes h = sample();
    h[pos] ^= 0x40;
    Decoder d;
    for (std::size_t i = 0; i <= pos; ++i) {
      auto r = d.feed(std::span(h).subspan(i, 1));
      CAPTURE(pos, i);
      if (i < pos) {
        REQUIRE(r.need_more());
      } else {
        REQUIRE(r.error());
        CHECK(r.ec == errc::bad_signature);
        CHECK(r.error_offset == pos);
      }
    }
    CHECK(parse(std::span(h).first(pos + 1)).ec == errc::bad_signature);
  }
  // An HTTP request or a v1 line is refused at byte 0 by the v2 parser.
  CHECK(parse(as_bytes("GET / HTTP/1.1\r\n")).error_offset == 0);
  CHECK(parse(as_bytes("PROXY TCP4 ")).ec == errc::bad_signature);
}

TEST_CASE("decoder: version nibble, command nibble") {
  for (int v = 0; v < 16; ++v) {
    for (int c = 0; c < 16; ++c) {
      Bytes h = sample();
      h[12] = static_cast<std::uint8_t>(v << 4 | c);
      auto r = parse(std::span(h).first(13));  // decided on byte 13 alone
      CAPTURE(v, c);
      if (v != 2) {
        CHECK(r.ec == errc::bad_version);
      } else if (c > 1) {
        CHECK(r.ec == errc::bad_command);
      } else {
        CHECK(r.need_more());
      }
    }
  }
}

TEST_CASE("decoder: malformed TLV areas (haproxy reg-test shapes)") {
  Bytes h = sample();  // 16 + 12 + E0(3+15) + E2(3+5) = 54
  REQUIRE(h.size() == 54);
  SECTION("TLV runs past len") {
    h[16 + 12 + 3 + 15 + 2] = 6;  // E2 claims 6 bytes, 5 present
    auto r = parse(h);
    CHECK(r.ec == errc::tlv_overrun);
    CHECK(r.error_offset == 16 + 12 + 18);
  }
  SECTION("len shorter than the last TLV") {
    set_len(h, 38 - 1);
    CHECK(parse(h).ec == errc::tlv_overrun);
  }
  for (int stray = 1; stray <= 2; ++stray) {
    SECTION("stray bytes after the last TLV: " + std::to_string(stray)) {
      for (int i = 0; i < stray; ++i) h.push_back(0);
      set_len(h, h.size() - 16);
      auto r = parse(h);
      CHECK(r.ec == errc::trailing_bytes);
      CHECK(r.error_offset == 54);
    }
  }
  SECTION("three stray zero bytes are an empty TLV of type 0: valid") {
    for (int i = 0; i < 3; ++i) h.push_back(0);
    set_len(h, h.size() - 16);
    CHECK(parse(h).complete());
  }
  SECTION("stray non-empty garbage after the last TLV overruns") {
    h.insert(h.end(), {0x41, 0x41, 0x41, 0x41});
    set_len(h, h.size() - 16);
    CHECK(parse(h).ec == errc::tlv_overrun);
  }
  SECTION("short address block, detected from the fixed 16 bytes") {
    for (std::size_t len : {0, 1, 11}) {
      set_len(h, len);
      auto r = parse(std::span(h).first(16));
      CHECK(r.ec == errc::address_block_truncated);
      CHECK(r.error_offset == 14);
    }
    Bytes v6(kSignature.begin(), kSignature.end());
    v6.insert(v6.end(), {0x21, 0x21, 0x00, 35});
    v6.resize(16 + 35);
    CHECK(parse(v6).ec == errc::address_block_truncated);
    Bytes ux(kSignature.begin(), kSignature.end());
    ux.insert(ux.end(), {0x21, 0x31, 0x00, 215});
    ux.resize(16 + 215);
    CHECK(parse(ux).ec == errc::address_block_truncated);
  }
  SECTION("LOCAL skips its body whatever it holds") {
    h[12] = 0x20;
    h[16 + 12 + 2] = 0xFF;  // E0 length garbage: not interpreted for LOCAL
    auto r = parse(h);
    REQUIRE(r.complete());
    CHECK(r.consumed == 54);
    CHECK(r.header.command == Command::local);
    set_len(h, 3);  // LOCAL with a body shorter than the family's block is fine
    CHECK(parse(h).consumed == 19);
  }
}

TEST_CASE("decoder: CRC32C checks") {
  Bytes h = sample(true);
  const std::size_t at = h.size() - 4;
  REQUIRE(parse(h).complete());
  SECTION("wrong CRC") {
    h[at + 3] ^= 1;
    auto r = parse(h);
    CHECK(r.ec == errc::crc_mismatch);
    CHECK(r.error_offset == at);
    CHECK(parse(h, {.verify_crc = false}).complete());
  }
  SECTION("CRC stored little-endian (libproxyprotocol's bug) is refused") {
    std::swap(h[at], h[at + 3]);
    std::swap(h[at + 1], h[at + 2]);
    CHECK(parse(h).ec == errc::crc_mismatch);
  }
  SECTION("CRC TLV of length 3 or 5") {
    Bytes a = sample();
    a.insert(a.end(), {0x03, 0x00, 0x03, 0, 0, 0});
    set_len(a, a.size() - 16);
    CHECK(parse(a).ec == errc::crc_bad_length);
    Bytes b = sample();
    b.insert(b.end(), {0x03, 0x00, 0x05, 0, 0, 0, 0, 0});
    set_len(b, b.size() - 16);
    CHECK(parse(b).ec == errc::crc_bad_length);
  }
  SECTION("two CRC TLVs") {
    Bytes a = sample();
    a.insert(a.end(), {0x03, 0x00, 0x04, 0, 0, 0, 0, 0x03, 0x00, 0x04, 0, 0, 0, 0});
    set_len(a, a.size() - 16);
    CHECK(parse(a).ec == errc::crc_bad_length);
  }
}

TEST_CASE("decoder: size cap, checked before the body arrives") {
  Bytes h = sample();
  CHECK(parse(h, {.max_size = 54}).complete());
  auto r = parse(std::span(h).first(16), {.max_size = 53});
  CHECK(r.ec == errc::header_too_large);
  CHECK(r.error_offset == 14);
  // Default 4096: len 4081 refused from the fixed part alone, 4080 waits for more.
  set_len(h, 4081);
  CHECK(parse(std::span(h).first(16)).ec == errc::header_too_large);
  set_len(h, 4080);
  CHECK(parse(std::span(h).first(16)).need == 4096);
  CHECK(parse(haproxy_golden(), {.max_size = 129}).ec == errc::header_too_large);
}

TEST_CASE("decoder: PROXY + UNSPEC accepted as 'use the real endpoints', or refused by option") {
  HeaderSpec s;
  s.upstream = "example.com:443";
  Bytes h = encode_ok(s);
  auto r = parse(h);
  REQUIRE(r.complete());
  CHECK_FALSE(r.header.addresses_known());
  CHECK(r.header.find(tlv::divert_upstream)->text() == "example.com:443");
  auto no = parse(h, {.accept_proxy_unspec = false});
  CHECK(no.ec == errc::unspec_rejected);
  CHECK(no.error_offset == 13);
  CHECK_FALSE(no.message().empty());
}

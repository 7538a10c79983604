#include <string>

#include "divert/ppv2/crc32c.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

namespace {
Uuid test_uuid() {
  return *Uuid::parse("0192f0c1-2b3c-7d4e-8f50-6172839405a6");
}
}  // namespace

TEST_CASE("encoder: typical divert header, exact bytes, TLVs in E0 E1 E2 E3 order") {
  HeaderSpec s;
  s.src = ep("192.0.2.10", 50000);
  s.dst = ep("198.51.100.1", 3128);
  // Set in reverse order: the wire order must not depend on it.
  s.task_id = test_uuid();
  s.username = "alice";
  s.tls_name = "example.com";
  s.upstream = "example.com:443";
  const Bytes h = encode_ok(s);
  const std::string want =
      "0d0a0d0a000d0a515549540a"
      "21"
      "11"
      "0047"
      "c000020a"
      "c6336401"
      "c350"
      "0c38"
      "e0000f"
      "6578616d706c652e636f6d3a343433"
      "e1000b"
      "6578616d706c652e636f6d"
      "e20005"
      "616c696365"
      "e30010"
      "0192f0c12b3c7d4e8f506172839405a6";
  CHECK(to_hex(h) == want);
}

TEST_CASE("encoder: IPv6, IPv4-mapped folding and mixed-family promotion") {
  HeaderSpec s;
  SECTION("two IPv6") {
    s.src = ep("2001:db8::1", 1);
    s.dst = ep("2001:db8::2", 2);
    auto h = encode_ok(s);
    CHECK(h[13] == 0x21);
    CHECK(h.size() == 16 + 36);
    auto r = parse(h);
    CHECK(r.header.src == s.src);
    CHECK(r.header.dst == s.dst);
  }
  SECTION("v4-mapped on both sides folds to IPv4") {
    s.src = ep("::ffff:192.0.2.1", 1);
    s.dst = ep("::ffff:192.0.2.2", 2);
    auto h = encode_ok(s);
    CHECK(h[13] == 0x11);
    auto r = parse(h);
    CHECK(r.header.src == ep("192.0.2.1", 1));
    CHECK(r.header.dst == ep("192.0.2.2", 2));
  }
  SECTION("v4-mapped with IPv4 folds to IPv4") {
    s.src = ep("::ffff:192.0.2.1", 1);
    s.dst = ep("192.0.2.2", 2);
    CHECK(encode_ok(s)[13] == 0x11);
  }
  SECTION("IPv4 with IPv6 promotes the IPv4 side to v4-mapped") {
    s.src = ep("192.0.2.1", 1);
    s.dst = ep("2001:db8::2", 2);
    auto h = encode_ok(s);
    CHECK(h[13] == 0x21);
    auto r = parse(h);
    CHECK(r.header.src == ep("::ffff:192.0.2.1", 1));
    CHECK(r.header.dst == s.dst);
  }
  SECTION("UDP") {
    s.transport = Transport::dgram;
    s.src = ep("192.0.2.1", 1);
    s.dst = ep("2001:db8::2", 2);
    CHECK(encode_ok(s)[13] == 0x22);
  }
}

TEST_CASE("encoder: LOCAL, PROXY+UNSPEC and UNIX shapes") {
  HeaderSpec s;
  SECTION("LOCAL ignores endpoints and has no address block") {
    s.command = Command::local;
    s.src = ep("192.0.2.1", 1);
    auto h = encode_ok(s);
    CHECK(to_hex(h) ==
          "0d0a0d0a000d0a515549540a"
          "20"
          "00"
          "0000");
  }
  SECTION("LOCAL may carry TLVs") {
    s.command = Command::local;
    s.crc32c = true;
    auto h = encode_ok(s);
    CHECK(h.size() == 16 + 7);
    CHECK(parse(h).complete());
  }
  SECTION("PROXY with both sides unknown is UNSPEC") {
    auto h = encode_ok(s);
    CHECK(to_hex(h) ==
          "0d0a0d0a000d0a515549540a"
          "21"
          "00"
          "0000");
  }
  SECTION("UNIX stream") {
    const std::string longest(108, 'x');
    s.src = Endpoint::unix_socket("/run/client.sock");
    s.dst = Endpoint::unix_socket(longest);
    auto h = encode_ok(s);
    CHECK(h[13] == 0x31);
    CHECK(h.size() == 16 + 216);
    auto r = parse(h);
    REQUIRE(r.complete());
    CHECK(r.header.src.path == "/run/client.sock");
    CHECK(r.header.dst.path == std::string(108, 'x'));
  }
}

TEST_CASE("encoder: every failure is a clear error code") {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  SECTION("one side missing") {
    s.dst = Endpoint{};
    CHECK(encoded_size(s).ec == errc::address_family_mismatch);
  }
  SECTION("UNIX with IP") {
    s.dst = Endpoint::unix_socket("/x");
    CHECK(encoded_size(s).ec == errc::address_family_mismatch);
  }
  SECTION("UNIX path too long") {
    s.src = Endpoint::unix_socket(std::string(109, 'x'));
    s.dst = Endpoint::unix_socket("/x");
    CHECK(encoded_size(s).ec == errc::unix_path_too_long);
  }
  SECTION("size cap, default 4096") {
    std::string up = std::string(4096 - 16 - 12 - 3 - 4, 'h') + ":443";
    s.upstream = up;
    CHECK(encoded_size(s).size == 4096);
    CHECK_FALSE(encoded_size(s).ec);
    up += "4";
    s.upstream = up;
    CHECK(encoded_size(s).ec == errc::header_too_large);
    CHECK(encoded_size(s, {.max_size = 10000}).size == 4097);
  }
  SECTION("u16 length counts the address block") {
    // TLVs alone fit in 65535, TLVs + the 36-byte IPv6 block do not.
    s.src = ep("2001:db8::1", 1);
    s.dst = ep("2001:db8::2", 2);
    std::string v(65535 - 3 - 20, 'v');
    s.authority = v;
    EncodeOptions o{.max_size = 16 + 70000};
    auto r = encoded_size(s, o);
    CHECK(r.ec == errc::length_overflow);
    v.resize(65535 - 3 - 36);
    s.authority = v;
    r = encoded_size(s, o);
    CHECK_FALSE(r.ec);
    CHECK(r.size == 16 + 65535);
    auto h = encode_ok(s, o);
    CHECK(parse(h, {.max_size = 16 + 65535}).complete());
  }
  SECTION("a TLV value above 65535") {
    std::string v(65536, 'v');
    s.authority = v;
    CHECK(encoded_size(s, {.max_size = 200000}).ec == errc::tlv_value_too_large);
  }
  SECTION("NUL or empty in the upstream TLV") {
    s.upstream = std::string_view("a\0b:1", 5);
    CHECK(encoded_size(s).ec == errc::invalid_tlv_value);
    s.upstream = "";
    CHECK(encoded_size(s).ec == errc::invalid_tlv_value);
  }
  SECTION("caller buffer too small") {
    std::uint8_t buf[27];
    auto r = encode(s, buf);
    CHECK(r.ec == errc::buffer_too_small);
    CHECK(r.size == 28);
  }
  CHECK(std::error_code(errc::header_too_large).message() ==
        "PROXY header exceeds the configured size cap");
  CHECK(std::error_code(errc::tlv_overrun).category().name() == std::string("divert.ppv2"));
}

TEST_CASE("encoder: CRC32C is last, big-endian, over the header with the value zeroed") {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  s.upstream = "example.com:443";
  s.authority = "example.com";
  const std::uint8_t uid[] = {1, 2, 3};
  s.unique_id = std::span<const std::uint8_t>(uid);
  const std::uint8_t app[] = {9};
  const TlvView extra[] = {{0xE7, app}, {0x30, as_bytes("ns1")}};
  s.extra = extra;
  s.noop_padding = 5;
  s.crc32c = true;
  Bytes h = encode_ok(s);
  std::vector<int> types;
  auto r = parse(h);
  REQUIRE(r.complete());
  for (auto t : r.header.tlvs()) types.push_back(t.type);
  CHECK(types == std::vector<int>{0xE0, 0x02, 0x05, 0xE7, 0x30, 0x04, 0x03});
  Bytes z = h;
  const std::size_t at = h.size() - 4;
  const std::uint32_t stored = std::uint32_t(h[at]) << 24 | std::uint32_t(h[at + 1]) << 16 |
                               std::uint32_t(h[at + 2]) << 8 | h[at + 3];
  for (int i = 0; i < 4; ++i) z[at + i] = 0;
  CHECK(crc32c_portable(z) == stored);
  CHECK(r.header.crc32c == stored);
  CHECK(r.header.find(tlv::noop)->value.size() == 5);
}

TEST_CASE("HeaderBuffer: inline up to 536 bytes, heap above; copies are deep") {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  std::string up(536 - 16 - 12 - 3 - 4, 'h');
  up += ":443";
  s.upstream = up;
  HeaderBuffer b;
  REQUIRE_FALSE(encode(s, b));
  CHECK(b.size() == 536);
  CHECK_FALSE(b.on_heap());
  HeaderBuffer c = b;
  CHECK(to_hex(c.bytes()) == to_hex(b.bytes()));
  CHECK(c.data() != b.data());
  up = "h" + up;  // not insert(0, ...): GCC 12 -Wrestrict false positive
  s.upstream = up;
  REQUIRE_FALSE(encode(s, b));
  CHECK(b.size() == 537);
  CHECK(b.on_heap());
  CHECK(parse(b.bytes()).complete());
}

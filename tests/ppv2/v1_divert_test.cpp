#include <string>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

TEST_CASE("v1: valid lines") {
  const std::string l4 = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  auto r = parse_v1(as_bytes(l4 + "GET /"));
  REQUIRE(r.complete());
  CHECK(r.consumed == l4.size());
  CHECK(r.header.version == 1);
  CHECK(r.header.src == ep("192.0.2.1", 56324));
  CHECK(r.header.dst == ep("198.51.100.2", 443));
  auto r6 = parse_v1(as_bytes("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n"));
  REQUIRE(r6.complete());
  CHECK(r6.header.src == ep("2001:db8::1", 0));
  CHECK(r6.header.dst == ep("::1", 65535));
  auto u = parse_v1(as_bytes("PROXY UNKNOWN whatever follows\r\n"));
  REQUIRE(u.complete());
  CHECK_FALSE(u.header.addresses_known());
  CHECK(parse_v1(as_bytes("PROXY UNKNOWN\r\n")).complete());
  // Longest legal line: 107 bytes.
  const std::string longest =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "65535 65535\r\n";
  REQUIRE(longest.size() == 104);
  CHECK(parse_v1(as_bytes(longest)).complete());
  const std::string unk107 = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
  REQUIRE(unk107.size() == 107);
  CHECK(parse_v1(as_bytes(unk107)).complete());
}

TEST_CASE("v1: strict rejections") {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",     // LF without CR
           "PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n",  // double space
           "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n",  // trailing space
           "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",       // missing port
           "PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",       // family mismatch
           "PROXY TCP6 192.0.2.1 ::1 1 2\r\n",                  // family mismatch
           "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",   // port range
           "PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",    // leading zero
           "PROXY TCP4 192.0.2.1 198.51.100.2 +443 443\r\n",    // sign
           "PROXY TCP4 192.0.2.001 198.51.100.2 1 2\r\n",       // non-canonical IPv4
           "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",         // unknown protocol
           "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",          // CR not followed by LF
           "PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n",        // control char
           "PROXY\r\n",                                         // prefix incomplete + CRLF
           "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",         // case
       }) {
    CAPTURE(bad);
    auto r = parse_v1(as_bytes(bad));
    CHECK(r.error());
    CHECK(r.ec == errc::v1_bad_format);
  }
  const std::string too_long = "PROXY UNKNOWN " + std::string(200, 'x');
  auto r = parse_v1(as_bytes(too_long));
  CHECK(r.ec == errc::v1_too_long);
  CHECK(parse_v1(as_bytes(too_long.substr(0, 106))).need_more());
  CHECK(parse_v1(as_bytes("PROX")).need_more());
  CHECK(parse_v1(as_bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r")).need_more());
}

TEST_CASE("parse_any and the push decoder with v1 allowed") {
  const std::string l4 = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nHELLO";
  CHECK(parse_any(as_bytes(l4)).header.version == 1);
  CHECK(parse_any(haproxy_golden()).header.version == 2);
  CHECK(parse_any(as_bytes("GET / HTTP/1.1\r\n")).ec == errc::not_proxy_protocol);
  Decoder d({}, /*allow_v1=*/true);
  std::size_t used = 0;
  ParseResult r;
  for (std::size_t i = 0; i < l4.size(); ++i) {
    r = d.feed(as_bytes(l4).subspan(i, 1));
    used += r.consumed;
    if (!r.need_more()) break;
  }
  REQUIRE(r.complete());
  CHECK(used == l4.size() - 5);  // HELLO left for the caller
  Decoder d2({}, true);
  auto r2 = d2.feed(as_bytes(l4));
  REQUIRE(r2.complete());
  CHECK(r2.consumed == l4.size() - 5);
  Decoder d3({}, true);
  CHECK(d3.feed(haproxy_golden()).complete());
  Decoder d4;  // v1 not allowed
  CHECK(d4.feed(as_bytes(l4)).ec == errc::bad_signature);
}

TEST_CASE("divert TLV view: upstream host:port, TLS name, username, task id") {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  s.upstream = "[2001:db8::1]:8443";
  s.tls_name = "2001:db8::1";
  s.username = "bob";
  s.task_id = *Uuid::parse("0192F0C1-2B3C-7D4E-8F50-6172839405A6");
  Bytes h = encode_ok(s);
  auto r = parse(h);
  REQUIRE(r.complete());
  DivertTlvs d;
  REQUIRE_FALSE(read_divert_tlvs(r.header, d));
  REQUIRE(d.upstream);
  CHECK(d.upstream->host == "2001:db8::1");
  CHECK(d.upstream->port == 8443);
  CHECK(d.upstream->ipv6_literal);
  CHECK(d.tls_name == "2001:db8::1");
  CHECK(d.username == "bob");
  REQUIRE(d.task_id);
  CHECK(d.task_id->to_string() == "0192f0c1-2b3c-7d4e-8f50-6172839405a6");
}

TEST_CASE("divert TLV view: errors") {
  auto with = [](std::vector<std::uint8_t> tlvs) {
    HeaderSpec s;
    s.src = ep("192.0.2.1", 1);
    s.dst = ep("192.0.2.2", 2);
    Bytes h = encode_ok(s);
    h.insert(h.end(), tlvs.begin(), tlvs.end());
    h[15] = static_cast<std::uint8_t>(h.size() - 16);
    auto r = parse(h);
    REQUIRE(r.complete());
    DivertTlvs d;
    return read_divert_tlvs(r.header, d);
  };
  CHECK(with({0xE3, 0, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) ==
        errc::bad_task_id);
  CHECK(with({0xE0, 0, 3, 'a', ':', '1', 0xE0, 0, 3, 'b', ':', '1'}) == errc::duplicate_tlv);
  CHECK(with({0xE2, 0, 1, 'a', 0xE2, 0, 1, 'b'}) == errc::duplicate_tlv);
  CHECK(with({0xE0, 0, 4, 'a', ':', '0', '1'}) == errc::bad_upstream);
  CHECK_FALSE(with({0xE0, 0, 3, 'a', ':', '1'}));
}

TEST_CASE("parse_upstream") {
  auto u = parse_upstream("example.com:443");
  REQUIRE(u);
  CHECK(u->host == "example.com");
  CHECK(u->port == 443);
  CHECK_FALSE(u->ipv6_literal);
  CHECK(parse_upstream("192.0.2.1:1")->host == "192.0.2.1");
  CHECK(parse_upstream("[::1]:65535")->port == 65535);
  for (const char* bad : {"", "example.com", "example.com:", ":443", "example.com:0",
                          "example.com:65536", "example.com:+1", "example.com:01", "::1:443",
                          "[::1]", "[]:1", "[example.com]:1", "[192.0.2.1]:1", "a b:1", "[::1:1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_upstream(bad));
  }
  CHECK_FALSE(parse_upstream(std::string_view("a\0:1", 4)));
}

TEST_CASE("Uuid text form") {
  auto u = Uuid::parse("00112233-4455-6677-8899-aabbccddeeff");
  REQUIRE(u);
  CHECK(u->bytes[0] == 0x00);
  CHECK(u->bytes[15] == 0xff);
  CHECK(u->to_string() == "00112233-4455-6677-8899-aabbccddeeff");
  CHECK_FALSE(Uuid::parse("00112233445566778899aabbccddeeff"));
  CHECK_FALSE(Uuid::parse("00112233-4455-6677-8899-aabbccddeefg"));
  CHECK_FALSE(Uuid::parse("00112233-4455-6677-8899_aabbccddeeff"));
}

TEST_CASE("Endpoint helpers") {
  CHECK(ep("192.0.2.1", 1).ip_string() == "192.0.2.1");
  CHECK(ep("2001:db8::1", 1).ip_string() == "2001:db8::1");
  CHECK(ep("::ffff:192.0.2.1", 1).is_v4_mapped());
  CHECK_FALSE(ep("::1", 1).is_v4_mapped());
  CHECK_FALSE(Endpoint::ip_literal("[::1]", 1));
  CHECK_FALSE(Endpoint::ip_literal("example.com", 1));
  CHECK(Endpoint{}.ip_string().empty());
}

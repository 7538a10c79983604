// Headers produced by independent implementations (anchors.md), decoded exactly.
#include <vector>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

TEST_CASE("golden: AWS NLB header with CRC32C, a VPC endpoint TLV and NOOP padding") {
  Bytes h = aws_nlb_golden();
  REQUIRE(h.size() == 100);
  Bytes stream = h;
  stream.push_back('G');  // payload after the header must be left alone
  auto r = parse(stream);
  REQUIRE(r.complete());
  CHECK(r.consumed == 100);
  const auto& v = r.header;
  CHECK(v.command == Command::proxy);
  CHECK(v.family == AddressFamily::inet);
  CHECK(v.transport == Transport::stream);
  CHECK(v.src == ep("172.31.7.113", 51442));
  CHECK(v.dst == ep("172.31.10.31", 80));
  REQUIRE(v.crc32c);
  CHECK(*v.crc32c == 0xe8d6892du);
  std::vector<std::pair<int, std::size_t>> seen;
  for (auto t : v.tlvs()) seen.emplace_back(t.type, t.value.size());
  CHECK(seen == std::vector<std::pair<int, std::size_t>>{{0x03, 4}, {0xEA, 23}, {0x04, 36}});
  auto ea = v.find(0xEA);
  REQUIRE(ea);
  CHECK(ea->text().substr(1) == "vpce-08d2bf15fac5001c9");
  CHECK(v.raw.data() == stream.data());  // zero copy
}

TEST_CASE("golden: HAProxy header with CRC32C, AUTHORITY, UNIQUE_ID and SSL") {
  Bytes h = haproxy_golden();
  REQUIRE(h.size() == 130);
  auto r = parse(h);
  REQUIRE(r.complete());
  CHECK(r.consumed == 130);
  const auto& v = r.header;
  CHECK(v.src == ep("127.0.0.1", 45138));
  CHECK(v.dst == ep("127.0.0.1", 25253));
  CHECK(v.find(tlv::authority)->text() == "AUTHORITY");
  CHECK(v.find(tlv::unique_id)->text() == "UNIQUE_ID");
  auto ssl = v.find(tlv::ssl);
  REQUIRE(ssl);
  REQUIRE(ssl->value.size() == 0x44);
  CHECK(ssl->value[0] == 0x01);  // client: SSL
  // Sub-TLVs after client(1) + verify(4) use the same TLV format.
  TlvIterator it(ssl->value.data() + 5, ssl->value.data() + ssl->value.size());
  TlvIterator end(ssl->value.data() + ssl->value.size(), ssl->value.data() + ssl->value.size());
  std::vector<std::string> subs;
  for (; it != end; ++it)
    subs.push_back(std::to_string((*it).type) + "=" + std::string((*it).text()));
  CHECK(subs == std::vector<std::string>{"33=TLSv1.2", "37=RSA4096", "36=RSA-SHA256",
                                         "35=ECDHE-RSA-AES256-GCM-SHA384"});
}

TEST_CASE("golden headers decode identically when fed byte by byte") {
  for (const Bytes& h : {aws_nlb_golden(), haproxy_golden()}) {
    Decoder d;
    std::size_t used = 0;
    ParseResult r;
    for (std::size_t i = 0; i < h.size(); ++i) {
      r = d.feed(std::span(h).subspan(i, 1));
      used += r.consumed;
      if (i + 1 < h.size()) REQUIRE(r.need_more());
    }
    REQUIRE(r.complete());
    CHECK(used == h.size());
    CHECK(to_hex(r.header.raw) == to_hex(h));
    CHECK(r.header.src == parse(h).header.src);
  }
}

TEST_CASE("golden headers: a flipped bit anywhere in a CRC-protected header is refused") {
  for (const Bytes& h : {aws_nlb_golden(), haproxy_golden()}) {
    REQUIRE(h[28] == tlv::crc32c);  // both captures put the CRC TLV first
    for (std::size_t i = 16; i < h.size(); ++i) {
      Bytes c = h;
      c[i] ^= 0x01;
      auto r = parse(c);
      CAPTURE(i);
      if (i == 28) {
        // 0x03 -> 0x02: the CRC TLV becomes AUTHORITY, so there is no CRC left to check.
        REQUIRE(r.complete());
        CHECK_FALSE(r.header.crc32c);
        continue;
      }
      CHECK(r.error());  // CRC mismatch, or a structural error the flip caused
    }
  }
}

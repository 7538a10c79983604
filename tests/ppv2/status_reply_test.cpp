// TLV 0xE7 (status reply request) and the 8-byte upstream status reply
// (design.md "Upstream status reply"), byte for byte.
#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "divert/error.hpp"
#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/ppv2/status_reply.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;
using namespace std::chrono_literals;

namespace {

// PROXY TCP4 192.0.2.1:51000 -> 198.51.100.2:3128, upstream example.com:443,
// a task id, and the status reply request.
HeaderSpec status_spec() {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 51000);
  s.dst = ep("198.51.100.2", 3128);
  s.upstream = "example.com:443";
  s.task_id = *Uuid::parse("00112233-4455-6677-8899-aabbccddeeff");
  s.status_reply = true;
  return s;
}

const char* const kStatusHeaderHex =
    "0d0a0d0a000d0a515549540a"          // signature
    "21"                                // v2, PROXY
    "11"                                // TCP over IPv4
    "0035"                              // len 53 = 12 + 18 + 19 + 4
    "c0000201"                          // 192.0.2.1
    "c6336402"                          // 198.51.100.2
    "c738"                              // 51000
    "0c38"                              // 3128
    "e0000f"                            // 0xE0, 15 bytes
    "6578616d706c652e636f6d3a343433"    // example.com:443
    "e30010"                            // 0xE3, 16 bytes
    "00112233445566778899aabbccddeeff"  // task id
    "e7000101";                         // 0xE7, 1 byte: 0x01

// A PROXY TCP4 header whose TLV area is `tlvs`, decoded.
ParseResult with_tlvs(const Bytes& tlvs) {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  static Bytes h;  // the result points into it
  h = encode_ok(s);
  h.insert(h.end(), tlvs.begin(), tlvs.end());
  h[15] = static_cast<std::uint8_t>(h.size() - 16);
  return parse(h);
}

std::error_code read_tlvs(const Bytes& tlvs, DivertTlvs& d) {
  auto r = with_tlvs(tlvs);
  REQUIRE(r.complete());
  return read_divert_tlvs(r.header, d);
}

}  // namespace

TEST_CASE("status reply request: 0xE7 = 0x01 right after 0xE3, exact bytes",
          "[ppv2][status_reply]") {
  const HeaderSpec s = status_spec();
  CHECK(to_hex(encode_ok(s)) == kStatusHeaderHex);
  CHECK(encoded_size(s).size == 69);
  HeaderBuffer buf;
  REQUIRE_FALSE(encode(s, buf));
  CHECK(to_hex(buf.bytes()) == kStatusHeaderHex);

  // Off (the default): no 0xE7.
  HeaderSpec off = s;
  off.status_reply = false;
  const std::string plain = to_hex(encode_ok(off));
  CHECK(plain.find("e70001") == std::string::npos);
  CHECK(encoded_size(off).size == 65);

  // After 0xE3 and before the generic TLVs, also without 0xE3 and for IPv6.
  HeaderSpec more = s;
  more.task_id.reset();
  more.src = ep("2001:db8::1", 1);
  more.dst = ep("2001:db8::2", 2);
  more.authority = "a";
  const Bytes h = encode_ok(more);
  std::vector<int> order;
  for (auto t : parse(h).header.tlvs()) order.push_back(t.type);
  CHECK(order == std::vector<int>{0xE0, 0xE7, 0x02});
}

TEST_CASE("status reply request: read_divert_tlvs finds 0xE7 wherever it is",
          "[ppv2][status_reply]") {
  const Bytes h = from_hex(kStatusHeaderHex);
  auto r = parse(h);
  REQUIRE(r.complete());
  DivertTlvs d;
  REQUIRE_FALSE(read_divert_tlvs(r.header, d));
  CHECK(d.status_reply == std::uint8_t{0x01});
  CHECK(d.upstream_text == "example.com:443");
  REQUIRE(d.task_id);
  CHECK(d.task_id->to_string() == "00112233-4455-6677-8899-aabbccddeeff");

  // First, alone, or among the other divert TLVs; a version this codec does not
  // know is reported as is (the receiver decides).
  CHECK_FALSE(read_tlvs({0xE7, 0, 1, 0x01, 0xE0, 0, 3, 'a', ':', '1'}, d));
  CHECK(d.status_reply == std::uint8_t{0x01});
  CHECK(d.upstream->host == "a");
  CHECK_FALSE(read_tlvs({0xE7, 0, 1, 0x02}, d));
  CHECK(d.status_reply == std::uint8_t{0x02});

  // A DivertTlvs reused for a header without 0xE7 forgets it.
  CHECK_FALSE(read_tlvs({0xE0, 0, 3, 'a', ':', '1'}, d));
  CHECK_FALSE(d.status_reply);
  CHECK_FALSE(read_tlvs({0xE7, 0, 1, 0x01}, d));
  CHECK_FALSE(read_tlvs({}, d));
  CHECK_FALSE(d.status_reply);

  // Fed byte by byte through the push decoder: the same.
  Decoder dec;
  ParseResult last;
  for (std::size_t i = 0; i < h.size(); ++i) last = dec.feed(std::span(h).subspan(i, 1));
  REQUIRE(last.complete());
  REQUIRE_FALSE(read_divert_tlvs(last.header, d));
  CHECK(d.status_reply == std::uint8_t{0x01});
}

TEST_CASE("status reply request: a 0xE7 that is not 1 byte, or twice, is refused",
          "[ppv2][status_reply]") {
  DivertTlvs d;
  const std::error_code empty = read_tlvs({0xE7, 0, 0}, d);
  CHECK(empty == errc::bad_status_request);
  CHECK(empty.message() == "divert status reply request TLV (0xE7) is not 1 byte");
  CHECK(read_tlvs({0xE7, 0, 2, 0x01, 0x00}, d) == errc::bad_status_request);
  CHECK(read_tlvs({0xE7, 0, 1, 0x01, 0xE7, 0, 1, 0x01}, d) == errc::duplicate_tlv);
  CHECK(read_tlvs({0xE0, 0, 3, 'a', ':', '1', 0xE7, 0, 1, 0x01, 0xE7, 0, 1, 0x01}, d) ==
        errc::duplicate_tlv);
}

TEST_CASE("status reply: exact bytes of each status", "[ppv2][status_reply]") {
  struct Case {
    StatusReply reply;
    const char* hex;
  };
  const Case cases[] = {
      {{UpstreamStatus::connected, 12},
       "44565431"
       "00"
       "00"
       "000c"},
      {{UpstreamStatus::refused, 0},
       "44565431"
       "01"
       "00"
       "0000"},
      {{UpstreamStatus::timed_out, 10000},
       "44565431"
       "02"
       "00"
       "2710"},
      {{UpstreamStatus::unreachable, 3},
       "44565431"
       "03"
       "00"
       "0003"},
      {{UpstreamStatus::resolve_failed, 256},
       "44565431"
       "04"
       "00"
       "0100"},
      {{UpstreamStatus::denied, 0},
       "44565431"
       "05"
       "00"
       "0000"},
      {{UpstreamStatus::other, 65535},
       "44565431"
       "ff"
       "00"
       "ffff"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.hex);
    const auto wire = encode_status_reply(c.reply);
    static_assert(std::tuple_size_v<decltype(wire)> == kStatusReplySize);
    CHECK(to_hex(wire) == c.hex);
    CHECK(parse_status_reply(std::span<const std::uint8_t, kStatusReplySize>(wire)) == c.reply);
  }
}

TEST_CASE("status reply: wrong magic or reserved byte is not a reply; unknown status kept",
          "[ppv2][status_reply]") {
  auto parse8 = [](const char* hex) {
    const Bytes b = from_hex(hex);
    REQUIRE(b.size() == kStatusReplySize);
    return parse_status_reply(std::span<const std::uint8_t, kStatusReplySize>(b.data(), 8));
  };
  CHECK_FALSE(parse8("44565432 00 00 0000"));  // DVT2
  CHECK_FALSE(parse8("64565431 00 00 0000"));  // dVT1
  CHECK_FALSE(parse8("00000000 00 00 0000"));
  CHECK_FALSE(parse8("48545450 2f 31 2e31"));  // "HTTP/1.1": an upstream's first bytes
  CHECK_FALSE(parse8("44565431 00 01 0000"));  // reserved not 0
  const auto unknown = parse8("44565431 07 00 0102");
  REQUIRE(unknown);
  CHECK(static_cast<int>(unknown->status) == 7);
  CHECK(unknown->connect_ms == 258);
}

TEST_CASE("status reply: milliseconds saturate at 65535", "[ppv2][status_reply]") {
  CHECK(status_reply_ms(0ns) == 0);
  CHECK(status_reply_ms(999us) == 0);
  CHECK(status_reply_ms(1900us) == 1);
  CHECK(status_reply_ms(12ms) == 12);
  CHECK(status_reply_ms(65535ms) == 65535);
  CHECK(status_reply_ms(65536ms) == 65535);
  CHECK(status_reply_ms(70s) == 65535);
  CHECK(status_reply_ms(std::chrono::nanoseconds::max()) == 65535);
  CHECK(status_reply_ms(-5ms) == 0);
  CHECK(status_reply_ms(std::chrono::nanoseconds::min()) == 0);
}

TEST_CASE("status reply: statuses map to divert::errc::upstream_*", "[ppv2][status_reply]") {
  using divert::errc;
  CHECK_FALSE(to_error_code(UpstreamStatus::connected));
  CHECK(to_error_code(UpstreamStatus::refused) == errc::upstream_refused);
  CHECK(to_error_code(UpstreamStatus::timed_out) == errc::upstream_timed_out);
  CHECK(to_error_code(UpstreamStatus::unreachable) == errc::upstream_unreachable);
  CHECK(to_error_code(UpstreamStatus::resolve_failed) == errc::upstream_resolve_failed);
  CHECK(to_error_code(UpstreamStatus::denied) == errc::upstream_denied);
  CHECK(to_error_code(UpstreamStatus::other) == errc::upstream_failed_other);
  for (int v = 6; v < 255; ++v)
    CHECK(to_error_code(static_cast<UpstreamStatus>(v)) == errc::upstream_failed_other);
}

// The values of divert's TLVs on both sides of the wire: 0xE1 (TLS name) and
// 0xE2 (username) are UTF-8 without NUL (0xE1 not empty either), and 0xE0's
// host has no control character and at most 253 bytes. The encoder refuses
// anything else with invalid_tlv_value; read_divert_tlvs() refuses it too, on a
// view from parse() and from the general decoder alike.
#include <string>
#include <vector>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "ppv2/general.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;

namespace {

HeaderSpec base_spec() {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  s.upstream = "example.com:443";
  s.task_id = *Uuid::parse("0192f0c1-2b3c-7d4e-8f50-6172839405a6");
  return s;
}

// The error of every encoder entry point for `s` (all must agree).
std::error_code encode_error(const HeaderSpec& s) {
  const auto planned = encoded_size(s).ec;
  std::uint8_t buf[4096];
  CHECK(encode(s, buf).ec == planned);
  CHECK(detail::encode_general(s, buf).ec == planned);
  HeaderBuffer hb;
  CHECK(encode(s, hb) == planned);
  return planned;
}

// A PROXY header (IPv4) whose TLV area is `tlvs`, as bytes.
Bytes header_with(const Bytes& tlvs) {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 1);
  s.dst = ep("192.0.2.2", 2);
  Bytes h = encode_ok(s);
  h.insert(h.end(), tlvs.begin(), tlvs.end());
  const std::size_t len = h.size() - 16;
  h[14] = static_cast<std::uint8_t>(len >> 8);
  h[15] = static_cast<std::uint8_t>(len);
  return h;
}

void add_tlv(Bytes& tlvs, std::uint8_t type, std::string_view v) {
  tlvs.push_back(type);
  tlvs.push_back(static_cast<std::uint8_t>(v.size() >> 8));
  tlvs.push_back(static_cast<std::uint8_t>(v.size()));
  tlvs.insert(tlvs.end(), v.begin(), v.end());
}

// read_divert_tlvs() over a header holding one TLV (type, v) besides a good
// 0xE0, decoded by both paths; they must agree.
std::error_code read_with(std::uint8_t type, std::string_view v) {
  Bytes tlvs;
  if (type != tlv::divert_upstream) add_tlv(tlvs, tlv::divert_upstream, "example.com:443");
  add_tlv(tlvs, type, v);
  const Bytes h = header_with(tlvs);
  auto r = parse(h);
  REQUIRE(r.complete());
  DivertTlvs fast;
  const auto ec = read_divert_tlvs(r.header, fast);
  const auto general = detail::parse_general(h);
  REQUIRE(general.complete());
  DivertTlvs slow;
  CHECK(read_divert_tlvs(general.header, slow) == ec);
  return ec;
}

std::string bytes(std::initializer_list<unsigned char> b) {
  return std::string(b.begin(), b.end());
}

}  // namespace

TEST_CASE("0xE1/0xE2 text: well-formed UTF-8 passes both ways") {
  const std::vector<std::string> good = {
      "alice",
      "a",
      "ab",
      "abc",
      "José",
      "日本語",
      "\xF0\x9F\x98\x80",               // U+1F600
      bytes({0xF4, 0x8F, 0xBF, 0xBF}),  // U+10FFFF
      bytes({0xED, 0x9F, 0xBF}),        // U+D7FF
      bytes({0xEE, 0x80, 0x80}),        // U+E000
      std::string(40, 'u'),
      "user-" + std::string(30, 'x') + "é" + std::string(9, 'y'),
  };
  for (const auto& v : good) {
    CAPTURE(v);
    auto s = base_spec();
    s.tls_name = v;
    s.username = v;
    CHECK_FALSE(encode_error(s));
    auto h = encode_ok(s);
    auto r = parse(h);
    REQUIRE(r.complete());
    DivertTlvs d;
    REQUIRE_FALSE(read_divert_tlvs(r.header, d));
    CHECK(d.tls_name == std::string_view(v));
    CHECK(d.username == std::string_view(v));
    CHECK_FALSE(read_with(tlv::divert_tls_name, v));
    CHECK_FALSE(read_with(tlv::divert_username, v));
  }
  auto s = base_spec();
  s.username = "";  // an empty username is valid text (the connector sends none)
  CHECK_FALSE(encode_error(s));
  CHECK_FALSE(read_with(tlv::divert_username, ""));
}

TEST_CASE("0xE1/0xE2 text: NUL, malformed UTF-8 and an empty TLS name are refused both ways") {
  const std::vector<std::string> bad = {
      std::string("a\0b", 3),
      std::string(1, '\0'),
      bytes({0xC3}),                      // truncated
      bytes({'a', 'b', 'c', 0xC3, '('}),  // bad continuation
      bytes({0xC0, 0xAF}),                // overlong '/'
      bytes({0xC1, 0xBF}),                // overlong
      bytes({0xE0, 0x80, 0xAF}),          // overlong
      bytes({0xF0, 0x80, 0x80, 0xAF}),    // overlong
      bytes({0xED, 0xA0, 0x80}),          // surrogate U+D800
      bytes({0xF4, 0x90, 0x80, 0x80}),    // above U+10FFFF
      bytes({0xF5, 0x80, 0x80, 0x80}),
      bytes({0x80}),  // lone continuation
      bytes({0xFF}),
      bytes({0xF0, 0x9F, 0x98}),  // truncated 4-byte
      std::string(20, 'u') + std::string(1, '\0'),
  };
  for (const auto& v : bad) {
    CAPTURE(v);
    auto s = base_spec();
    s.tls_name = v;
    CHECK(encode_error(s) == errc::invalid_tlv_value);
    s.tls_name.reset();
    s.username = v;
    CHECK(encode_error(s) == errc::invalid_tlv_value);
    CHECK(read_with(tlv::divert_tls_name, v) == errc::bad_tls_name);
    CHECK(read_with(tlv::divert_username, v) == errc::bad_username);
  }
  auto s = base_spec();
  s.tls_name = "";
  CHECK(encode_error(s) == errc::invalid_tlv_value);
  CHECK(read_with(tlv::divert_tls_name, "") == errc::bad_tls_name);
  CHECK(std::error_code(errc::bad_username).message() ==
        "divert username TLV (0xE2) is not UTF-8 without NUL");
}

// The ASCII check goes a word at a time (lengths 1-3, 4-7, 8-16 and longer are
// separate paths): a NUL or a stray byte is found at every position.
TEST_CASE("0xE1/0xE2 text: a bad byte is found at every position of every length up to 40") {
  int refused = 0, cases = 0;
  for (std::size_t n = 1; n <= 40; ++n) {
    for (std::size_t at = 0; at < n; ++at) {
      for (unsigned char b : {0x00, 0x80, 0xC3, 0xFF}) {
        std::string v(n, 'a');
        v[at] = static_cast<char>(b);
        // 0xC3 followed by 'a' or by nothing is malformed too.
        auto s = base_spec();
        s.username = v;
        s.tls_name = v;
        ++cases;
        refused += encode_error(s) == errc::invalid_tlv_value &&
                   read_with(tlv::divert_username, v) == errc::bad_username &&
                   read_with(tlv::divert_tls_name, v) == errc::bad_tls_name;
      }
    }
  }
  CHECK(refused == cases);
}

TEST_CASE("0xE0 host: control characters, DEL and hosts over 253 bytes are refused") {
  for (std::string_view bad :
       {"ho\r\nst:80", "ho\tst:80", "host\x7f:80", "\x01:80", "a.b.c.d.e.f\x1f:80"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_upstream(bad));
    CHECK(read_with(tlv::divert_upstream, bad) == errc::bad_upstream);
  }
  const std::string max_host = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                               std::string(63, 'c') + "." + std::string(61, 'd');  // 253
  REQUIRE(max_host.size() == 253);
  for (const auto& ok : {max_host + ":443", max_host + ".:443"}) {
    CAPTURE(ok.size());
    CHECK(parse_upstream(ok));
    CHECK_FALSE(read_with(tlv::divert_upstream, ok));
  }
  for (const auto& bad :
       {max_host + "e:443", max_host + "..:443", std::string(3900, 'h') + ":80"}) {
    CAPTURE(bad.size());
    CHECK_FALSE(parse_upstream(bad));
    CHECK(read_with(tlv::divert_upstream, bad) == errc::bad_upstream);
  }
}

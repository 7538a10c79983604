// UpstreamAddr / WeightedUpstreamAddr: parsing tables, canonical text, every error message.
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

#include "divert/error.hpp"
#include "divert/upstream.hpp"
#include "support/catch.hpp"

using divert::UpstreamAddr;
using divert::WeightedUpstreamAddr;

namespace {

struct Good {
  const char* input;
  std::uint16_t default_port;
  const char* canonical;  // to_string()
  const char* host;       // host()
  bool is_ip;
};

struct Bad {
  const char* input;
  std::uint16_t default_port;
  const char* reason;
};

std::string what_of(std::string_view text, std::uint16_t default_port,
                    std::string_view key = "upstream") {
  try {
    UpstreamAddr::parse(text, default_port, key);
  } catch (const divert::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("UpstreamAddr parses the accepted forms to canonical text") {
  const std::vector<Good> table = {
      {"10.0.0.7", 3128, "10.0.0.7:3128", "10.0.0.7", true},
      {"10.0.0.7:80", 3128, "10.0.0.7:80", "10.0.0.7", true},
      {"10.0.0.7:65535", 0, "10.0.0.7:65535", "10.0.0.7", true},
      {"255.255.255.255:1", 0, "255.255.255.255:1", "255.255.255.255", true},
      {"[2001:db8::1]:443", 0, "[2001:db8::1]:443", "2001:db8::1", true},
      {"[2001:DB8:0:0:0:0:0:1]:443", 0, "[2001:db8::1]:443", "2001:db8::1", true},
      {"[::1]", 3128, "[::1]:3128", "::1", true},
      {"2001:db8::1", 3128, "[2001:db8::1]:3128", "2001:db8::1", true},
      {"::1:80", 3128, "[::1:80]:3128", "::1:80", true},  // bare IPv6 never has a port
      {"2001:db8:0:1:1:1:1:1", 1, "[2001:db8:0:1:1:1:1:1]:1", "2001:db8:0:1:1:1:1:1", true},
      {"2001:0:0:1:0:0:0:1", 1, "[2001:0:0:1::1]:1", "2001:0:0:1::1", true},
      {"2001:db8:0:0:1:0:0:1", 1, "[2001:db8::1:0:0:1]:1", "2001:db8::1:0:0:1", true},
      {"[2001:0DB8::0001]:1", 0, "[2001:db8::1]:1", "2001:db8::1", true},
      {"::2", 1, "[::2]:1", "::2", true},
      {"1::", 1, "[1::]:1", "1::", true},
      {"::1.2.3.4", 1, "[::102:304]:1", "::102:304", true},  // IPv4-compatible: no dotted tail
      {"::ffff:192.0.2.1", 8080, "192.0.2.1:8080", "192.0.2.1", true},
      {"[::ffff:192.0.2.1]:443", 0, "192.0.2.1:443", "192.0.2.1", true},
      {"[::ffff:c000:201]:443", 0, "192.0.2.1:443", "192.0.2.1", true},
      {"np1.internal:3128", 0, "np1.internal:3128", "np1.internal", false},
      {"Example.COM", 443, "example.com:443", "example.com", false},
      {"Example.COM.:8443", 0, "example.com:8443", "example.com", false},
      {"localhost", 3128, "localhost:3128", "localhost", false},
      {"a-b_c.d9:1", 0, "a-b_c.d9:1", "a-b_c.d9", false},
      {"xn--bcher-kva.example:80", 0, "xn--bcher-kva.example:80", "xn--bcher-kva.example", false},
      {"1.2.3.4a:80", 0, "1.2.3.4a:80", "1.2.3.4a", false},  // last label not numeric
      {"10.0.0.7:00080", 0, "10.0.0.7:80", "10.0.0.7", true},
  };
  for (const auto& g : table) {
    INFO("input: " << g.input);
    auto a = UpstreamAddr::parse(g.input, g.default_port);
    CHECK(a.to_string() == g.canonical);
    CHECK(a.host() == g.host);
    CHECK(a.is_ip() == g.is_ip);
    CHECK(a.is_domain() == !g.is_ip);
    // The canonical text parses back to the same value, with no default needed.
    CHECK(UpstreamAddr::parse(a.to_string()) == a);
    auto r = UpstreamAddr::try_parse(g.input, g.default_port);
    REQUIRE(r);
    CHECK(*r.addr == a);
    CHECK(r.reason.empty());
  }
}

TEST_CASE("format_ip_address gives RFC 5952 text") {
  using asio::ip::make_address;
  CHECK(divert::format_ip_address(make_address("10.1.2.3")) == "10.1.2.3");
  CHECK(divert::format_ip_address(make_address("::ffff:10.1.2.3")) == "10.1.2.3");
  CHECK(divert::format_ip_address(make_address("::")) == "::");
  CHECK(divert::format_ip_address(make_address("::1")) == "::1");
  CHECK(divert::format_ip_address(make_address("FE80::1%1")) == "fe80::1");
  CHECK(divert::format_ip_address(make_address("2001:db8:0:0:1:0:0:0")) == "2001:db8:0:0:1::");
  CHECK(divert::format_ip_address(make_address("0:0:1:0:0:0:0:0")) == "0:0:1::");
}

TEST_CASE("UpstreamAddr exposes ip() and port()") {
  auto a = UpstreamAddr::parse("[2001:db8::1]:443");
  CHECK(a.ip() == asio::ip::make_address("2001:db8::1"));
  CHECK(a.port() == 443);
  CHECK(a.host_for_authority() == "[2001:db8::1]");
  auto b = UpstreamAddr::parse("::ffff:10.1.2.3", 1);
  CHECK(b.ip().is_v4());
  CHECK(b.ip() == asio::ip::make_address("10.1.2.3"));
  auto d = UpstreamAddr::parse("Host.Example:9", 0);
  CHECK(d.host() == "host.example");
  CHECK(d.port() == 9);
  CHECK(d.host_for_authority() == "host.example");
}

TEST_CASE("UpstreamAddr refuses bad input with a reason") {
  const std::string long_label(64, 'a');
  const std::string ok_label(63, 'a');
  // 4 labels of 63 + 3 dots = 255 > 253; 3 of 63 + "a" * 61 + 3 dots = 253 is fine.
  const std::string too_long = ok_label + "." + ok_label + "." + ok_label + "." + ok_label;
  const std::string max_len =
      ok_label + "." + ok_label + "." + ok_label + "." + std::string(61, 'b');
  REQUIRE(max_len.size() == 253);
  REQUIRE(UpstreamAddr::parse(max_len + ":1").host() == max_len);
  REQUIRE(UpstreamAddr::parse(max_len + ".:1").host() == max_len);
  REQUIRE(UpstreamAddr::parse(long_label.substr(1) + ".x:1").is_domain());

  const std::vector<Bad> table = {
      {"", 3128, "empty address"},
      {":80", 3128, "empty host"},
      {"[]:80", 0, "empty host"},
      {".", 3128, "empty host"},
      {"0.0.0.0:80", 0, "the unspecified address 0.0.0.0 cannot be an upstream"},
      {"[::]:80", 0, "the unspecified address :: cannot be an upstream"},
      {"::", 3128, "the unspecified address :: cannot be an upstream"},
      {"::ffff:0.0.0.0", 3128, "the unspecified address 0.0.0.0 cannot be an upstream"},
      {"10.0.0.7:0", 3128, "port 0 is not a usable port"},
      {"10.0.0.7", 0, "no port given and no default port applies"},
      {"example.com", 0, "no port given and no default port applies"},
      {"[::1]", 0, "no port given and no default port applies"},
      {"10.0.0.7:", 3128, "empty port after ':'"},
      {"10.0.0.7:65536", 0, "port is above 65535"},
      {"10.0.0.7:123456", 0, "port is above 65535"},
      {"10.0.0.7:8o", 0, "port is not a decimal number ('o')"},
      {"10.0.0.7:-1", 0, "port is not a decimal number ('-')"},
      {"10.0.0.7:+1", 0, "port is not a decimal number ('+')"},
      {"[::1]:8 0", 0, "port is not a decimal number (' ' (space))"},
      {"[::1", 0, "missing ']' after IPv6 address"},
      {"[::1]80", 0, "unexpected characters after ']'"},
      {"[10.0.0.7]:80", 0, "brackets are only for IPv6 addresses"},
      {"[example.com]:80", 0, "bad IPv6 address inside brackets"},
      {"[fe80::1%eth0]:80", 0, "IPv6 zone indexes are not supported"},
      {"fe80::1%eth0", 80, "IPv6 zone indexes are not supported"},
      {"2001:db8::1::2", 80,
       "bad IPv6 address (write an IPv6 address with a port as [address]:port)"},
      {"example.com:80:90", 0,
       "bad IPv6 address (write an IPv6 address with a port as [address]:port)"},
      {"exa mple.com:80", 0, "bad character ' ' (space) in host"},
      {"example.com/x:80", 0, "bad character '/' in host"},
      {"exa\tmple:80", 0, "bad character byte 0x09 in host"},
      {"user@example.com:80", 0, "bad character '@' in host"},
      {"a..b:80", 0, "empty label in domain name"},
      {".a:80", 0, "empty label in domain name"},
      {"a.:80..", 0, "port is not a decimal number ('.')"},
      {"example.com..:80", 0, "empty label in domain name"},
      {"-a.example:80", 0, "domain label starts or ends with '-'"},
      {"a-.example:80", 0, "domain label starts or ends with '-'"},
      {"1.2.3:80", 0, "looks like an IPv4 address but is not a valid dotted quad"},
      {"010.1.1.1:80", 0, "looks like an IPv4 address but is not a valid dotted quad"},
      {"1.2.3.4.5:80", 0, "looks like an IPv4 address but is not a valid dotted quad"},
      {"256.1.1.1:80", 0, "looks like an IPv4 address but is not a valid dotted quad"},
      {"2130706433:80", 0, "looks like an IPv4 address but is not a valid dotted quad"},
      {"host.0x7f:80", 0, "looks like an IPv4 address but is not a valid dotted quad"},
      {"http://np1.example:3128", 0, "a URL is not an address (write host:port)"},
      {"https://[::1]:443/", 0, "a URL is not an address (write host:port)"},
      {"socks5://10.0.0.7", 3128, "a URL is not an address (write host:port)"},
  };
  for (const auto& b : table) {
    std::string input = b.input;
    INFO("input: " << input);
    auto r = UpstreamAddr::try_parse(input, b.default_port);
    CHECK_FALSE(r);
    CHECK(r.reason == b.reason);
    // The exception quotes the input and names the key.
    CHECK(what_of(input, b.default_port) ==
          "divert config: upstream = \"" + input + "\": " + b.reason);
  }
  CHECK(what_of(long_label + ".com:80", 0, "proxy_addr") ==
        "divert config: proxy_addr = \"" + long_label +
            ".com:80\": domain label longer than 63 characters");
  CHECK(UpstreamAddr::try_parse(long_label + ".com:80").reason ==
        "domain label longer than 63 characters");
  CHECK(UpstreamAddr::try_parse(too_long + ":80").reason ==
        "domain name longer than 253 characters");
  CHECK(what_of(too_long + ":80", 0) == "divert config: upstream = \"" + too_long +
                                            ":80\": domain name longer than 253 characters");
}

TEST_CASE("IDN: non-ASCII names become A-labels (UTS #46 non-transitional, IDNA2008)") {
  if (!UpstreamAddr::idn_supported()) {
    // Built with -DDIVERT_WITH_IDN=OFF (or without libidn2): refused, saying why.
    CHECK(UpstreamAddr::try_parse("b\xc3\xbc"
                                  "cher.example:80")
              .reason ==
          "non-ASCII domain name, but divert was built without IDN support (libidn2)");
    return;
  }
  const std::vector<Good> table = {
      {"b\xc3\xbc"
       "cher.example:80",
       0, "xn--bcher-kva.example:80", "xn--bcher-kva.example", false},
      // UTS #46 maps upper case; the non-transitional form keeps the sharp s.
      {"B\xc3\x9c"
       "CHER.Example",
       3128, "xn--bcher-kva.example:3128", "xn--bcher-kva.example", false},
      {"fa\xc3\x9f.de:443", 0, "xn--fa-hia.de:443", "xn--fa-hia.de", false},
      {"m\xc3\xbc"
       "nchen.de.:443",
       0, "xn--mnchen-3ya.de:443", "xn--mnchen-3ya.de", false},
      // Japanese labels; U+3002 (ideographic full stop) separates labels too.
      {"\xe4\xbe\x8b\xe3\x81\x88\xe3\x80\x82\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88:8080", 0,
       "xn--r8jz45g.xn--zckzah:8080", "xn--r8jz45g.xn--zckzah", false},
      // Full-width Latin letters map to ASCII.
      {"\xef\xbd\x85\xef\xbd\x98.com:80", 0, "ex.com:80", "ex.com", false},
  };
  for (const auto& g : table) {
    INFO("input: " << g.input);
    auto r = UpstreamAddr::try_parse(g.input, g.default_port);
    REQUIRE(r);
    CHECK(r.addr->to_string() == g.canonical);  // the TLV 0xE0 value
    CHECK(r.addr->host() == g.host);
    CHECK(r.addr->is_domain());
    CHECK(UpstreamAddr::parse(r.addr->to_string()) == *r.addr);  // A-labels parse as ASCII
  }
  // Next proxies go through the same parser.
  WeightedUpstreamAddr np(
      "b\xc3\xbc"
      "cher.example");
  CHECK(np.addr.to_string() == "xn--bcher-kva.example:3128");
  CHECK(UpstreamAddr::from_domain("b\xc3\xbc"
                                  "cher.example",
                                  443)
            .to_string() == "xn--bcher-kva.example:443");

  // Refused: not UTF-8, names IDNA2008 disallows, and the ASCII rules after conversion.
  for (const char* bad : {"b\xff"
                          "cher.example:80",
                          "b\xc3"
                          "cher.example:80",
                          "\xe2\x98\x83.example:80" /* U+2603 snowman: disallowed */,
                          "b\xc3\xbc"
                          "cher/x.example:80",
                          "b\xc3\xbc"
                          "ch er.example:80"}) {
    INFO("input: " << bad);
    auto r = UpstreamAddr::try_parse(bad);
    CHECK_FALSE(r);
    CHECK_FALSE(r.reason.empty());
  }
  CHECK_THAT(UpstreamAddr::try_parse("b\xff"
                                     "cher.example:80")
                 .reason,
             Catch::StartsWith("bad internationalised domain name: "));
  // A label whose A-label form is longer than 63 characters ("xn--" + 64).
  const std::string long_label = "\xc3\xbc" + std::string(60, 'a');
  CHECK_FALSE(UpstreamAddr::try_parse(long_label + ".example:80"));
  CHECK(UpstreamAddr::try_parse("\xc3\xbc" + std::string(50, 'a') + ".example:80"));
}

TEST_CASE("config_error from parse carries key and value apart") {
  try {
    UpstreamAddr::parse("10.0.0.7:0", 0, "proxy_addr");
    FAIL("no exception");
  } catch (const divert::config_error& e) {
    CHECK(e.key() == "proxy_addr");
    CHECK(e.value() == "10.0.0.7:0");
  }
  CHECK(what_of("x:0", 0) == "divert config: upstream = \"x:0\": port 0 is not a usable port");
}

TEST_CASE("UpstreamAddr from an IP address and from a domain") {
  UpstreamAddr a(asio::ip::make_address("::ffff:10.0.0.1"), 80);
  CHECK(a.to_string() == "10.0.0.1:80");
  CHECK(a == UpstreamAddr::parse("10.0.0.1:80"));
  UpstreamAddr b(asio::ip::make_address("2001:db8::5"), 443);
  CHECK(b.to_string() == "[2001:db8::5]:443");
  CHECK_THROWS_WITH(UpstreamAddr(asio::ip::make_address("0.0.0.0"), 80),
                    "divert config: upstream = \"0.0.0.0:80\": the unspecified address 0.0.0.0 "
                    "cannot be an upstream");
  CHECK_THROWS_WITH(UpstreamAddr(asio::ip::make_address("::1"), 0),
                    "divert config: upstream = \"[::1]:0\": port 0 is not a usable port");

  auto d = UpstreamAddr::from_domain("WWW.Example.org", 443);
  CHECK(d.to_string() == "www.example.org:443");
  CHECK(d.is_domain());
  CHECK(UpstreamAddr::from_domain("192.0.2.9", 1).is_ip());
  CHECK(UpstreamAddr::from_domain("2001:db8::9", 1).to_string() == "[2001:db8::9]:1");
  CHECK_THROWS_WITH(UpstreamAddr::from_domain("bad name", 1),
                    "divert config: upstream = \"bad name\": bad character ' ' (space) in host");
  CHECK_THROWS_WITH(UpstreamAddr::from_domain("a.b", 0),
                    "divert config: upstream = \"a.b\": port 0 is not a usable port");
}

// try_from_domain canonicalises https_forward's TLS verify name (0xE1) exactly as
// 0xE0's host, and refuses what OpenSSL's name checks cannot take.
TEST_CASE("UpstreamAddr::try_from_domain: 0xE1's canonical form, refusals with a reason") {
  auto host = [](std::string_view name) {
    auto r = UpstreamAddr::try_from_domain(name, 443);
    return r ? r.addr->host() : "refused: " + r.reason;
  };
  CHECK(host("WWW.Example.ORG.") == "www.example.org");
  CHECK(host("www.example.org") == UpstreamAddr::parse("WWW.Example.ORG.:443").host());
  CHECK(host("2001:DB8:0:0:0:0:0:1") == "2001:db8::1");
  CHECK(host("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(host("") == "refused: empty host");
  CHECK(host(".") == "refused: empty host");
  CHECK(host(std::string_view("example.com\0.evil", 17)) ==
        "refused: bad character byte 0x00 in host");
  // make_address() reads a C string: the IP before a NUL must not be taken.
  CHECK(host(std::string_view("10.0.0.1\0junk", 13)) == "refused: bad character byte 0x00 in host");
  CHECK(host("fe80::1%1") == "refused: IPv6 zone indexes are not supported");
  CHECK(host("fe80::1%0") == "refused: IPv6 zone indexes are not supported");
  CHECK(host("a b") == "refused: bad character ' ' (space) in host");
  CHECK_FALSE(UpstreamAddr::try_from_domain("a.b", 0));
}

TEST_CASE("UpstreamAddr::parse refuses a NUL instead of reading up to it") {
  for (std::string_view text :
       {std::string_view("10.0.0.1\0junk:80", 16), std::string_view("[::1\0x]:80", 10),
        std::string_view("a\0b:80", 6)}) {
    auto r = UpstreamAddr::try_parse(text, 0);
    INFO(r.reason);
    CHECK_FALSE(r);
  }
  CHECK(UpstreamAddr::try_parse(std::string_view("10.0.0.1\0junk:80", 16)).reason ==
        "bad character byte 0x00 in address");
}

TEST_CASE("UpstreamAddr compares and hashes by canonical value") {
  auto a = UpstreamAddr::parse("Example.com:80");
  auto b = UpstreamAddr::parse("example.com.:80");
  auto c = UpstreamAddr::parse("example.com:81");
  auto d = UpstreamAddr::parse("[::ffff:1.2.3.4]:80");
  auto e = UpstreamAddr::parse("1.2.3.4:80");
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a < c);
  CHECK(d == e);
  CHECK(std::hash<UpstreamAddr>{}(a) == std::hash<UpstreamAddr>{}(b));
  std::unordered_set<UpstreamAddr> set{a, b, c, d, e};
  CHECK(set.size() == 3);
}

TEST_CASE("WeightedUpstreamAddr from text or {addr, weight}") {
  std::vector<WeightedUpstreamAddr> v{{"np1.internal:3128", 2.0}, {"10.0.0.7"}, "[::1]"};
  CHECK(v[0].addr.to_string() == "np1.internal:3128");
  CHECK(v[0].weight == 2.0);
  CHECK(v[1].addr.to_string() == "10.0.0.7:3128");  // proxy default port
  CHECK(v[1].weight == 1.0);
  CHECK(v[2].addr.to_string() == "[::1]:3128");
  WeightedUpstreamAddr w{UpstreamAddr::parse("a.b:1"), 0.5};
  CHECK(w.weight == 0.5);

  CHECK_THROWS_WITH(WeightedUpstreamAddr("a.b:1", 0.0),
                    "divert config: proxy_addr = \"0\": weight of a.b:1 must be a finite "
                    "number > 0");
  CHECK_THROWS_WITH(WeightedUpstreamAddr("a.b:1", -2.5),
                    "divert config: proxy_addr = \"-2.5\": weight of a.b:1 must be a finite "
                    "number > 0");
  CHECK_THROWS_WITH(WeightedUpstreamAddr("a.b:1", std::numeric_limits<double>::infinity()),
                    "divert config: proxy_addr = \"inf\": weight of a.b:1 must be a finite "
                    "number > 0");
  CHECK_THROWS_WITH(WeightedUpstreamAddr("a.b:1", std::numeric_limits<double>::quiet_NaN()),
                    "divert config: proxy_addr = \"nan\": weight of a.b:1 must be a finite "
                    "number > 0");
  CHECK_THROWS_WITH(WeightedUpstreamAddr("a.b:0"),
                    "divert config: proxy_addr = \"a.b:0\": port 0 is not a usable port");
  w.weight = -1;
  CHECK_THROWS_WITH(w.validate("proxy_addr[1].weight"),
                    "divert config: proxy_addr[1].weight = \"-1\": weight of a.b:1 must be a "
                    "finite number > 0");
}

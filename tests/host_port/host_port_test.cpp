// The one host:port splitter (divert/host_port.hpp): its edge cases. The callers'
// own rules on top (UpstreamAddr, the examples' HTTP authority and listen
// address) are tested with them.
#include <string>
#include <vector>

#include "divert/host_port.hpp"
#include "support/catch.hpp"

using divert::HostPortError;
using divert::split_host_port;

namespace {
struct Good {
  const char* text;
  const char* host;
  int port;  // -1: none
  bool bracketed;
  bool bare_ipv6;
};
struct Bad {
  const char* text;
  HostPortError error;
};
}  // namespace

TEST_CASE("split_host_port: the forms it accepts") {
  const std::vector<Good> table = {
      {"example.com", "example.com", -1, false, false},
      {"example.com:443", "example.com", 443, false, false},
      {"10.0.0.7:3128", "10.0.0.7", 3128, false, false},
      {"10.0.0.7", "10.0.0.7", -1, false, false},
      {"[2001:db8::1]:443", "2001:db8::1", 443, true, false},
      {"[2001:db8::1]", "2001:db8::1", -1, true, false},
      {"[::1]:0", "::1", 0, true, false},  // port 0 is the caller's to refuse
      {"h:0", "h", 0, false, false},
      {"h:1", "h", 1, false, false},
      {"h:65535", "h", 65535, false, false},
      {"h:080", "h", 80, false, false},   // leading zeros: RFC 3986 *DIGIT
      {"h:00000", "h", 0, false, false},  // five digits
      // IPv6 without brackets: the whole text is the host, never a port.
      {"2001:db8::1", "2001:db8::1", -1, false, true},
      {"::1:80", "::1:80", -1, false, true},
      {"::", "::", -1, false, true},
      {"a:b:c", "a:b:c", -1, false, true},  // what a host may be is the caller's rule
      // Zone ids stay in the host (the caller decides: UpstreamAddr refuses them).
      {"[fe80::1%eth0]:80", "fe80::1%eth0", 80, true, false},
      {"fe80::1%eth0", "fe80::1%eth0", -1, false, true},
      {"[fe80::1%25eth0]", "fe80::1%25eth0", -1, true, false},
      // The host is not checked here.
      {"[10.0.0.7]:80", "10.0.0.7", 80, true, false},
      {"exa mple:1", "exa mple", 1, false, false},
  };
  for (const auto& g : table) {
    INFO("text: " << g.text);
    auto r = split_host_port(g.text);
    REQUIRE(r);
    CHECK(r.error == HostPortError::none);
    CHECK(r.parts.host == g.host);
    if (g.port < 0) {
      CHECK_FALSE(r.parts.port);
      CHECK(r.parts.port_text.empty());
    } else {
      REQUIRE(r.parts.port);
      CHECK(*r.parts.port == g.port);
    }
    CHECK(r.parts.bracketed == g.bracketed);
    CHECK(r.parts.bare_ipv6() == g.bare_ipv6);
  }
  CHECK(split_host_port("h:080").parts.port_text == "080");
}

TEST_CASE("split_host_port: what it refuses, in order") {
  const std::vector<Bad> table = {
      {"", HostPortError::empty},
      {"[::1", HostPortError::missing_bracket},
      {"[", HostPortError::missing_bracket},
      {"[::1]80", HostPortError::junk_after_bracket},
      {"[::1]x:80", HostPortError::junk_after_bracket},
      {"[]x", HostPortError::junk_after_bracket},
      {":80", HostPortError::empty_host},
      {":", HostPortError::empty_host},
      {"[]:80", HostPortError::empty_host},
      {"[]", HostPortError::empty_host},
      {"h:", HostPortError::empty_port},
      {"[::1]:", HostPortError::empty_port},
      {"h:8o", HostPortError::bad_port},
      {"h:-1", HostPortError::bad_port},
      {"h:+1", HostPortError::bad_port},
      {"h: 80", HostPortError::bad_port},
      {"h:80 ", HostPortError::bad_port},
      {"[::1]:8 0", HostPortError::bad_port},
      {"h:123456a", HostPortError::bad_port},
      {"h:65536", HostPortError::port_too_large},
      {"h:99999", HostPortError::port_too_large},
      {"h:123456", HostPortError::port_too_large},
      {"h:000080", HostPortError::port_too_large},  // more than 5 digits
      {"[::1]:65536", HostPortError::port_too_large},
  };
  for (const auto& b : table) {
    INFO("text: " << b.text);
    auto r = split_host_port(b.text);
    CHECK_FALSE(r);
    CHECK(r.error == b.error);
    CHECK_FALSE(divert::to_string(b.error).empty());
  }
  CHECK(split_host_port("h:8o").parts.port_text == "8o");
  CHECK(divert::to_string(HostPortError::none).empty());
}

TEST_CASE("split_host_port: the parts are views into the text") {
  const std::string text = "[2001:db8::1]:443";
  auto r = split_host_port(text);
  REQUIRE(r);
  CHECK(r.parts.host.data() == text.data() + 1);
  CHECK(r.parts.port_text.data() == text.data() + 14);
  // A NUL is an ordinary byte here (callers that hand the host to C APIs refuse it).
  auto nul = split_host_port(std::string_view("a\0b:1", 5));
  REQUIRE(nul);
  CHECK(nul.parts.host.size() == 3);
}

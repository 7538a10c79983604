#include "common/cli.hpp"
#include "support/catch.hpp"

using namespace divert::examples;

TEST_CASE("CIDR matching") {
  auto c = Cidr::parse("127.0.0.0/8");
  CHECK(c.contains(asio::ip::make_address("127.1.2.3")));
  CHECK(c.contains(asio::ip::make_address("::ffff:127.0.0.1")));
  CHECK_FALSE(c.contains(asio::ip::make_address("128.0.0.1")));
  CHECK_FALSE(c.contains(asio::ip::make_address("::1")));
  auto v6 = Cidr::parse("::1");
  CHECK(v6.contains(asio::ip::make_address("::1")));
  CHECK_FALSE(v6.contains(asio::ip::make_address("::2")));
  auto odd = Cidr::parse("10.0.0.0/9");
  CHECK(odd.contains(asio::ip::make_address("10.127.0.1")));
  CHECK_FALSE(odd.contains(asio::ip::make_address("10.128.0.1")));
  CHECK_THROWS_AS(Cidr::parse("10.0.0.0/33"), usage_error);
  CHECK_THROWS_AS(Cidr::parse("nope/8"), usage_error);
}

TEST_CASE("listen endpoints") {
  CHECK(parse_listen("127.0.0.1:8080").port() == 8080);
  CHECK(parse_listen("[::1]:0").address().is_v6());
  CHECK(parse_listen("localhost:1").address().to_string() == "127.0.0.1");
  CHECK_THROWS_AS(parse_listen("127.0.0.1"), usage_error);
  CHECK_THROWS_AS(parse_listen("host.test:1"), usage_error);
  // divert::split_host_port's rules: IPv6 with a port needs brackets ("::1:8080"
  // is an address, not ::1 port 8080), ports stop at 65535, a host is not empty.
  CHECK_THROWS_WITH(parse_listen("::1:8080"), "listen address '::1:8080' is not [V6]:PORT");
  CHECK(parse_listen("[::1]:8080").port() == 8080);
  CHECK_THROWS_WITH(parse_listen("127.0.0.1:65536"),
                    "listen address '127.0.0.1:65536': port is above 65535");
  CHECK_THROWS_WITH(parse_listen(":80"), "listen address ':80': empty host");
  CHECK_THROWS_AS(parse_listen("[::1]"), usage_error);
  CHECK_THROWS_AS(parse_listen("[::1]80"), usage_error);
  CHECK_THROWS_AS(parse_listen("127.0.0.1:"), usage_error);
}

TEST_CASE("option parsing") {
  Cli cli("prog", "summary");
  cli.option("listen", "HOST:PORT", "where")
      .option("next-proxy", "ADDR", "np", true)
      .flag("v", "verbose");
  const char* argv[] = {"prog", "--listen=1.2.3.4:5", "--next-proxy", "a", "--next-proxy", "b",
                        "--v"};
  REQUIRE(cli.parse(7, const_cast<char**>(argv)));
  CHECK(cli.get("listen") == "1.2.3.4:5");
  CHECK(cli.all("next-proxy") == std::vector<std::string>{"a", "b"});
  CHECK(cli.has("v"));
  Cli c2("prog", "s");
  c2.option("listen", "HOST:PORT", "where");
  const char* bad[] = {"prog", "--listen", "a", "--listen", "b"};
  CHECK_THROWS_WITH(c2.parse(5, const_cast<char**>(bad)), "--listen given more than once");
  const char* unk[] = {"prog", "--nope"};
  CHECK_THROWS_WITH(c2.parse(2, const_cast<char**>(unk)), "unknown option '--nope'");
}

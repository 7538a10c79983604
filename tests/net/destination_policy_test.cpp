// DestinationPolicy, Cidr and check_destination(): pure logic (a StubResolver
// on an io_context, no sockets).
#include "divert/net/destination_policy.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "divert/error.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace divert::net;
using namespace std::chrono_literals;
using V = DestinationVerdict;

namespace {
asio::ip::address ip(const char* text) {
  return asio::ip::make_address(text);
}

std::string parse_error(const char* text) {
  try {
    Cidr::parse(text, "--allow");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

DestinationCheck run_check(const DestinationPolicy& policy, const UpstreamAddr& target,
                           std::shared_ptr<Resolver> resolver, std::chrono::milliseconds timeout) {
  asio::io_context io;
  DestinationCheck out;
  asio::co_spawn(io, check_destination(policy, target, std::move(resolver), timeout),
                 [&](std::exception_ptr e, DestinationCheck c) {
                   if (e) std::rethrow_exception(e);
                   out = std::move(c);
                 });
  io.run();
  return out;
}
}  // namespace

TEST_CASE("Cidr::parse: IPv4, IPv6, mapped forms, host bits, errors naming the value",
          "[destination_policy]") {
  CHECK(Cidr::parse("127.0.0.0/8").to_string() == "127.0.0.0/8");
  CHECK(Cidr::parse("10.1.2.3/8").to_string() == "10.0.0.0/8");
  CHECK(Cidr::parse("10.1.2.3").to_string() == "10.1.2.3/32");
  CHECK(Cidr::parse("::1").to_string() == "::1/128");
  CHECK(Cidr::parse("fe80::1234/10").to_string() == "fe80::/10");
  CHECK(Cidr::parse("::ffff:127.0.0.0/104").to_string() == "127.0.0.0/8");
  CHECK(Cidr::parse("::ffff:0:0/96").to_string() == "0.0.0.0/0");
  CHECK(Cidr::parse("0.0.0.0/0").to_string() == "0.0.0.0/0");
  CHECK(Cidr::parse("::/0").to_string() == "::/0");

  CHECK(parse_error("nope/8") ==
        "divert config: --allow = \"nope/8\": 'nope' is not an IP address");
  CHECK(parse_error("10.0.0.0/33")
            .find("\"10.0.0.0/33\": the prefix length must be a number from 0 to 32") !=
        std::string::npos);
  CHECK(parse_error("::/129").find("0 to 128") != std::string::npos);
  CHECK(parse_error("10.0.0.0/").find("prefix length") != std::string::npos);
  CHECK(parse_error("10.0.0.0/8x").find("prefix length") != std::string::npos);
  CHECK(parse_error("fe80::1%lo/64").find("zone") != std::string::npos);
  CHECK(parse_error("").find("is not an IP address") != std::string::npos);
}

TEST_CASE("Cidr::contains: prefixes, IPv4-mapped addresses match IPv4 entries",
          "[destination_policy]") {
  const auto lo = Cidr::parse("127.0.0.0/8");
  CHECK(lo.contains(ip("127.0.0.1")));
  CHECK(lo.contains(ip("127.255.255.255")));
  CHECK(lo.contains(ip("::ffff:127.0.0.1")));
  CHECK_FALSE(lo.contains(ip("128.0.0.1")));
  CHECK_FALSE(lo.contains(ip("::1")));
  const auto odd = Cidr::parse("10.0.0.0/9");
  CHECK(odd.contains(ip("10.127.0.1")));
  CHECK_FALSE(odd.contains(ip("10.128.0.1")));
  CHECK(Cidr::parse("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
  CHECK(Cidr::parse("0.0.0.0/0").contains(ip("::ffff:8.8.8.8")));
  CHECK_FALSE(Cidr::parse("::/0").contains(ip("8.8.8.8")));  // IPv6 entries never match IPv4
  CHECK(Cidr::parse("fe80::/10").contains(ip("febf::1")));
  CHECK_FALSE(Cidr::parse("fe80::/10").contains(ip("fec0::1")));
}

TEST_CASE("DestinationPolicy defaults: loopback, link-local, unspecified, multicast denied",
          "[destination_policy]") {
  const DestinationPolicy p;
  struct Case {
    const char* address;
    V verdict;
  };
  const Case cases[] = {
      {"127.0.0.1", V::denied_by_default},
      {"127.1.2.3", V::denied_by_default},
      {"::1", V::denied_by_default},
      {"::ffff:127.0.0.1", V::denied_by_default},
      {"169.254.169.254", V::denied_by_default},
      {"::ffff:169.254.169.254", V::denied_by_default},
      {"fe80::1", V::denied_by_default},
      {"0.0.0.0", V::denied_by_default},
      {"::", V::denied_by_default},
      {"224.0.0.1", V::denied_by_default},
      {"239.255.255.250", V::denied_by_default},
      {"ff02::1", V::denied_by_default},
      {"93.184.216.34", V::allowed_by_default},
      {"10.0.0.1", V::allowed_by_default},
      {"2001:db8::1", V::allowed_by_default},
      {"0.0.0.1", V::allowed_by_default},
      {"169.255.0.1", V::allowed_by_default},
      {"::2", V::allowed_by_default},
  };
  for (const auto& c : cases) {
    INFO(c.address);
    CHECK(p.check(ip(c.address), 80) == c.verdict);
  }
  CHECK(default_denied_networks().size() == 8);
}

TEST_CASE("DestinationPolicy rules: most specific wins, deny on a tie, rules before defaults",
          "[destination_policy]") {
  DestinationPolicy p;
  p.allow(Cidr::parse("127.0.0.0/8")).allow(Cidr::parse("::1/128"));
  CHECK(p.check(ip("127.0.0.1"), 80) == V::allowed_by_rule);
  CHECK(p.check(ip("::ffff:127.0.0.1"), 80) == V::allowed_by_rule);
  CHECK(p.check(ip("::1"), 80) == V::allowed_by_rule);
  CHECK(p.check(ip("169.254.169.254"), 80) == V::denied_by_default);

  p.deny(Cidr::parse("127.0.0.5"));
  CHECK(p.check(ip("127.0.0.5"), 80) == V::denied_by_rule);
  CHECK(p.check(ip("127.0.0.6"), 80) == V::allowed_by_rule);
  p.allow(Cidr::parse("10.0.0.0/8")).deny(Cidr::parse("::ffff:10.0.0.0/104"));  // same network
  CHECK(p.check(ip("10.1.1.1"), 80) == V::denied_by_rule);

  DestinationPolicy only;  // an allow list: deny everything, allow one network
  only.deny(Cidr::parse("0.0.0.0/0")).deny(Cidr::parse("::/0")).allow(Cidr::parse("192.0.2.0/24"));
  CHECK(only.check(ip("192.0.2.7"), 443) == V::allowed_by_rule);
  CHECK(only.check(ip("198.51.100.1"), 443) == V::denied_by_rule);
  CHECK(only.check(ip("2001:db8::1"), 443) == V::denied_by_rule);
}

TEST_CASE("DestinationPolicy loop guard: no allow rule lifts it, port-specific",
          "[destination_policy]") {
  DestinationPolicy p;
  p.allow(Cidr::parse("0.0.0.0/0")).allow(Cidr::parse("::/0"));
  p.guard(ip("127.0.0.1"), 8080);   // own listener
  p.guard(ip("192.0.2.10"), 3128);  // a next proxy
  CHECK(p.check(ip("127.0.0.1"), 8080) == V::denied_loop_guard);
  CHECK(p.check(ip("::ffff:127.0.0.1"), 8080) == V::denied_loop_guard);
  CHECK(p.check(ip("0.0.0.0"), 8080) == V::denied_loop_guard);
  CHECK(p.check(ip("::"), 3128) == V::denied_loop_guard);
  CHECK(p.check(ip("127.0.0.1"), 8081) == V::allowed_by_rule);
  CHECK(p.check(ip("192.0.2.10"), 3128) == V::denied_loop_guard);
  CHECK(p.check(ip("192.0.2.10"), 80) == V::allowed_by_rule);

  DestinationPolicy wild;
  wild.allow(Cidr::parse("127.0.0.0/8"));
  wild.guard(ip("0.0.0.0"), 8080);  // wildcard listener: every loopback address
  CHECK(wild.check(ip("127.0.0.1"), 8080) == V::denied_loop_guard);
  CHECK(wild.check(ip("127.9.9.9"), 8080) == V::denied_loop_guard);
  CHECK(wild.check(ip("::1"), 8080) == V::denied_loop_guard);
  CHECK(wild.check(ip("127.9.9.9"), 8081) == V::allowed_by_rule);

  DestinationPolicy any_port;
  any_port.guard(ip("192.0.2.10"), 0);
  CHECK(any_port.check(ip("192.0.2.10"), 1) == V::denied_loop_guard);
}

TEST_CASE("DestinationPolicy::first_denied: any denied address denies the name",
          "[destination_policy]") {
  const DestinationPolicy p;
  const std::vector<asio::ip::address> mixed{ip("192.0.2.1"), ip("2001:db8::1"), ip("127.0.0.1")};
  auto d = p.first_denied(mixed, 80);
  REQUIRE(d);
  CHECK(d->address == ip("127.0.0.1"));
  CHECK(d->verdict == V::denied_by_default);
  const std::vector<asio::ip::address> clean{ip("192.0.2.1"), ip("2001:db8::1")};
  CHECK_FALSE(p.first_denied(clean, 80));
}

TEST_CASE("check_destination: literals, localhost, names resolving anywhere denied",
          "[destination_policy]") {
  DestinationPolicy p;
  auto stub = std::make_shared<StubResolver>();
  stub->add("metadata.test", {ip("169.254.169.254")});
  stub->add("mixed.test", {ip("192.0.2.1"), ip("::1")});
  stub->add("public.test", {ip("192.0.2.1"), ip("2001:db8::1")});
  stub->add("v4only.test", {ip("192.0.2.2")});
  stub->fail("v4only.test", AddressFamily::ipv6, asio::error::host_not_found);
  stub->add("mapped.test", {ip("::ffff:127.0.0.1")});
  using O = DestinationCheck::Outcome;

  auto lit = run_check(p, UpstreamAddr::parse("[::ffff:127.0.0.1]:80"), stub, 1s);
  CHECK(lit.outcome == O::denied);
  auto meta = run_check(p, UpstreamAddr::parse("169.254.169.254:80"), stub, 1s);
  CHECK(meta.outcome == O::denied);
  for (const char* name : {"localhost:80", "LOCALHOST.:80", "foo.localhost:80"}) {
    INFO(name);
    auto c = run_check(p, UpstreamAddr::parse(name), stub, 1s);
    CHECK(c.outcome == O::denied);
    CHECK(c.addresses.size() == 2);
  }
  CHECK(stub->query_count(AddressFamily::ipv4) == 0);  // localhost is never asked

  auto m = run_check(p, UpstreamAddr::parse("metadata.test:80"), stub, 1s);
  CHECK(m.outcome == O::denied);
  REQUIRE(m.denial);
  CHECK(m.denial->address == ip("169.254.169.254"));
  CHECK(run_check(p, UpstreamAddr::parse("mixed.test:80"), stub, 1s).outcome == O::denied);
  CHECK(run_check(p, UpstreamAddr::parse("mapped.test:80"), stub, 1s).outcome == O::denied);
  auto ok = run_check(p, UpstreamAddr::parse("public.test:80"), stub, 1s);
  CHECK(ok.outcome == O::allowed);
  CHECK(ok.addresses.size() == 2);
  CHECK(run_check(p, UpstreamAddr::parse("v4only.test:80"), stub, 1s).outcome == O::allowed);

  auto nx = run_check(p, UpstreamAddr::parse("nowhere.test:80"), stub, 1s);
  CHECK(nx.outcome == O::unresolved);
  CHECK(nx.error == asio::error::host_not_found);

  DestinationPolicy loose;
  loose.allow(Cidr::parse("127.0.0.0/8")).allow(Cidr::parse("::1/128"));
  CHECK(run_check(loose, UpstreamAddr::parse("localhost:80"), stub, 1s).outcome == O::allowed);
  CHECK(run_check(loose, UpstreamAddr::parse("mixed.test:80"), stub, 1s).outcome == O::allowed);
  loose.guard(ip("127.0.0.1"), 8080);
  CHECK(run_check(loose, UpstreamAddr::parse("localhost:8080"), stub, 1s).outcome == O::denied);
}

TEST_CASE("check_destination: a slow resolver is unresolved at the timeout",
          "[destination_policy]") {
  auto stub = std::make_shared<StubResolver>();
  stub->add("slow.test", {ip("192.0.2.1")});
  stub->delay(AddressFamily::ipv6, 300ms);
  const auto start = std::chrono::steady_clock::now();
  auto c = run_check(DestinationPolicy{}, UpstreamAddr::parse("slow.test:80"), stub, 50ms);
  // io.run() returns once the late answer is delivered too; the outcome is the timeout's.
  CHECK(c.outcome == DestinationCheck::Outcome::unresolved);
  CHECK(c.error == std::errc::timed_out);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

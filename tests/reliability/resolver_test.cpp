// The system resolver under a DNS black hole (a network namespace made by the
// test, where the configured name servers never answer): a lookup that waits
// for DNS must not hold up another one. Happy eyeballs asks AAAA and A at once
// and uses answers as they arrive; with Asio's resolver (one background thread
// per io_context, lookups one after the other) an A answer from /etc/hosts
// waited behind a stuck AAAA query for the whole DNS timeout (5 s by default),
// and so did every other lookup of that io_context (found by the soak: one
// https forward in ~60 took 5 s where the DNS server dropped a query).
// A standard header before Asio: Asio decides between aligned_alloc and
// operator new for its handler memory by a libstdc++ macro, which is only
// defined once a standard header is in; the library's files include one first,
// and so must this file, or ASan sees blocks allocated there freed here with
// the other function (alloc-dealloc-mismatch).
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <asio.hpp>

#include "divert/net/resolver.hpp"
#include "netns.hpp"
#include "support/live.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace test = divert::test;
namespace net = divert::net;

namespace {

// The name servers glibc uses (127.0.0.1 when none is configured).
std::vector<asio::ip::address> name_servers() {
  std::vector<asio::ip::address> out;
  std::ifstream f("/etc/resolv.conf");
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    std::string key, value;
    divert::error_code ec;
    if (in >> key >> value && key == "nameserver") {
      auto a = asio::ip::make_address(value, ec);
      if (!ec) out.push_back(a);
    }
  }
  if (out.empty()) out.push_back(asio::ip::make_address("127.0.0.1"));
  return out;
}

}  // namespace

TEST_CASE("system resolver: a lookup stuck on DNS does not hold up another one") {
  // One try, one second per try: the stuck lookup lasts about 1 s.
  ::setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
  std::optional<std::chrono::milliseconds> stuck, fast;
  divert::error_code fast_ec;
  std::vector<asio::ip::address> fast_addrs;
  // Every name server becomes an address of lo in the namespace, where a UDP
  // socket bound to port 53 takes the queries and never answers.
  std::vector<std::vector<std::string>> setup;
  const auto servers = name_servers();
  for (auto& ns : servers) {
    if (ns.is_v4() && !ns.is_loopback())
      setup.push_back({"ip", "addr", "add", ns.to_string() + "/32", "dev", "lo"});
    else if (ns.is_v6() && !ns.is_loopback())
      setup.push_back({"ip", "-6", "addr", "add", ns.to_string() + "/128", "dev", "lo"});
  }
  auto why = test::run_in_netns(setup, [&] {
    asio::io_context sockets_io;  // outlives its sockets
    std::vector<asio::ip::udp::socket> silent;
    for (auto& ns : servers) {
      divert::error_code ec;
      silent.emplace_back(sockets_io);
      silent.back().open(ns.is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), ec);
      if (!ec) silent.back().bind({ns, 53}, ec);
    }
    asio::io_context io;
    auto resolver = net::system_resolver();
    auto t0 = Clock::now();
    auto since = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    };
    resolver->async_resolve(
        "divert-black-hole.invalid.", net::AddressFamily::ipv6, io.get_executor(),
        [&](divert::error_code, std::vector<asio::ip::address>) { stuck = since(); });
    resolver->async_resolve("localhost", net::AddressFamily::ipv4, io.get_executor(),
                            [&](divert::error_code ec, std::vector<asio::ip::address> v) {
                              fast = since();
                              fast_ec = ec;
                              fast_addrs = std::move(v);
                            });
    io.run_for(10s);
  });
  ::unsetenv("RES_OPTIONS");
  DIVERT_REQUIRE_NETNS(why);
  REQUIRE(stuck);
  REQUIRE(fast);
  INFO("stuck lookup: " << stuck->count() << " ms, localhost (A): " << fast->count() << " ms");
  // The black hole worked: the first lookup really waited for DNS.
  REQUIRE(*stuck >= 800ms);
  CHECK(!fast_ec);
  CHECK(fast_addrs == std::vector<asio::ip::address>{asio::ip::make_address("127.0.0.1")});
  CHECK(*fast < 300ms);
}

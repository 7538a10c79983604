// make_destination_gate(): flags, the loop guard over the listen address and
// the next proxies (by address and by name), the status of each refusal.
// Resolves only "localhost" (the next proxy's name) and stub names.
#include "common/destination_gate.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "common/cli.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace divert::examples;
using namespace std::chrono_literals;

namespace {

DestinationGate gate_for(std::vector<std::string> args, const std::string& listen,
                         const std::vector<std::string>& next_proxies) {
  Cli cli("t", "test");
  destination_cli_options(cli);
  args.insert(args.begin(), "t");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  REQUIRE(cli.parse(static_cast<int>(argv.size()), argv.data()));
  auto b = DivertTcpConnector::builder();
  std::vector<WeightedUpstreamAddr> proxies;
  for (const auto& np : next_proxies) proxies.emplace_back(np);
  b.proxy_addr(std::move(proxies)).resolver(std::make_shared<net::StubResolver>());
  auto connector = b.build();
  return make_destination_gate(cli, parse_listen(listen), connector);
}

std::optional<Refusal> check(const DestinationGate& gate, const std::string& target) {
  asio::io_context io;
  std::optional<Refusal> out;
  asio::co_spawn(io, gate.check(UpstreamAddr::parse(target)),
                 [&](std::exception_ptr e, std::optional<Refusal> r) {
                   if (e) std::rethrow_exception(e);
                   out = std::move(r);
                 });
  io.run();
  return out;
}

int status(const DestinationGate& gate, const std::string& target) {
  auto r = check(gate, target);
  return r ? r->status : 0;
}

}  // namespace

TEST_CASE("destination gate: defaults, --allow/--deny, loop guard by address and by name",
          "[examples][destination]") {
  auto strict = gate_for({}, "127.0.0.1:8080", {"192.0.2.7:3128"});
  CHECK(status(strict, "127.0.0.1:80") == 403);
  CHECK(status(strict, "localhost:80") == 403);
  CHECK(status(strict, "169.254.169.254:80") == 403);
  CHECK(status(strict, "192.0.2.7:3128") == 403);  // the next proxy
  CHECK(status(strict, "192.0.2.7:80") == 0);      // another port of its host
  CHECK(status(strict, "192.0.2.8:443") == 0);
  auto r = check(strict, "169.254.169.254:80");
  REQUIRE(r);
  CHECK(r->reason.find("169.254.169.254") != std::string::npos);
  CHECK(r->reason.find("link-local") != std::string::npos);

  auto loose = gate_for({"--allow", "127.0.0.0/8", "--allow", "::1/128", "--deny", "127.0.0.2"},
                        "127.0.0.1:8080", {"localhost:3128"});
  CHECK(status(loose, "127.0.0.1:80") == 0);
  CHECK(status(loose, "localhost:80") == 0);
  CHECK(status(loose, "127.0.0.2:80") == 403);
  CHECK(status(loose, "127.0.0.1:8080") == 403);  // own listen address
  CHECK(status(loose, "localhost:3128") == 403);  // the next proxy, by name
  CHECK(status(loose, "127.0.0.1:3128") ==
        403);  // and by its address (localhost resolved at start)
  CHECK(status(loose, "[::ffff:127.0.0.1]:3128") == 403);

  // A wildcard listener guards its port on every loopback address.
  auto wild = gate_for({"--allow", "127.0.0.0/8"}, "0.0.0.0:8080", {"192.0.2.7:3128"});
  CHECK(status(wild, "127.0.0.9:8080") == 403);
  CHECK(status(wild, "127.0.0.9:8081") == 0);
}

TEST_CASE("destination gate: names that do not resolve here", "[examples][destination]") {
  auto gate = gate_for({}, "127.0.0.1:8080", {"192.0.2.7:3128"});
  auto slow = std::make_shared<net::StubResolver>();
  slow->add("slow.test", {asio::ip::make_address("192.0.2.1")});
  slow->delay(net::AddressFamily::ipv4, 300ms);
  gate.resolve_timeout = 50ms;
  for (bool pass : {false, true}) {
    gate.pass_unresolved = pass;
    gate.resolver = std::make_shared<net::StubResolver>();  // knows no name
    CHECK(status(gate, "nowhere.test:80") == (pass ? 0 : 502));
    gate.resolver = slow;
    CHECK(status(gate, "slow.test:80") == (pass ? 0 : 504));
  }
}

TEST_CASE("destination gate: a bad CIDR names the flag and the value", "[examples][destination]") {
  Cli cli("t", "test");
  destination_cli_options(cli);
  std::string a0 = "t", a1 = "--deny", a2 = "10.0.0.0/8/8";
  char* argv[] = {a0.data(), a1.data(), a2.data()};
  REQUIRE(cli.parse(3, argv));
  auto connector = DivertTcpConnector::builder().proxy_addr("192.0.2.7:3128").build();
  try {
    make_destination_gate(cli, parse_listen("127.0.0.1:8080"), connector);
    FAIL("no error");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()).find("--deny = \"10.0.0.0/8/8\"") != std::string::npos);
  }
}

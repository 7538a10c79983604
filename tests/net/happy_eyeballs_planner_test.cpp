// Happy-eyeballs planner: pure state machine, fake clock, no sockets.
// Tests are named after the rule (R1..R8 in happy_eyeballs_planner.hpp) or
// the peer bug from anchors.md they cover.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <asio/error.hpp>

#include "divert/error.hpp"
#include "divert/net/happy_eyeballs_planner.hpp"
#include "support/catch.hpp"

using namespace divert::net;
using namespace std::chrono_literals;
using Kind = PlannerAction::Kind;
using Actions = HappyEyeballsPlanner::Actions;
using TP = HappyEyeballsPlanner::TimePoint;

namespace {

const AddressFamily V4 = AddressFamily::ipv4;
const AddressFamily V6 = AddressFamily::ipv6;

TP at(std::chrono::milliseconds d) {
  return TP{} + d;
}

asio::ip::address ip(const char* s) {
  return asio::ip::make_address(s);
}

std::vector<asio::ip::address> v4s(int n) {
  std::vector<asio::ip::address> r;
  for (int i = 1; i <= n; ++i) r.push_back(ip(("192.0.2." + std::to_string(i)).c_str()));
  return r;
}
std::vector<asio::ip::address> v6s(int n) {
  std::vector<asio::ip::address> r;
  for (int i = 1; i <= n; ++i) r.push_back(ip(("2001:db8::" + std::to_string(i)).c_str()));
  return r;
}

std::vector<PlannerAction> of(const Actions& a, Kind k) {
  std::vector<PlannerAction> r;
  std::copy_if(a.begin(), a.end(), std::back_inserter(r),
               [k](const PlannerAction& x) { return x.kind == k; });
  return r;
}
std::vector<std::string> connects(const Actions& a) {
  std::vector<std::string> r;
  for (const auto& x : of(a, Kind::connect)) r.push_back(x.address.to_string());
  return r;
}
std::optional<PlannerAction> done_of(const Actions& a) {
  auto d = of(a, Kind::done);
  if (d.empty()) return std::nullopt;
  REQUIRE(d.size() == 1);
  return d[0];
}
std::vector<std::size_t> cancels(const Actions& a) {
  std::vector<std::size_t> r;
  for (const auto& x : of(a, Kind::cancel)) r.push_back(x.attempt);
  return r;
}

ConnectOptions v6_first() {
  ConnectOptions o;
  o.resolve_strategy.query = ResolveStrategy::Query::Ipv6First;
  o.resolve_strategy.pick = ResolveStrategy::Pick::Serial;
  return o;
}

const divert::error_code refused = asio::error::connection_refused;

}  // namespace

TEST_CASE("R1: both families are queried at once at start, none later (reactphp #196)") {
  HappyEyeballsPlanner p(v6_first());
  auto a = p.start(at(0ms));
  auto r = of(a, Kind::resolve);
  REQUIRE(r.size() == 2);
  CHECK(r[0].family == V6);
  CHECK(r[1].family == V4);
  CHECK(connects(a).empty());
  CHECK_FALSE(p.next_wakeup());
  // The A answer arriving first delays the connect, never a query.
  a = p.on_resolved(V4, {}, v4s(1), at(5ms));
  CHECK(of(a, Kind::resolve).empty());
  CHECK(connects(a).empty());
  a = p.on_timer(at(55ms));
  CHECK(of(a, Kind::resolve).empty());
  CHECK(connects(a) == std::vector<std::string>{"192.0.2.1"});
}

TEST_CASE("R2: the preferred family answering first connects at once") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  auto a = p.on_resolved(V6, {}, v6s(1), at(10ms));
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::1"});
}

TEST_CASE("R2: the other family answering first waits resolution_delay for the preferred") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  auto a = p.on_resolved(V4, {}, v4s(1), at(10ms));
  CHECK(connects(a).empty());
  REQUIRE(p.next_wakeup());
  CHECK(*p.next_wakeup() == at(60ms));
  CHECK(connects(p.on_timer(at(59ms))).empty());
  CHECK(connects(p.on_timer(at(60ms))) == std::vector<std::string>{"192.0.2.1"});
}

TEST_CASE("R2: the preferred family arriving within resolution_delay goes first") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V4, {}, v4s(1), at(10ms));
  auto a = p.on_resolved(V6, {}, v6s(1), at(30ms));
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::1"});
  // ...and the other family follows at the attempt delay.
  CHECK(*p.next_wakeup() == at(280ms));
  CHECK(connects(p.on_timer(at(280ms))) == std::vector<std::string>{"192.0.2.1"});
}

TEST_CASE("R2: the preferred family failing ends the resolution delay at once") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V4, {}, v4s(1), at(10ms));
  auto a = p.on_resolved(V6, asio::error::host_not_found, {}, at(20ms));
  CHECK(connects(a) == std::vector<std::string>{"192.0.2.1"});
  HappyEyeballsPlanner q(v6_first());
  q.start(at(0ms));
  q.on_resolved(V6, {}, {}, at(5ms));  // no AAAA record
  a = q.on_resolved(V4, {}, v4s(1), at(10ms));
  CHECK(connects(a) == std::vector<std::string>{"192.0.2.1"});
}

TEST_CASE("R3: families interleave after first_address_family_count (no same family twice)") {
  auto order_for = [](std::size_t count) {
    auto o = v6_first();
    o.happy_eyeballs.first_address_family_count = count;
    HappyEyeballsPlanner p(o);
    p.start(at(0ms));
    std::vector<std::string> order;
    for (auto& s : connects(p.on_resolved(V6, {}, v6s(3), at(0ms)))) order.push_back(s);
    for (auto& s : connects(p.on_resolved(V4, {}, v4s(3), at(1ms)))) order.push_back(s);
    for (int i = 1; i <= 6; ++i)
      for (auto& s : connects(p.on_timer(at(250ms * i)))) order.push_back(s);
    return order;
  };
  CHECK(order_for(1) == std::vector<std::string>{"2001:db8::1", "192.0.2.1", "2001:db8::2",
                                                 "192.0.2.2", "2001:db8::3", "192.0.2.3"});
  CHECK(order_for(2) == std::vector<std::string>{"2001:db8::1", "2001:db8::2", "192.0.2.1",
                                                 "2001:db8::3", "192.0.2.2", "192.0.2.3"});
}

TEST_CASE("R3: a family answering late joins the remaining list") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  CHECK(connects(p.on_resolved(V6, {}, v6s(2), at(0ms))).size() == 1);
  CHECK(connects(p.on_resolved(V4, {}, v4s(1), at(100ms))).empty());  // attempt 0 still young
  CHECK(connects(p.on_timer(at(250ms))) == std::vector<std::string>{"192.0.2.1"});
  CHECK(connects(p.on_timer(at(500ms))) == std::vector<std::string>{"2001:db8::2"});
}

TEST_CASE("R4: the next attempt starts exactly connection_attempt_delay later") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(2), at(0ms));
  CHECK(*p.next_wakeup() == at(250ms));
  CHECK(connects(p.on_timer(at(249ms))).empty());
  auto a = p.on_timer(at(250ms));
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::2"});
  CHECK(cancels(a).empty());  // the older attempt keeps running
}

TEST_CASE("R4: a failure starts the next attempt at once") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(3), at(0ms));
  auto a = p.on_attempt_done(0, refused, at(40ms));
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::2"});
  CHECK(*p.next_wakeup() == at(290ms));
}

TEST_CASE("bun #11859: one failure among running attempts does not wait for the others") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(2), at(0ms));
  p.on_resolved(V4, {}, v4s(2), at(0ms));
  p.on_timer(at(250ms));  // attempts 0 (v6) and 1 (v4) running
  auto a = p.on_attempt_done(0, refused, at(300ms));
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::2"});
  CHECK(cancels(a).empty());
  CHECK_FALSE(done_of(a));
}

TEST_CASE("R4: an older attempt may win; every other attempt is cancelled") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(1), at(0ms));
  p.on_resolved(V4, {}, v4s(2), at(0ms));
  p.on_timer(at(250ms));
  p.on_timer(at(500ms));
  REQUIRE(p.attempts_started() == 3);
  auto a = p.on_attempt_done(0, {}, at(600ms));
  auto d = done_of(a);
  REQUIRE(d);
  CHECK_FALSE(d->error);
  CHECK(d->attempt == 0);
  CHECK(cancels(a) == std::vector<std::size_t>{1, 2});
  CHECK(p.done());
}

TEST_CASE("aiohappyeyeballs #143: a loser completing after the winner is not a second winner") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(1), at(0ms));
  p.on_resolved(V4, {}, v4s(1), at(0ms));
  p.on_timer(at(250ms));
  auto a = p.on_attempt_done(1, {}, at(260ms));
  REQUIRE(done_of(a));
  CHECK(done_of(a)->attempt == 1);
  CHECK(cancels(a) == std::vector<std::size_t>{0});
  CHECK(p.on_attempt_done(0, {}, at(261ms)).empty());
  CHECK(p.on_timer(at(10s)).empty());
}

TEST_CASE("trio #632: no new attempt at the delay boundary after a success") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(3), at(0ms));
  auto a = p.on_attempt_done(0, {}, at(250ms));
  REQUIRE(done_of(a));
  CHECK_FALSE(p.next_wakeup());
  CHECK(p.on_timer(at(250ms)).empty());
  CHECK(p.attempts_started() == 1);
}

TEST_CASE("robur happy-eyeballs #9: the second family arriving late is still used") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(1), at(0ms));
  auto a = p.on_attempt_done(0, refused, at(10ms));
  CHECK_FALSE(done_of(a));                // A is still awaited
  CHECK(*p.next_wakeup() == at(2010ms));  // second_resolution_timeout from the failure
  a = p.on_resolved(V4, {}, v4s(1), at(500ms));
  CHECK(connects(a) == std::vector<std::string>{"192.0.2.1"});  // at once: nothing is running
  a = p.on_attempt_done(1, {}, at(510ms));
  REQUIRE(done_of(a));
  CHECK_FALSE(done_of(a)->error);
}

TEST_CASE("R7: the second family is given up after second_resolution_timeout") {
  auto o = v6_first();
  o.happy_eyeballs.second_resolution_timeout = 1500ms;
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(1), at(100ms));
  p.on_attempt_done(0, refused, at(110ms));  // nothing runs from here: the clock starts
  CHECK(p.on_timer(at(1609ms)).empty());
  auto a = p.on_timer(at(1610ms));
  auto d = done_of(a);
  REQUIRE(d);
  CHECK(d->error == refused);
  CHECK(d->attempt == 0);
  CHECK(p.on_resolved(V4, {}, v4s(1), at(1700ms)).empty());  // late answer ignored
}

TEST_CASE("R7: while an attempt runs the second family has no deadline; a late answer joins") {
  auto o = v6_first();
  o.happy_eyeballs.second_resolution_timeout = 100ms;
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(1), at(0ms));
  CHECK(p.on_timer(at(100ms)).empty());
  CHECK(*p.next_wakeup() == at(30000ms));  // only attempt 0's each_timeout
  auto a = p.on_resolved(V4, {}, v4s(1), at(150ms));
  CHECK(connects(a).empty());  // connection_attempt_delay (250 ms) not over yet
  CHECK(*p.next_wakeup() == at(250ms));
  CHECK(connects(p.on_timer(at(250ms))) == std::vector<std::string>{"192.0.2.1"});
  a = p.on_attempt_done(0, {}, at(300ms));
  REQUIRE(done_of(a));
  CHECK_FALSE(done_of(a)->error);
  CHECK(cancels(a) == std::vector<std::size_t>{1});
}

TEST_CASE("R7 (issue 17): A answers, its attempt hangs, AAAA at 2.5 s still connects over IPv6") {
  // g3's divert_tcp and RFC 8305: second_resolution_timeout bounds the wait for
  // the other family only once no attempt is running.
  HappyEyeballsPlanner p(ConnectOptions{});  // Ipv4First, second_resolution_timeout 2 s
  auto a = p.start(at(0ms));
  REQUIRE(of(a, Kind::resolve).size() == 2);
  a = p.on_resolved(V4, {}, v4s(1), at(0ms));
  CHECK(connects(a) == std::vector<std::string>{"192.0.2.1"});
  a = p.on_timer(at(2000ms));
  CHECK_FALSE(done_of(a));
  a = p.on_resolved(V6, {}, v6s(1), at(2500ms));
  auto c = of(a, Kind::connect);
  REQUIRE(c.size() == 1);
  CHECK(c[0].family == V6);
  CHECK(c[0].address.to_string() == "2001:db8::1");
  a = p.on_attempt_done(1, {}, at(2510ms));
  REQUIRE(done_of(a));
  CHECK(done_of(a)->attempt == 1);
  CHECK_FALSE(done_of(a)->error);
}

TEST_CASE("R7: the first family answering with nothing starts the clock at once") {
  auto o = v6_first();
  o.happy_eyeballs.second_resolution_timeout = 1000ms;
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  CHECK(p.on_resolved(V6, {}, {}, at(200ms)).empty());
  REQUIRE(p.next_wakeup());
  CHECK(*p.next_wakeup() == at(1200ms));
  auto d = done_of(p.on_timer(at(1200ms)));
  REQUIRE(d);
  CHECK(d->error == divert::errc::resolve_failed);
}

TEST_CASE("R5: each attempt is bounded by each_timeout and times out as timed_out") {
  auto o = v6_first();
  o.tcp_connect.each_timeout = 1000ms;
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(1), at(0ms));
  p.on_resolved(V4, {}, {}, at(0ms));
  CHECK(*p.next_wakeup() == at(1000ms));
  CHECK(p.on_timer(at(999ms)).empty());
  auto a = p.on_timer(at(1000ms));
  CHECK(cancels(a) == std::vector<std::size_t>{0});
  auto d = done_of(a);
  REQUIRE(d);
  CHECK(d->error == asio::error::timed_out);
  CHECK(d->error != refused);
}

TEST_CASE("R5: a timed-out attempt counts as a failure and starts the next at once") {
  auto o = v6_first();
  o.tcp_connect.each_timeout = 100ms;  // shorter than the attempt delay
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(2), at(0ms));
  auto a = p.on_timer(at(100ms));
  CHECK(cancels(a) == std::vector<std::size_t>{0});
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::2"});
  CHECK(p.on_attempt_done(0, refused, at(101ms)).empty());  // a cancelled attempt reports late
}

TEST_CASE("R6: at most max_retry + 1 addresses per family") {
  auto o = v6_first();
  o.tcp_connect.max_retry = 1;
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  p.on_resolved(V6, {}, v6s(5), at(0ms));
  p.on_resolved(V4, {}, v4s(5), at(0ms));
  for (int i = 0; i < 4; ++i) p.on_attempt_done(i, refused, at(1ms * (i + 1)));
  CHECK(p.attempts_started() == 4);
  CHECK(p.done());
  std::set<std::string> tried;
  for (std::size_t i = 0; i < 4; ++i) tried.insert(p.attempt_address(i).to_string());
  CHECK(tried == std::set<std::string>{"2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"});
}

TEST_CASE("R6: pick Serial keeps the resolver's order, Random shuffles by seed") {
  auto order = [](ResolveStrategy::Pick pick, std::uint64_t seed) {
    auto o = v6_first();
    o.resolve_strategy.pick = pick;
    o.tcp_connect.max_retry = 7;
    HappyEyeballsPlanner p(o, seed);
    p.start(at(0ms));
    p.on_resolved(V6, {}, v6s(8), at(0ms));
    p.on_resolved(V4, {}, {}, at(0ms));
    std::vector<std::string> r;
    for (std::size_t i = 0; i < 8; ++i) {
      r.push_back(p.attempt_address(i).to_string());
      p.on_attempt_done(i, refused, at(1ms));
    }
    return r;
  };
  std::vector<std::string> serial;
  for (auto& a : v6s(8)) serial.push_back(a.to_string());
  CHECK(order(ResolveStrategy::Pick::Serial, 1) == serial);
  CHECK(order(ResolveStrategy::Pick::Random, 1) == order(ResolveStrategy::Pick::Random, 1));
  bool differs = false;
  for (std::uint64_t seed = 1; seed <= 5 && !differs; ++seed) {
    auto r = order(ResolveStrategy::Pick::Random, seed);
    CHECK(std::set<std::string>(r.begin(), r.end()) ==
          std::set<std::string>(serial.begin(), serial.end()));
    differs = r != serial;
  }
  CHECK(differs);
}

TEST_CASE("resolve strategies choose the queried and preferred families") {
  using Q = ResolveStrategy::Query;
  struct Case {
    Q query;
    bool no_v4, no_v6;
    std::vector<AddressFamily> queried;
  };
  for (const auto& c :
       {Case{Q::Ipv4First, false, false, {V4, V6}}, Case{Q::Ipv6First, false, false, {V6, V4}},
        Case{Q::Ipv4Only, false, false, {V4}}, Case{Q::Ipv6Only, false, false, {V6}},
        Case{Q::Ipv4First, true, false, {V6}}, Case{Q::Ipv6First, false, true, {V4}}}) {
    ConnectOptions o;
    o.resolve_strategy.query = c.query;
    o.no_ipv4 = c.no_v4;
    o.no_ipv6 = c.no_v6;
    o.validate();
    HappyEyeballsPlanner p(o);
    std::vector<AddressFamily> got;
    for (auto& a : of(p.start(at(0ms)), Kind::resolve)) got.push_back(a.family);
    CHECK(got == c.queried);
  }
  // Ipv4First (the default): IPv4 answering first connects at once; IPv6
  // answering first waits for IPv4.
  ConnectOptions o;
  o.resolve_strategy.pick = ResolveStrategy::Pick::Serial;
  HappyEyeballsPlanner p(o);
  p.start(at(0ms));
  CHECK(connects(p.on_resolved(V6, {}, v6s(1), at(0ms))).empty());
  CHECK(connects(p.on_resolved(V4, {}, v4s(1), at(20ms))) == std::vector<std::string>{"192.0.2.1"});
  // Ipv4Only: an IPv6 answer (from a misbehaving resolver) is ignored.
  ConnectOptions only4;
  only4.resolve_strategy.query = Q::Ipv4Only;
  HappyEyeballsPlanner q(only4);
  q.start(at(0ms));
  CHECK(q.on_resolved(V6, {}, v6s(1), at(0ms)).empty());
  CHECK(connects(q.on_resolved(V4, {}, v4s(1), at(0ms))).size() == 1);
}

TEST_CASE("addresses of the wrong family in an answer are dropped") {
  HappyEyeballsPlanner p(v6_first());
  p.start(at(0ms));
  auto a = p.on_resolved(V6, {}, {ip("192.0.2.9"), ip("2001:db8::1")}, at(0ms));
  CHECK(connects(a) == std::vector<std::string>{"2001:db8::1"});
}

TEST_CASE("R8: the most telling error is reported") {
  SECTION("a refusal beats a timeout") {
    auto o = v6_first();
    o.tcp_connect.each_timeout = 100ms;
    HappyEyeballsPlanner p(o);
    p.start(at(0ms));
    p.on_resolved(V6, {}, v6s(1), at(0ms));
    p.on_resolved(V4, {}, v4s(1), at(0ms));
    p.on_timer(at(100ms));  // v6 times out, v4 starts
    auto d = done_of(p.on_attempt_done(1, refused, at(150ms)));
    REQUIRE(d);
    CHECK(d->error == refused);
    CHECK(d->attempt == 1);
  }
  SECTION("the resolver's error when no address came") {
    HappyEyeballsPlanner p(v6_first());
    p.start(at(0ms));
    p.on_resolved(V4, asio::error::host_not_found, {}, at(0ms));
    auto d = done_of(p.on_resolved(V6, asio::error::host_not_found, {}, at(1ms)));
    REQUIRE(d);
    CHECK(d->error == asio::error::host_not_found);
    CHECK(d->attempt == PlannerAction::npos);
  }
  SECTION("resolve_failed when both answers are empty") {
    HappyEyeballsPlanner p(v6_first());
    p.start(at(0ms));
    p.on_resolved(V6, {}, {}, at(0ms));
    auto d = done_of(p.on_resolved(V4, {}, {}, at(1ms)));
    REQUIRE(d);
    CHECK(d->error == divert::errc::resolve_failed);
  }
}

TEST_CASE("an IP literal connects at once without resolving") {
  HappyEyeballsPlanner p(v6_first());
  auto a = p.start_with_address(ip("::1"), at(0ms));
  CHECK(of(a, Kind::resolve).empty());
  CHECK(connects(a) == std::vector<std::string>{"::1"});
  auto d = done_of(p.on_attempt_done(0, refused, at(1ms)));
  REQUIRE(d);
  CHECK(d->error == refused);

  ConnectOptions o;
  o.no_ipv6 = true;
  HappyEyeballsPlanner q(o);
  d = done_of(q.start_with_address(ip("::1"), at(0ms)));
  REQUIRE(d);
  CHECK(d->error == std::errc::address_family_not_supported);
}

TEST_CASE("connection_attempt_delay is clamped to 100 ms .. 2 s") {
  for (auto [given, used] :
       {std::pair{10ms, 100ms}, std::pair{250ms, 250ms}, std::pair{5000ms, 2000ms}}) {
    auto o = v6_first();
    o.happy_eyeballs.connection_attempt_delay = given;
    HappyEyeballsPlanner p(o);
    p.start(at(0ms));
    p.on_resolved(V6, {}, v6s(2), at(0ms));
    CHECK(*p.next_wakeup() == at(used));
  }
  HappyEyeballsConfig c;
  c.first_address_family_count = 0;
  CHECK(c.clamped().first_address_family_count == 1);
}

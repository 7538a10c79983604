// Connector core: pure state machine, fake clock, no sockets. Tests are named
// after the rule (C1..C6 in src/connector/core.hpp) they cover.
#include <algorithm>
#include <string>
#include <vector>

#include <asio/error.hpp>

#include "connector/core.hpp"
#include "divert/ppv2/decoder.hpp"
#include "support/catch.hpp"

using namespace divert;
using namespace divert::connector;
using namespace std::chrono_literals;
using Kind = ConnectAction::Kind;
using Actions = ConnectCore::Actions;

namespace {

TimePoint at(std::chrono::milliseconds d) {
  return TimePoint{} + d;
}

const divert::error_code refused = asio::error::connection_refused;
const divert::error_code timed_out = asio::error::timed_out;
const divert::error_code aborted = asio::error::operation_aborted;

// A connector configuration with `n` next proxies 127.0.0.1..n (never
// connected: nothing here opens a socket), tried in configured order.
struct Fixture {
  ConnectorConfig cfg;
  std::unique_ptr<UpstreamSelector> selector;
  std::unique_ptr<ProxyHealth> health;
  Task task{.client = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
            .server = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
            .upstream = UpstreamAddr::parse("example.com:443", 0),
            .initial_data = "PING"};

  explicit Fixture(std::size_t n, std::size_t failover = 1) {
    for (std::size_t i = 1; i <= n; ++i)
      cfg.proxy_addr.emplace_back(UpstreamAddr::parse("127.0.0." + std::to_string(i), 3128), 1.0);
    cfg.proxy_addr_pick_policy = PickPolicy::serial;
    cfg.proxy_failover = failover;
    cfg.shared_logger =
        Logger([](LogLevel, std::string_view, std::string_view) {}, LogLevel::trace);
    rebuild();
  }
  // After changing cfg.proxy_addr or the policy.
  void rebuild() {
    selector = std::make_unique<UpstreamSelector>(
        make_upstream_selector(cfg.proxy_addr, cfg.proxy_addr_pick_policy));
    health = std::make_unique<ProxyHealth>(cfg.proxy_addr.size());
  }
  ConnectCore core() { return ConnectCore(cfg, *selector, *health); }
  const Actions& start(ConnectCore& c, TimePoint now = {}) {
    return c.start({task, nullptr, TaskId{}}, now);
  }
  // Runs one whole connect where every candidate fails to connect with `ec`;
  // returns the proxies tried.
  std::vector<std::size_t> all_fail(TimePoint now, divert::error_code ec = refused) {
    auto c = core();
    std::vector<std::size_t> tried;
    const Actions* a = &start(c, now);
    while (!c.done()) {
      auto conn = connect_of(*a);
      REQUIRE(conn);
      tried.push_back(*conn);
      a = &c.on_connect_failed(*conn, ec, nullptr, now);
    }
    return tried;
  }
  // One whole connect where the first candidate succeeds; returns it.
  std::size_t first_succeeds(TimePoint now) {
    auto c = core();
    auto conn = connect_of(start(c, now));
    REQUIRE(conn);
    c.on_connected(*conn, asio::ip::make_address("127.0.0.1"), now);
    REQUIRE(done_of(c.on_header_written(*conn, now)).error == divert::error_code());
    return *conn;
  }

  static std::optional<std::size_t> connect_of(const Actions& a) {
    for (const auto& x : a)
      if (x.kind == Kind::connect) return x.proxy;
    return std::nullopt;
  }
  static ConnectAction done_of(const Actions& a) {
    auto n = std::count_if(a.begin(), a.end(),
                           [](const ConnectAction& x) { return x.kind == Kind::done; });
    REQUIRE(n == 1);
    return *std::find_if(a.begin(), a.end(),
                         [](const ConnectAction& x) { return x.kind == Kind::done; });
  }
};

std::vector<Kind> kinds(const Actions& a) {
  std::vector<Kind> r;
  for (const auto& x : a) r.push_back(x.kind);
  return r;
}

// Sum of the metric actions for `c`.
std::uint64_t count(const Actions& a, MetricsCounter c) {
  std::uint64_t n = 0;
  for (const auto& x : a)
    if (x.kind == Kind::metric && x.counter == c) n += x.amount;
  return n;
}

std::vector<std::string> logs(const Actions& a) {
  std::vector<std::string> r;
  for (const auto& x : a)
    if (x.kind == Kind::log) r.push_back(x.text);
  return r;
}

}  // namespace

TEST_CASE("C1: candidates in the selector's order, at most proxy_failover + 1 tried") {
  for (std::size_t failover : {0u, 1u, 2u, 5u}) {
    INFO("proxy_failover " << failover);
    Fixture f(4, failover);
    f.cfg.eject_after_failures = 0;  // no ejection: every connect sees all four
    std::vector<std::size_t> want;
    for (std::size_t i = 0; i < std::min<std::size_t>(failover + 1, 4); ++i) want.push_back(i);
    CHECK(f.all_fail(at(0ms)) == want);
  }
}

TEST_CASE("C3: the last candidate's error is reported; no_next_proxy_available with none") {
  Fixture f(2);
  auto c = f.core();
  f.start(c);
  c.on_connect_failed(0, refused, nullptr, at(0ms));
  auto d = Fixture::done_of(c.on_connect_failed(1, timed_out, nullptr, at(1ms)));
  CHECK(d.error == timed_out);
  CHECK(d.proxy == ConnectAction::npos);
}

TEST_CASE(
    "C3: ejection after eject_after_failures consecutive failures, re-admitted after "
    "eject_duration") {
  Fixture f(2, 0);  // one candidate per connect: proxy 0 while it is usable
  f.cfg.eject_after_failures = 3;
  f.cfg.eject_duration = 10'000ms;
  CHECK(f.all_fail(at(0ms)) == std::vector<std::size_t>{0});
  CHECK(f.all_fail(at(1ms)) == std::vector<std::size_t>{0});
  CHECK_FALSE(f.health->ejected(0, at(2ms)));
  CHECK(f.health->ejections() == 0);
  CHECK(f.all_fail(at(2ms)) == std::vector<std::size_t>{0});  // the third: ejected until 10.002 s
  CHECK(f.health->ejections() == 1);
  CHECK(f.first_succeeds(at(3ms)) == 1);
  CHECK(f.first_succeeds(at(10'001ms)) == 1);  // still ejected
  CHECK(f.first_succeeds(at(10'002ms)) == 0);  // re-admitted exactly at the end
}

TEST_CASE("C3: a success resets the consecutive failure count") {
  Fixture f(2, 0);
  f.cfg.eject_after_failures = 2;
  f.all_fail(at(0ms));
  CHECK(f.first_succeeds(at(1ms)) == 0);
  f.all_fail(at(2ms));
  CHECK_FALSE(f.health->ejected(0, at(3ms)));
  f.all_fail(at(3ms));
  CHECK(f.health->ejected(0, at(4ms)));
}

TEST_CASE("C3: an ejection is logged once, with the failure count") {
  Fixture f(2, 0);
  f.cfg.eject_after_failures = 1;
  auto c = f.core();
  f.start(c);
  auto l = logs(c.on_connect_failed(0, refused, nullptr, at(0ms)));
  REQUIRE(l.size() == 2);
  CHECK(l[0] == "next proxy 127.0.0.1:3128: connect failed: " + refused.message());
  CHECK(l[1] == "next proxy 127.0.0.1:3128 ejected for 10000 ms after 1 consecutive failures");
}

TEST_CASE("C1: every next proxy ejected: all are tried as if none were") {
  Fixture f(3, 5);
  f.cfg.eject_after_failures = 1;
  CHECK(f.all_fail(at(0ms)) == std::vector<std::size_t>{0, 1, 2});  // each ejected now
  CHECK(f.health->ejections() == 3);
  CHECK(f.all_fail(at(1ms)) == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("C1: one next proxy is tried even when ejected") {
  Fixture f(1);
  f.cfg.eject_after_failures = 1;
  f.all_fail(at(0ms));
  CHECK(f.health->ejected(0, at(1ms)));
  CHECK(f.all_fail(at(1ms)) == std::vector<std::size_t>{0});
}

TEST_CASE("C1: a proxy marked down is left out as an ejected one is, until marked up") {
  Fixture f(2, 1);
  f.health->set_down(0, true);
  CHECK(f.first_succeeds(at(0ms)) == 1);
  f.health->set_down(1, true);  // both down: all tried
  CHECK(f.first_succeeds(at(0ms)) == 0);
  f.health->set_down(0, false);
  f.health->set_down(1, false);
  CHECK(f.first_succeeds(at(0ms)) == 0);
}

TEST_CASE("C2: attempt counted once per candidate; error or timeout per failure; establish once") {
  Fixture f(3, 2);
  f.cfg.eject_after_failures = 0;
  auto c = f.core();
  std::vector<ConnectAction> all;
  auto take = [&](const Actions& a) { all.insert(all.end(), a.begin(), a.end()); };
  take(f.start(c, at(0ms)));
  CHECK(count(all, MetricsCounter::task_total) == 1);
  CHECK(count(all, MetricsCounter::connection_attempt) == 1);
  CHECK(count(all, MetricsCounter::tcp_connect_attempt) == 1);
  take(c.on_connect_failed(0, timed_out, nullptr, at(30'000ms)));
  CHECK(count(all, MetricsCounter::tcp_connect_timeout) == 1);
  CHECK(count(all, MetricsCounter::tcp_connect_error) == 0);
  CHECK(count(all, MetricsCounter::tcp_connect_attempt) == 2);
  take(c.on_connect_failed(1, refused, nullptr, at(30'001ms)));
  CHECK(count(all, MetricsCounter::tcp_connect_error) == 1);
  CHECK(count(all, MetricsCounter::tcp_connect_attempt) == 3);
  CHECK(count(all, MetricsCounter::connection_attempt) == 3);
  const auto& a = c.on_connected(2, asio::ip::make_address("127.0.0.3"), at(30'251ms));
  REQUIRE(kinds(a) == std::vector<Kind>{Kind::connect_latency, Kind::write_header});
  CHECK(a[0].latency == 250ms);  // from this candidate's start, by the clock given
  take(a);
  CHECK(count(all, MetricsCounter::tcp_connect_establish) == 0);  // not before the header is out
  take(c.on_header_written(2, at(30'252ms)));
  CHECK(count(all, MetricsCounter::tcp_connect_establish) == 1);
  CHECK(count(all, MetricsCounter::tcp_connect_success) == 1);
  CHECK(count(all, MetricsCounter::connection_establish) == 1);
  CHECK(count(all, MetricsCounter::traffic_out_bytes) == 4);  // "PING"
  CHECK(Fixture::done_of(all).proxy == 2);
  CHECK(Fixture::done_of(all).error == divert::error_code());
}

TEST_CASE("C2/C3: a failed header write is one error, no establish, and fails over") {
  Fixture f(2);
  auto c = f.core();
  f.start(c);
  c.on_connected(0, asio::ip::make_address("127.0.0.1"), at(0ms));
  const auto& a = c.on_header_write_failed(0, asio::error::broken_pipe, at(1ms));
  CHECK(count(a, MetricsCounter::tcp_connect_error) == 1);
  CHECK(count(a, MetricsCounter::tcp_connect_establish) == 0);
  CHECK(Fixture::connect_of(a) == std::optional<std::size_t>(1));
}

TEST_CASE("C4: a header the encoder refuses fails before anything is connected") {
  Fixture f(1);
  SECTION("a NUL in the username") {
    f.task.username = std::string("al\0ce", 5);
    auto c = f.core();
    const auto& a = f.start(c);
    CHECK(Fixture::done_of(a).error == ppv2::errc::invalid_tlv_value);
    CHECK_FALSE(Fixture::connect_of(a));
  }
  SECTION("over max_header_size") {
    f.cfg.max_header_size = 64;
    auto c = f.core();
    const auto& a = f.start(c);
    CHECK(Fixture::done_of(a).error == errc::header_too_large);
    CHECK_FALSE(Fixture::connect_of(a));
    CHECK(count(a, MetricsCounter::connection_attempt) == 0);
  }
}

TEST_CASE(
    "header: E0, E3, E2 only for a non-empty user, E1 only with a TLS name, CRC32C on request") {
  Fixture f(1);
  auto decode = [](std::span<const std::uint8_t> bytes) {
    auto r = ppv2::parse(bytes);
    REQUIRE(r.complete());
    CHECK(r.consumed == bytes.size());
    ppv2::DivertTlvs t;
    REQUIRE_FALSE(ppv2::read_divert_tlvs(r.header, t));
    return std::make_pair(r.header, t);
  };
  std::string tls = "example.com";
  f.task.username = "";
  f.cfg.header_crc32c = true;
  auto c = f.core();
  const TaskId id = make_task_id_v7();
  c.start({f.task, &tls, id}, at(0ms));
  auto [h, t] = decode(c.header());
  CHECK(t.upstream_text.value_or("") == "example.com:443");
  CHECK(t.tls_name.value_or("") == "example.com");
  CHECK_FALSE(t.username);
  REQUIRE(t.task_id);
  CHECK(*t.task_id == id);
  CHECK(h.crc32c.has_value());
}

TEST_CASE("C5: cancellation ends the connect and counts no failure") {
  Fixture f(2);
  f.cfg.eject_after_failures = 1;
  SECTION("while connecting") {
    auto c = f.core();
    f.start(c);
    const auto& a = c.on_connect_failed(0, aborted, nullptr, at(0ms));
    CHECK(kinds(a) == std::vector<Kind>{Kind::done});
    CHECK(a[0].error == aborted);
  }
  SECTION("while writing the header") {
    auto c = f.core();
    f.start(c);
    c.on_connected(0, asio::ip::make_address("127.0.0.1"), at(0ms));
    const auto& a = c.on_header_write_failed(0, aborted, at(0ms));
    CHECK(kinds(a) == std::vector<Kind>{Kind::done});
    CHECK(a[0].error == aborted);
  }
  CHECK_FALSE(f.health->ejected(0, at(1ms)));
  CHECK(f.health->ejections() == 0);
}

TEST_CASE("events for another proxy or after done are ignored") {
  Fixture f(2);
  auto c = f.core();
  f.start(c);
  CHECK(c.on_connected(1, asio::ip::make_address("127.0.0.2"), at(0ms)).empty());
  CHECK(c.on_header_written(0, at(0ms)).empty());  // not connected yet
  c.on_connected(0, asio::ip::make_address("127.0.0.1"), at(0ms));
  c.on_header_written(0, at(0ms));
  REQUIRE(c.done());
  CHECK(c.on_connect_failed(0, refused, nullptr, at(0ms)).empty());
  CHECK(c.start({f.task, nullptr, TaskId{}}, at(0ms)).empty());
}

namespace {

// A connect with next_proxy_status_reply on, up to the read of proxy 0's reply;
// the task's initial data is `initial_data`.
struct ReplyFixture : Fixture {
  ConnectCore c;
  std::vector<ConnectAction> all;  // every action so far
  explicit ReplyFixture(std::size_t n = 2, std::string initial_data = "PING")
      : Fixture(n),
        c((task.initial_data = std::move(initial_data), cfg.next_proxy_status_reply = true,
           core())) {
    cfg.connect.tcp_connect.each_timeout = 3000ms;
    take(start(c, at(0ms)));
    take(c.on_connected(0, asio::ip::make_address("127.0.0.1"), at(1ms)));
    take(c.on_header_written(0, at(2ms)));
  }
  const Actions& take(const Actions& a) {
    all.insert(all.end(), a.begin(), a.end());
    return a;
  }
  const Actions& reply(std::array<std::uint8_t, 8> bytes) {
    return take(c.on_status_reply(0, bytes, at(10ms)));
  }
};

std::array<std::uint8_t, 8> reply_bytes(std::uint8_t status, std::uint16_t ms = 7) {
  return {'D',
          'V',
          'T',
          '1',
          status,
          0,
          static_cast<std::uint8_t>(ms >> 8),
          static_cast<std::uint8_t>(ms & 0xFF)};
}

}  // namespace

TEST_CASE("C6: with next_proxy_status_reply the header carries 0xE7 = 0x01; without, no 0xE7") {
  for (bool on : {false, true}) {
    Fixture f(1);
    f.cfg.next_proxy_status_reply = on;
    auto c = f.core();
    f.start(c);
    auto r = ppv2::parse(c.header());
    REQUIRE(r.complete());
    ppv2::DivertTlvs t;
    REQUIRE_FALSE(ppv2::read_divert_tlvs(r.header, t));
    CHECK(t.status_reply == (on ? std::optional<std::uint8_t>(1) : std::nullopt));
  }
}

TEST_CASE(
    "C6: after the header the reply is read under tcp_connect.each_timeout; nothing is established "
    "yet") {
  ReplyFixture f;
  REQUIRE(f.all.back().kind == Kind::read_status_reply);
  CHECK(f.all.back().proxy == 0);
  CHECK(f.all.back().deadline == at(3002ms));
  CHECK(count(f.all, MetricsCounter::tcp_connect_establish) == 0);
  CHECK_FALSE(f.c.done());
}

TEST_CASE("C6: status 0 hands the stream back") {
  ReplyFixture f;
  auto d = Fixture::done_of(f.reply(reply_bytes(0)));
  CHECK(d.error == divert::error_code());
  CHECK(d.proxy == 0);
  CHECK(count(f.all, MetricsCounter::tcp_connect_establish) == 1);
  CHECK(count(f.all, MetricsCounter::connection_establish) == 1);
  CHECK(count(f.all, MetricsCounter::traffic_out_bytes) == 4);
}

TEST_CASE("C6: an upstream status is the upstream's failure: its code, no failover, no ejection") {
  const std::pair<std::uint8_t, errc> table[] = {
      {1, errc::upstream_refused},      {2, errc::upstream_timed_out},
      {3, errc::upstream_unreachable},  {4, errc::upstream_resolve_failed},
      {5, errc::upstream_denied},       {255, errc::upstream_failed_other},
      {7, errc::upstream_failed_other},  // a status this version does not know
  };
  for (auto [status, code] : table) {
    INFO("status " << int(status));
    ReplyFixture f;
    f.health->record_failure(0, 2, 10s, at(0ms));  // one failure before: reset by the answer
    f.cfg.eject_after_failures = 2;
    const auto& a = f.reply(reply_bytes(status));
    auto d = Fixture::done_of(a);
    CHECK(d.error == code);
    CHECK(d.error == condition::upstream_failed);
    CHECK(d.proxy == 0);                  // the next proxy that answered
    CHECK_FALSE(Fixture::connect_of(a));  // no other next proxy tried
    CHECK(count(f.all, MetricsCounter::tcp_connect_error) == 0);
    CHECK(count(f.all, MetricsCounter::tcp_connect_establish) == 1);
    CHECK(count(f.all, MetricsCounter::connection_establish) == 0);
    f.health->record_failure(0, 2, 10s, at(20ms));
    CHECK_FALSE(f.health->ejected(0, at(21ms)));  // the count started again
  }
}

// Each way a reply can fail to be one, on `f`'s proxy 0: the actions it led
// to, what was counted, and the log line's text.
struct BadReply {
  const char* name;
  MetricsCounter counted;
  std::string log;
};
const Actions& bad_reply(ReplyFixture& f, int which, BadReply& what) {
  switch (which) {
    case 0: {
      auto bytes = reply_bytes(0);
      bytes[0] = 'X';
      what = {"wrong magic", MetricsCounter::tcp_connect_error, "bad status reply (not DVT1)"};
      return f.reply(bytes);
    }
    case 1: {
      auto bytes = reply_bytes(0);
      bytes[5] = 1;
      what = {"reserved byte not 0", MetricsCounter::tcp_connect_error,
              "bad status reply (not DVT1)"};
      return f.reply(bytes);
    }
    case 2:
      what = {"closed before 8 bytes", MetricsCounter::tcp_connect_error,
              "no status reply: " + divert::error_code(asio::error::eof).message()};
      return f.take(f.c.on_status_reply_failed(0, asio::error::eof, at(10ms)));
    default:
      what = {"silent until the deadline", MetricsCounter::tcp_connect_timeout,
              "no status reply within 3000 ms"};
      return f.take(f.c.on_status_reply_timed_out(0, at(3002ms)));
  }
}

TEST_CASE(
    "C6: with initial data a bad reply ends the connect: the next proxy may have forwarded the "
    "data, so no other one is tried (no duplicate at the upstream)") {
  for (int which = 0; which < 4; ++which) {
    ReplyFixture f;  // initial data "PING"
    f.cfg.eject_after_failures = 1;
    BadReply what;
    const auto& a = bad_reply(f, which, what);
    INFO(what.name);
    CHECK_FALSE(Fixture::connect_of(a));  // no second copy of "PING" anywhere
    auto d = Fixture::done_of(a);
    CHECK(d.error == errc::bad_status_reply);
    CHECK(d.error == condition::next_proxy_failed);
    CHECK(d.proxy == ConnectAction::npos);
    CHECK(count(a, what.counted) == 1);  // still the next proxy's failure
    CHECK(count(f.all, MetricsCounter::tcp_connect_establish) == 0);
    CHECK(f.health->ejected(0, at(3003ms)));
    REQUIRE(logs(a).size() >= 2);
    CHECK_THAT(logs(a).at(0), Catch::Contains(what.log));
    CHECK_THAT(logs(a).back(), Catch::Contains("not tried"));
  }
}

TEST_CASE(
    "C6: a reply that is not one is bad_status_reply, the next proxy's failure: counted, ejection, "
    "failover (no initial data)") {
  for (int which = 0; which < 4; ++which) {
    ReplyFixture f(2, "");
    f.cfg.eject_after_failures = 1;
    BadReply what;
    const auto& a = bad_reply(f, which, what);
    INFO(what.name);
    CHECK_THAT(logs(a).at(0), Catch::Contains(what.log));
    CHECK(Fixture::connect_of(a) == std::optional<std::size_t>(1));
    CHECK(count(a, what.counted) == 1);
    CHECK(count(f.all, MetricsCounter::tcp_connect_establish) == 0);
    CHECK(f.health->ejected(0, at(3003ms)));
    // The last candidate fails the same way: the error is bad_status_reply.
    f.take(f.c.on_connected(1, asio::ip::make_address("127.0.0.2"), at(3004ms)));
    f.take(f.c.on_header_written(1, at(3005ms)));
    auto d = Fixture::done_of(f.take(f.c.on_status_reply_failed(1, asio::error::eof, at(3006ms))));
    CHECK(d.error == errc::bad_status_reply);
    CHECK(d.error == condition::next_proxy_failed);
    CHECK(d.proxy == ConnectAction::npos);
  }
}

TEST_CASE("C5: cancellation while waiting for the status reply counts no failure") {
  ReplyFixture f;
  f.cfg.eject_after_failures = 1;
  const auto& a = f.take(f.c.on_status_reply_failed(0, aborted, at(5ms)));
  CHECK(kinds(a) == std::vector<Kind>{Kind::done});
  CHECK(a[0].error == aborted);
  CHECK_FALSE(f.health->ejected(0, at(6ms)));
}

namespace {

// Sum of the proxy_metric actions for next proxy `proxy` and counter `c`.
std::uint64_t proxy_count(const Actions& a, std::size_t proxy, ProxyCounter c) {
  std::uint64_t n = 0;
  for (const auto& x : a)
    if (x.kind == Kind::proxy_metric && x.proxy == proxy && x.proxy_counter == c) ++n;
  return n;
}

// C7's invariant: each tcp.connect counter equals the sum of the next proxies' own.
void check_proxy_sums(const Actions& all, std::size_t proxies) {
  const std::pair<MetricsCounter, ProxyCounter> pairs[] = {
      {MetricsCounter::tcp_connect_attempt, ProxyCounter::attempt},
      {MetricsCounter::tcp_connect_establish, ProxyCounter::establish},
      {MetricsCounter::tcp_connect_error, ProxyCounter::error},
      {MetricsCounter::tcp_connect_timeout, ProxyCounter::timeout},
  };
  for (auto [total, own] : pairs) {
    std::uint64_t sum = 0;
    for (std::size_t p = 0; p < proxies; ++p) sum += proxy_count(all, p, own);
    CHECK(sum == count(all, total));
  }
}

// A started connect over `n` next proxies (no ejection) keeping every action.
struct Recorded : Fixture {
  ConnectCore c;
  std::vector<ConnectAction> all;
  Recorded(std::size_t n, std::size_t failover)
      : Fixture(n, failover), c((cfg.eject_after_failures = 0, core())) {
    take(start(c, at(0ms)));
  }
  void take(const Actions& a) { all.insert(all.end(), a.begin(), a.end()); }
};

}  // namespace

TEST_CASE("C7: each next proxy tried counts its own attempt, then timeout, error or establish") {
  Recorded r(3, 2);
  auto& c = r.c;
  const auto& all = r.all;
  auto take = [&](const Actions& a) { r.take(a); };
  CHECK(proxy_count(all, 0, ProxyCounter::attempt) == 1);
  CHECK(proxy_count(all, 1, ProxyCounter::attempt) == 0);
  take(c.on_connect_failed(0, timed_out, nullptr, at(1ms)));
  CHECK(proxy_count(all, 0, ProxyCounter::timeout) == 1);
  CHECK(proxy_count(all, 0, ProxyCounter::error) == 0);
  CHECK(proxy_count(all, 1, ProxyCounter::attempt) == 1);
  take(c.on_connect_failed(1, refused, nullptr, at(2ms)));
  CHECK(proxy_count(all, 1, ProxyCounter::error) == 1);
  CHECK(proxy_count(all, 1, ProxyCounter::timeout) == 0);
  take(c.on_connected(2, asio::ip::make_address("127.0.0.3"), at(3ms)));
  CHECK(proxy_count(all, 2, ProxyCounter::establish) == 0);  // not before the header is out
  take(c.on_header_written(2, at(4ms)));
  CHECK(proxy_count(all, 2, ProxyCounter::attempt) == 1);
  CHECK(proxy_count(all, 2, ProxyCounter::establish) == 1);
  CHECK(proxy_count(all, 0, ProxyCounter::establish) == 0);
  check_proxy_sums(all, 3);
}

TEST_CASE("C7: a failed header write is the next proxy's error; cancellation counts nothing") {
  Recorded r(2, 1);
  auto& c = r.c;
  const auto& all = r.all;
  auto take = [&](const Actions& a) { r.take(a); };
  take(c.on_connected(0, asio::ip::make_address("127.0.0.1"), at(0ms)));
  take(c.on_header_write_failed(0, asio::error::broken_pipe, at(1ms)));
  CHECK(proxy_count(all, 0, ProxyCounter::error) == 1);
  CHECK(proxy_count(all, 1, ProxyCounter::attempt) == 1);
  take(c.on_connect_failed(1, aborted, nullptr, at(2ms)));  // cancelled
  CHECK(proxy_count(all, 1, ProxyCounter::error) == 0);
  CHECK(proxy_count(all, 1, ProxyCounter::timeout) == 0);
  check_proxy_sums(all, 2);
}

TEST_CASE(
    "C7: status reply: an upstream failure is the next proxy's establish, silence its timeout") {
  SECTION("upstream refused") {
    ReplyFixture f;
    f.reply(reply_bytes(1));
    CHECK(proxy_count(f.all, 0, ProxyCounter::establish) == 1);
    CHECK(proxy_count(f.all, 0, ProxyCounter::error) == 0);
    check_proxy_sums(f.all, 2);
  }
  SECTION("no reply by the deadline") {
    ReplyFixture f(2, "");  // no initial data: the next candidate is tried (C6)
    f.take(f.c.on_status_reply_timed_out(0, at(3002ms)));
    CHECK(proxy_count(f.all, 0, ProxyCounter::timeout) == 1);
    CHECK(proxy_count(f.all, 0, ProxyCounter::establish) == 0);
    CHECK(proxy_count(f.all, 1, ProxyCounter::attempt) == 1);
    check_proxy_sums(f.all, 2);
  }
}

namespace {
std::vector<WeightedUpstreamAddr> proxies(std::initializer_list<std::pair<const char*, double>> l) {
  std::vector<WeightedUpstreamAddr> v;
  for (auto [a, w] : l) v.emplace_back(UpstreamAddr::parse(a, 3128), w);
  return v;
}
}  // namespace

TEST_CASE("ProxyHealth::carried_to: kept addresses share their state, new ones start fresh") {
  ProxyHealth old(proxies({{"127.0.0.1", 1}, {"127.0.0.2", 1}, {"np.test", 1}}));
  old.count(0, ProxyCounter::attempt, 5);
  old.count(1, ProxyCounter::error, 3);
  old.record_failure(1, 1, 10s, at(0ms));  // 127.0.0.2 ejected until 10 s
  old.set_down(2, true);                   // np.test:3128 marked down
  REQUIRE(old.ejections() == 1);

  // 127.0.0.1 removed; np.test reweighted and moved; 127.0.0.2 moved; 127.0.0.4 new.
  // "NP.test:3128" is np.test's canonical address too.
  auto next = old.carried_to(proxies({{"NP.test:3128", 5}, {"127.0.0.4", 1}, {"127.0.0.2", 2}}));
  REQUIRE(next.size() == 3);
  CHECK(next.entry(0) == old.entry(2));
  CHECK(next.entry(2) == old.entry(1));
  CHECK(next.entry(1) != old.entry(0));
  CHECK(next.down(0));
  CHECK(next.ejected(2, at(1ms)));
  CHECK(next.counter(2, ProxyCounter::error) == 3);
  CHECK_FALSE(next.down(1));
  CHECK_FALSE(next.ejected(1, at(1ms)));
  for (std::size_t c = 0; c < kProxyCounterCount; ++c)
    CHECK(next.counter(1, static_cast<ProxyCounter>(c)) == 0);
  CHECK(next.ejections() == 1);  // the total carries on

  // A connect still running on the old table updates the state the new one reads.
  old.count(2, ProxyCounter::establish);
  CHECK(next.counter(0, ProxyCounter::establish) == 1);
  old.record_failure(2, 1, 10s, at(2ms));
  CHECK(next.ejected(0, at(3ms)));
  CHECK(next.ejections() == 2);

  // Removed and added back: a fresh entry (its counters start from zero).
  auto again = next.carried_to(proxies({{"127.0.0.1", 1}}));
  CHECK(again.counter(0, ProxyCounter::attempt) == 0);
}

TEST_CASE("ProxyHealth: snapshot and the in-flight gauge") {
  ProxyHealth h(proxies({{"127.0.0.1", 1}, {"127.0.0.2", 1}}));
  h.count(1, ProxyCounter::attempt, 2);
  h.count(1, ProxyCounter::timeout);
  h.set_down(1, true);
  h.record_failure(0, 1, 10s, at(0ms));
  {
    ProxyHealth::InFlight a(h.entry(1)), b(h.entry(1));
    auto s = h.snapshot(1, "127.0.0.2:3128", at(1ms));
    CHECK(s.next_proxy == "127.0.0.2:3128");
    CHECK(s[ProxyCounter::attempt] == 2);
    CHECK(s[ProxyCounter::timeout] == 1);
    CHECK(s[ProxyCounter::establish] == 0);
    CHECK_FALSE(s.up);
    CHECK_FALSE(s.ejected);
    CHECK(s.connects_in_flight == 2);
  }
  CHECK(h.snapshot(1, "x", at(1ms)).connects_in_flight == 0);
  auto s0 = h.snapshot(0, "127.0.0.1:3128", at(1ms));
  CHECK(s0.up);
  CHECK(s0.ejected);
  CHECK_FALSE(h.snapshot(0, "x", at(10'000ms)).ejected);
}

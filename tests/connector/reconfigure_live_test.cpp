// The connector's live operations on loopback: reconfigure() in place (state
// of kept next proxies carried, removed ones dropped, invalid configuration
// refused, connects in flight finishing on their configuration, weights
// followed), metrics_snapshot()'s per-next-proxy part, and domain next
// proxies following their resolver's changing answers.
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <map>
#include <mutex>

#include "divert/connector.hpp"
#include "support/live.hpp"

using namespace divert;
using namespace std::chrono_literals;
using asio::ip::tcp;
namespace test = divert::test;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

Task make_task() {
  return Task{.client = tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
              .server = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
              .upstream = UpstreamAddr::parse("origin.test:80", 0)};
}

// A loopback next proxy that accepts every connection (counting them) and
// reads it to its end (so a health check's probe sees a clean close).
struct Listener {
  tcp::acceptor acc;
  int accepted = 0;
  explicit Listener(asio::io_context& io, const char* ip = "127.0.0.1", unsigned short port = 0)
      : acc(io, tcp::endpoint(asio::ip::make_address(ip), port)) {
    asio::co_spawn(io, loop(), asio::detached);
  }
  asio::awaitable<void> loop() {
    for (;;) {
      auto [ec, s] = co_await acc.async_accept(tuple_awaitable);
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(acc.get_executor(), drain(std::move(s)), asio::detached);
    }
  }
  static asio::awaitable<void> drain(tcp::socket s) {
    char buf[512];
    for (;;) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), tuple_awaitable);
      if (ec) co_return;
    }
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(acc.local_endpoint().port()); }
};

// `n` tcp_connects one after the other on `io` (bounded by `limit`); returns
// the next proxies used (DivertInfo::next_proxy) and counts the failures.
struct Run {
  std::vector<std::string> used;
  int failed = 0;
};
Run connect_n(asio::io_context& io, const DivertTcpConnector& c, int n,
              std::chrono::milliseconds limit = 20s) {
  Run r;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < n; ++i) {
          auto [ec, s, info] =
              co_await c.async_tcp_connect(make_task(), with_info, tuple_awaitable);
          if (ec)
            ++r.failed;
          else
            r.used.push_back(info.next_proxy->to_string());
        }
        done = true;
      },
      asio::detached);
  io.restart();
  while (!done && io.run_one_for(limit)) {
  }
  REQUIRE(done);
  return r;
}

// Runs `io`'s ready handlers until `pred()` holds (at most 5 s): a listener's
// accept trails the connect it answers.
template <class Pred>
bool settled(asio::io_context& io, Pred pred) {
  return test::wait_until([&] {
    io.restart();
    io.poll();
    return pred();
  });
}

// The per-next-proxy part of a snapshot, by label.
std::map<std::string, ProxyMetricsSnapshot> by_proxy(const MetricsSnapshot& s) {
  std::map<std::string, ProxyMetricsSnapshot> m;
  for (const auto& p : s.proxies) m[p.next_proxy] = p;
  return m;
}

std::vector<std::string> labels(const MetricsSnapshot& s) {
  std::vector<std::string> v;
  for (const auto& p : s.proxies) v.push_back(p.next_proxy);
  return v;
}

}  // namespace

TEST_CASE(
    "metrics_snapshot: per next proxy counters, up/ejected/in-flight gauges, in config order") {
  asio::io_context io;
  Listener a(io), b(io);
  const auto dead = "127.0.0.1:" + std::to_string(test::free_port());
  auto c = DivertTcpConnector::builder()
               .proxy_addr({{b.addr(), 1.0}, {dead, 1.0}, {a.addr(), 1.0}})
               .proxy_addr_pick_policy(PickPolicy::round_robin)
               .tcp_connect({.max_retry = 0, .each_timeout = 2s})
               .passive_ejection(2, 60s)
               .build();
  auto r = connect_n(io, c, 30);
  CHECK(r.failed == 0);
  auto snap = c.metrics_snapshot();
  CHECK(labels(snap) == std::vector<std::string>{b.addr(), dead, a.addr()});
  auto p = by_proxy(snap);
  // The dead one: tried twice (then ejected), two errors, no establish.
  CHECK(p[dead][ProxyCounter::attempt] == 2);
  CHECK(p[dead][ProxyCounter::error] == 2);
  CHECK(p[dead][ProxyCounter::establish] == 0);
  CHECK(p[dead].ejected);
  CHECK(p[dead].up);
  CHECK(p[a.addr()][ProxyCounter::establish] + p[b.addr()][ProxyCounter::establish] == 30);
  CHECK(settled(io, [&] {
    return p[a.addr()][ProxyCounter::establish] == static_cast<std::uint64_t>(a.accepted);
  }));
  CHECK_FALSE(p[a.addr()].ejected);
  std::uint64_t attempts = 0;
  for (const auto& x : snap.proxies) {
    attempts += x[ProxyCounter::attempt];
    CHECK(x.connects_in_flight == 0);
  }
  CHECK(attempts == snap[MetricsCounter::tcp_connect_attempt]);
  CHECK(snap.connects_in_flight == 0);
  // metrics().snapshot() has no per-next-proxy part.
  CHECK(c.metrics().snapshot().proxies.empty());
}

TEST_CASE("reconfigure: kept next proxies keep counters and ejection, removed ones are dropped") {
  asio::io_context io;
  Listener a(io), b(io), d(io);
  const auto dead = "127.0.0.1:" + std::to_string(test::free_port());
  auto c = DivertTcpConnector::builder()
               .proxy_addr({{a.addr(), 1.0}, {dead, 1.0}, {b.addr(), 1.0}})
               .proxy_addr_pick_policy(PickPolicy::round_robin)
               .tcp_connect({.max_retry = 0, .each_timeout = 2s})
               .passive_ejection(1, 60s)
               .build();
  Metrics* metrics = &c.metrics();
  CHECK(connect_n(io, c, 12).failed == 0);
  CHECK(settled(io, [&] { return a.accepted + b.accepted == 12; }));
  REQUIRE(c.ejected_proxies() == std::vector<std::string>{dead});
  const auto before = c.metrics_snapshot();
  const auto p0 = by_proxy(before);
  REQUIRE(c.ejections() == 1);

  // a removed; dead and b kept (reweighted, moved); d added.
  auto next = DivertTcpConnector::builder()
                  .proxy_addr({{b.addr(), 3.0}, {d.addr(), 1.0}, {dead, 2.0}})
                  .proxy_addr_pick_policy(PickPolicy::round_robin)
                  .tcp_connect({.max_retry = 0, .each_timeout = 2s})
                  .passive_ejection(1, 60s);
  c.reconfigure(next);
  CHECK(&c.metrics() == metrics);  // the same object: hosts keep &metrics()
  CHECK(c.config().proxy_addr == next.config().proxy_addr);
  CHECK(c.ejected_proxies() == std::vector<std::string>{dead});  // still ejected
  CHECK(c.ejections() == 1);
  auto after = c.metrics_snapshot();
  CHECK(labels(after) == std::vector<std::string>{b.addr(), d.addr(), dead});
  auto p1 = by_proxy(after);
  for (std::size_t k = 0; k < kProxyCounterCount; ++k) {
    const auto pc = static_cast<ProxyCounter>(k);
    CHECK(p1[b.addr()][pc] == p0.at(b.addr())[pc]);
    CHECK(p1[dead][pc] == p0.at(dead)[pc]);
    CHECK(p1[d.addr()][pc] == 0);
  }
  CHECK(p1[dead].ejected);
  for (std::size_t k = 0; k < kMetricsCounterCount; ++k) {
    const auto mc = static_cast<MetricsCounter>(k);
    CHECK(after[mc] == before[mc]);  // nothing reset
  }

  // New connects use the new list only (the dead one stays ejected).
  const int a_before = a.accepted;
  auto r = connect_n(io, c, 8);
  CHECK(r.failed == 0);
  CHECK(settled(io, [&] { return b.accepted + d.accepted == 12 - a_before + 8; }));
  CHECK(a.accepted == a_before);
  for (const auto& u : r.used) CHECK((u == b.addr() || u == d.addr()));
  auto p2 = by_proxy(c.metrics_snapshot());
  CHECK(p2[b.addr()][ProxyCounter::establish] + p2[d.addr()][ProxyCounter::establish] ==
        p0.at(b.addr())[ProxyCounter::establish] + 8);

  // Removed, then added back: it starts from zero.
  c.reconfigure(DivertTcpConnector::builder().proxy_addr({{a.addr(), 1.0}, {b.addr(), 1.0}}));
  auto p3 = by_proxy(c.metrics_snapshot());
  CHECK(p3[a.addr()][ProxyCounter::establish] == 0);
  CHECK(p3[b.addr()][ProxyCounter::establish] == p2[b.addr()][ProxyCounter::establish]);
  CHECK(c.ejected_proxies().empty());
  CHECK(c.ejections() == 1);
}

TEST_CASE("reconfigure: an invalid configuration is refused, the old one keeps serving") {
  asio::io_context io;
  Listener a(io), b(io);
  auto c = DivertTcpConnector::builder()
               .proxy_addr(a.addr())
               .name("edge")
               .extra_metrics_tags({{"pop", "ams"}})
               .build();
  auto refused = [&](const DivertTcpConnector::Builder& bad, const std::string& key) {
    INFO("key " << key);
    try {
      c.reconfigure(bad);
      FAIL("reconfigure accepted it");
    } catch (const config_error& e) {
      CHECK(e.key() == key);
    }
    CHECK(c.config().proxy_addr.at(0).addr.to_string() == a.addr());
    CHECK(c.config().proxy_addr.size() == 1);
  };
  auto good = [&] {
    return DivertTcpConnector::builder().proxy_addr(b.addr()).name("edge").extra_metrics_tags(
        {{"pop", "ams"}});
  };
  refused(DivertTcpConnector::builder().name("edge").extra_metrics_tags({{"pop", "ams"}}),
          "proxy_addr");                                   // no next proxy
  refused(good().proxy_addr("np.test:3128"), "resolver");  // a domain, no resolver
  refused(good().proxy_addr({{b.addr(), 1.0}, {b.addr(), 2.0}}), "proxy_addr");  // twice
  refused(good().name("other"), "name");
  refused(good().extra_metrics_tags({{"pop", "fra"}}), "extra_metrics_tags");
  refused(good().max_header_size(8), "max_header_size");
  auto r = connect_n(io, c, 3);
  CHECK(r.failed == 0);
  CHECK(settled(io, [&] { return a.accepted == 3; }));
  CHECK(b.accepted == 0);
  c.reconfigure(good());  // the same name and tags: accepted
  CHECK(connect_n(io, c, 2).failed == 0);
  CHECK(settled(io, [&] { return b.accepted == 2; }));
}

TEST_CASE("reconfigure: a connect in flight finishes on the configuration it started with") {
  asio::io_context io;
  Listener a(io), b(io);
  // The old next proxy is a domain whose (stub) resolver answers after 300 ms:
  // the connect is in flight across the reconfigure.
  auto stub = std::make_shared<net::StubResolver>();
  stub->add("old.test", {asio::ip::make_address("127.0.0.1")});
  stub->delay(net::AddressFamily::ipv4, 300ms);
  stub->delay(net::AddressFamily::ipv6, 300ms);
  const auto port = std::to_string(a.acc.local_endpoint().port());
  auto c = DivertTcpConnector::builder().proxy_addr("old.test:" + port).resolver(stub).build();
  std::optional<DivertInfo> first;
  divert::error_code first_ec = asio::error::would_block;
  c.async_tcp_connect(io.get_executor(), make_task(), with_info,
                      [&](divert::error_code ec, tcp::socket, DivertInfo info) {
                        first_ec = ec;
                        first = info;
                      });
  io.run_for(50ms);  // the connect waits for the resolver
  REQUIRE_FALSE(first);
  REQUIRE(stub->query_count(net::AddressFamily::ipv4) == 1);
  CHECK(c.metrics_snapshot().connects_in_flight == 1);
  CHECK(c.metrics_snapshot().proxies.at(0).connects_in_flight == 1);
  // Initiated before the reconfigure, not yet run: it belongs to the old configuration too.
  std::optional<DivertInfo> second;
  c.async_tcp_connect(io.get_executor(), make_task(), with_info,
                      [&](divert::error_code ec, tcp::socket, DivertInfo info) {
                        CHECK_FALSE(ec);
                        second = info;
                      });
  c.reconfigure(DivertTcpConnector::builder().proxy_addr(b.addr()));
  CHECK(c.metrics_snapshot().proxies.at(0).connects_in_flight == 0);  // b: none
  CHECK(c.metrics_snapshot().connects_in_flight == 1);
  // A connect started now uses the new configuration.
  auto r = connect_n(io, c, 1);
  CHECK(r.used == std::vector<std::string>{b.addr()});
  test::wait_until(
      [&] {
        io.run_for(20ms);
        return first && second;
      },
      5s);
  REQUIRE(first);
  REQUIRE(second);
  CHECK_FALSE(first_ec);
  CHECK(first->next_proxy->to_string() == "old.test:" + port);
  CHECK(second->next_proxy->to_string() == "old.test:" + port);
  CHECK(settled(io, [&] { return a.accepted == 2; }));
  CHECK(c.metrics_snapshot().connects_in_flight == 0);
}

TEST_CASE("reconfigure: new connects follow the new weights (smooth round robin, exact)") {
  asio::io_context io;
  Listener a(io), b(io);
  auto weighted = [&](double wa, double wb) {
    return DivertTcpConnector::builder()
        .proxy_addr({{a.addr(), wa}, {b.addr(), wb}})
        .proxy_addr_pick_policy(PickPolicy::round_robin);
  };
  auto c = weighted(1, 1).build();
  CHECK(connect_n(io, c, 20).failed == 0);
  CHECK(settled(io, [&] { return a.accepted == 10 && b.accepted == 10; }));
  c.reconfigure(weighted(3, 1));
  CHECK(connect_n(io, c, 40).failed == 0);
  CHECK(settled(io, [&] { return a.accepted == 10 + 30 && b.accepted == 10 + 10; }));
  CHECK(a.accepted == 10 + 30);
  CHECK(b.accepted == 10 + 10);
  auto p = by_proxy(c.metrics_snapshot());
  CHECK(p[a.addr()][ProxyCounter::establish] == 40);
  CHECK(p[b.addr()][ProxyCounter::establish] == 20);
}

namespace {
// A resolver whose answer for every name can be changed while it is used
// (StubResolver is configured once, before use).
class SwitchableResolver final : public net::Resolver {
 public:
  void set(asio::ip::address a) {
    std::lock_guard lock(mu_);
    answer_ = a;
  }
  void async_resolve(const std::string&, net::AddressFamily family, const asio::any_io_executor& ex,
                     Handler handler) override {
    std::vector<asio::ip::address> out;
    {
      std::lock_guard lock(mu_);
      if ((family == net::AddressFamily::ipv4) == answer_.is_v4()) out.push_back(answer_);
    }
    asio::post(ex, [h = std::move(handler), out = std::move(out)]() mutable { h({}, out); });
  }

 private:
  std::mutex mu_;
  asio::ip::address answer_;
};
}  // namespace

TEST_CASE("a domain next proxy follows its resolver's answer as it changes") {
  asio::io_context io;
  // The same port on 127.0.0.2 and 127.0.0.3.
  std::optional<Listener> l2, l3;
  for (int tries = 0; tries < 20 && !l3; ++tries) {
    l2.reset();
    l2.emplace(io, "127.0.0.2");
    try {
      l3.emplace(io, "127.0.0.3", l2->acc.local_endpoint().port());
    } catch (const std::system_error&) {
    }
  }
  REQUIRE(l3);
  const auto port = std::to_string(l2->acc.local_endpoint().port());
  auto resolver = std::make_shared<SwitchableResolver>();
  resolver->set(asio::ip::make_address("127.0.0.2"));
  auto c = DivertTcpConnector::builder()
               .proxy_addr("np.test:" + port)
               .resolver(resolver)
               .passive_ejection(0, 1s)
               .build();
  auto endpoint_of_next = [&] {
    std::optional<tcp::endpoint> ep;
    c.async_tcp_connect(io.get_executor(), make_task(), with_info,
                        [&](divert::error_code ec, tcp::socket, DivertInfo info) {
                          CHECK_FALSE(ec);
                          ep = info.next_proxy_endpoint;
                        });
    io.restart();
    while (!ep && io.run_one_for(5s)) {
    }
    REQUIRE(ep);
    return ep->address().to_string();
  };
  CHECK(endpoint_of_next() == "127.0.0.2");
  CHECK(endpoint_of_next() == "127.0.0.2");
  resolver->set(asio::ip::make_address("127.0.0.3"));
  CHECK(endpoint_of_next() == "127.0.0.3");
  CHECK(endpoint_of_next() == "127.0.0.3");
  // Back again, and the per-next-proxy counters stay under the configured name.
  resolver->set(asio::ip::make_address("127.0.0.2"));
  CHECK(endpoint_of_next() == "127.0.0.2");
  CHECK(settled(io, [&] { return l2->accepted == 3 && l3->accepted == 2; }));
  auto snap = c.metrics_snapshot();
  REQUIRE(snap.proxies.size() == 1);
  CHECK(snap.proxies[0].next_proxy == "np.test:" + port);
  CHECK(snap.proxies[0][ProxyCounter::establish] == 5);
}

TEST_CASE(
    "health checks: a next proxy found down is skipped; reconfigure keeps it; stop() ends it") {
  asio::io_context io;
  Listener a(io), b(io);
  const auto dead = "127.0.0.1:" + std::to_string(test::free_port());
  const HealthCheckConfig hc{
      .enabled = true, .interval = 100ms, .timeout = 300ms, .rise = 1, .fall = 1};
  auto with = [&](std::vector<WeightedUpstreamAddr> proxies) {
    return DivertTcpConnector::builder()
        .proxy_addr(std::move(proxies))
        .proxy_addr_pick_policy(PickPolicy::round_robin)
        .proxy_failover(2)
        .passive_ejection(0, 1s);  // only the health checks leave a next proxy out
  };
  const std::vector<WeightedUpstreamAddr> three = {{UpstreamAddr::parse(a.addr(), 0), 1.0},
                                                   {UpstreamAddr::parse(dead, 0), 1.0},
                                                   {UpstreamAddr::parse(b.addr(), 0), 1.0}};
  auto c = with(three).build();
  auto dead_up = [&] { return by_proxy(c.metrics_snapshot())[dead].up; };
  auto dead_attempts = [&] { return by_proxy(c.metrics_snapshot())[dead][ProxyCounter::attempt]; };
  auto until = [&](auto pred) {
    return test::wait_until([&] {
      io.restart();
      io.run_for(10ms);
      return pred();
    });
  };

  // Started while health_check is off: nothing probed.
  c.start_health_checks(io.get_executor());
  io.run_for(300ms);
  CHECK(dead_up());
  CHECK(a.accepted == 0);

  // A reconfigure turning it on starts the probes there: down within
  // fall x interval + timeout (plus scheduling slack).
  const auto on = std::chrono::steady_clock::now();
  c.reconfigure(with(three).health_check(hc));
  REQUIRE(until([&] { return !dead_up(); }));
  CHECK(std::chrono::steady_clock::now() - on < 1s);
  CHECK(by_proxy(c.metrics_snapshot())[a.addr()].up);
  CHECK_FALSE(by_proxy(c.metrics_snapshot())[dead].ejected);  // down, not ejected
  const auto tried = dead_attempts();
  CHECK(connect_n(io, c, 12).failed == 0);
  CHECK(dead_attempts() == tried);  // never picked while down

  // Reconfigured with the same health_check settings: the mark stays at once.
  c.reconfigure(with({{UpstreamAddr::parse(dead, 0), 2.0}, {UpstreamAddr::parse(b.addr(), 0), 1.0}})
                    .health_check(hc));
  CHECK_FALSE(dead_up());
  CHECK(connect_n(io, c, 6).failed == 0);
  CHECK(dead_attempts() == tried);

  // stop(): no more probes, and the mark is lifted (selection tries it again).
  c.stop();
  CHECK(dead_up());
  io.run_for(100ms);  // the accepts trailing the last connects and probes
  const int a_probes = a.accepted, b_probes = b.accepted;
  io.run_for(300ms);
  CHECK(dead_up());
  CHECK(a.accepted == a_probes);
  CHECK(b.accepted == b_probes);
  c.stop();  // idempotent
}

// Faults at the next hop, through the library (DivertTcpConnector + relay) with
// in-process peers on loopback: connection refused, SYNs black-holed (network
// namespace made by the test), DNS failure (stub resolver), reset in the middle
// of a transfer, closed right after the header, accepts but never reads (memory
// stays bounded), a very slow reader. Each asserts the error code, the metric
// counted and that every descriptor is closed afterwards.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <fstream>

#include "divert/connector.hpp"
#include "divert/net/resolver.hpp"
#include "divert/ppv2/read_header.hpp"
#include "netns.hpp"
#include "support/live.hpp"

using namespace divert;
using namespace std::chrono_literals;
using asio::ip::tcp;
namespace test = divert::test;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

Task make_task(std::string upstream = "origin.test:80") {
  return Task{.client = tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
              .server = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
              .upstream = UpstreamAddr::parse(upstream, 0)};
}

// Diverts make_task() through `connector`, then relays `client` with the
// stream; `relayed` is set once the relay has ended.
void spawn_divert_relay(asio::io_context& io, const DivertTcpConnector& connector,
                        tcp::socket& client, RelayResult& res, bool& relayed) {
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto stream = co_await connector.tcp_connect(make_task());
        res = co_await connector.relay(client, stream);
        relayed = true;
      },
      asio::detached);
}

std::string loopback(unsigned short port) {
  return "127.0.0.1:" + std::to_string(port);
}

// A connected loopback pair: `outer` plays the client, `inner` is what the host
// proxy accepted and hands to relay().
struct ClientPair {
  tcp::socket outer, inner;
  explicit ClientPair(asio::io_context& io) : outer(io), inner(io) {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    outer.connect(acc.local_endpoint());
    inner = acc.accept();
  }
};

std::string pattern(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed | 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::uint64_t sysctl_value(const char* path, int field) {
  std::ifstream f(path);
  std::uint64_t v[3] = {0, 0, 0};
  f >> v[0] >> v[1] >> v[2];
  return v[field];
}

// The most a loopback connection can hold in flight: the receiver's and the
// sender's socket buffers at their autotuning maxima (the kernel may double
// SO_*BUF values, so twice each), plus a relay buffer / pipe (64 KiB).
std::uint64_t in_flight_bound() {
  return 2 * sysctl_value("/proc/sys/net/ipv4/tcp_rmem", 2) +
         2 * sysctl_value("/proc/sys/net/ipv4/tcp_wmem", 2) + 64 * 1024;
}

}  // namespace

TEST_CASE("next hop refuses: connection_refused, error metric, no descriptor left") {
  int baseline = test::open_fd_count();
  {
    asio::io_context io;
    auto dead = test::free_port();
    auto connector = DivertTcpConnector::builder()
                         .proxy_addr(loopback(dead))
                         .tcp_connect({.max_retry = 1, .each_timeout = 2s})
                         .proxy_failover(0)
                         .build();
    divert::error_code ec;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto s = co_await connector.tcp_connect(make_task(), ec);
          CHECK_FALSE(s.is_open());
          done = true;
        },
        asio::detached);
    io.run_for(10s);
    REQUIRE(done);
    CHECK(ec == asio::error::connection_refused);
    auto m = connector.metrics().snapshot();
    CHECK(m[MetricsCounter::task_total] == 1);
    // Counted per next proxy tried (its retries are inside one attempt).
    CHECK(m[MetricsCounter::tcp_connect_attempt] == 1);
    CHECK(m[MetricsCounter::tcp_connect_error] == 1);
    CHECK(m[MetricsCounter::tcp_connect_timeout] == 0);
    CHECK(m[MetricsCounter::tcp_connect_success] == 0);
  }
  CHECK(test::open_fd_count() == baseline);
}

TEST_CASE("next hop black-holes SYNs (netns): timed_out within the bound, timeout metric") {
  auto port = test::free_port();
  divert::error_code ec;
  bool done = false;
  std::chrono::milliseconds took{};
  MetricsSnapshot m;
  int fds_before = 0, fds_after = 0;
  auto why = test::run_in_blackhole_netns(port, [&] {
    fds_before = test::open_fd_count();
    {
      asio::io_context io;
      auto connector = DivertTcpConnector::builder()
                           .proxy_addr(loopback(port))
                           .tcp_connect({.max_retry = 1, .each_timeout = 300ms})
                           .proxy_failover(0)
                           .build();
      auto t0 = std::chrono::steady_clock::now();
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto s = co_await connector.tcp_connect(make_task(), ec);
            done = true;
          },
          asio::detached);
      io.run_for(10s);
      took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - t0);
      m = connector.metrics().snapshot();
    }
    fds_after = test::open_fd_count();
  });
  DIVERT_REQUIRE_NETNS(why);
  REQUIRE(done);
  CHECK(ec == asio::error::timed_out);
  // Two tries of 300 ms each: about 600 ms, far from the kernel's SYN retry minutes.
  CHECK(took >= 550ms);
  CHECK(took < 2000ms);
  CHECK(m[MetricsCounter::tcp_connect_attempt] == 1);
  CHECK(m[MetricsCounter::tcp_connect_timeout] == 1);
  CHECK(m[MetricsCounter::tcp_connect_error] == 0);
  CHECK(fds_after == fds_before);
}

TEST_CASE("next hop's name does not resolve: the resolver's error or resolve_failed, no socket") {
  int baseline = test::open_fd_count();
  {
    asio::io_context io;
    auto stub = std::make_shared<net::StubResolver>();
    // np-fail.test: the resolver reports an error; np-empty.test: no record at all.
    stub->fail("np-fail.test", net::AddressFamily::ipv4, asio::error::host_not_found);
    stub->fail("np-fail.test", net::AddressFamily::ipv6, asio::error::host_not_found);
    stub->add("np-empty.test", {});
    auto failing = DivertTcpConnector::builder()
                       .proxy_addr("np-fail.test:3128")
                       .resolver(stub)
                       .proxy_failover(0)
                       .build();
    auto empty = DivertTcpConnector::builder()
                     .proxy_addr("np-empty.test:3128")
                     .resolver(stub)
                     .proxy_failover(0)
                     .build();
    divert::error_code ec_fail, ec_empty;
    int done = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto s1 = co_await failing.tcp_connect(make_task(), ec_fail);
          CHECK_FALSE(s1.is_open());
          auto s2 = co_await empty.tcp_connect(make_task(), ec_empty);
          CHECK_FALSE(s2.is_open());
          done = 2;
        },
        asio::detached);
    io.run_for(10s);
    REQUIRE(done == 2);
    INFO(ec_fail.message() << " / " << ec_empty.message());
    CHECK(ec_fail == asio::error::host_not_found);  // the resolver's own code, passed through
    CHECK(ec_empty == errc::resolve_failed);
    for (auto* c : {&failing, &empty}) {
      auto m = c->metrics().snapshot();
      CHECK(m[MetricsCounter::task_total] == 1);
      CHECK(m[MetricsCounter::tcp_connect_attempt] == 1);
      CHECK(m[MetricsCounter::tcp_connect_error] == 1);
      CHECK(m[MetricsCounter::tcp_connect_timeout] == 0);
      CHECK(m[MetricsCounter::tcp_connect_success] == 0);
    }
    CHECK(stub->query_count(net::AddressFamily::ipv4) >= 2);
  }
  CHECK(test::open_fd_count() == baseline);
}

TEST_CASE("next hop resets in the middle of a transfer: relay reports connection_reset") {
  int baseline = test::open_fd_count();
  {
    asio::io_context io;
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto connector =
        DivertTcpConnector::builder().proxy_addr(loopback(acc.local_endpoint().port())).build();
    ClientPair client(io);
    std::size_t hop_read = 0;
    RelayResult res;
    bool relayed = false;
    // Next hop: reads the header, then 64 KiB, then aborts with an RST.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto s = co_await acc.async_accept(asio::use_awaitable);
          auto h = co_await ppv2::read_proxy_header(s);
          hop_read = h.extra().size();
          char buf[4096];
          while (hop_read < 64 * 1024) {
            auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), tuple_awaitable);
            if (ec) break;
            hop_read += n;
          }
          s.set_option(asio::socket_base::linger(true, 0));
          s.close();
        },
        asio::detached);
    // Client: keeps writing 4 MiB (it will be cut off).
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto data = pattern(4 << 20, 7);
          co_await asio::async_write(client.outer, asio::buffer(data), tuple_awaitable);
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto stream = co_await connector.tcp_connect(make_task());
          res = co_await connector.relay(client.inner, stream);
          relayed = true;
          divert::error_code ec;
          client.outer.close(ec);
        },
        asio::detached);
    io.run_for(10s);
    REQUIRE(relayed);
    INFO(res.error.message());
    CHECK(hop_read >= 64 * 1024);
    CHECK((res.error == asio::error::connection_reset || res.error == asio::error::broken_pipe));
    CHECK(res.upload_bytes >= 64 * 1024);
    CHECK_FALSE(client.inner.is_open());
    auto m = connector.metrics().snapshot();
    CHECK(m[MetricsCounter::tcp_connect_success] == 1);
    CHECK(m[MetricsCounter::traffic_out_bytes] == res.upload_bytes);
  }
  CHECK(test::open_fd_count() == baseline);
}

TEST_CASE("next hop closes right after the header: the client sees EOF, relay ends cleanly") {
  int baseline = test::open_fd_count();
  {
    asio::io_context io;
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto connector =
        DivertTcpConnector::builder().proxy_addr(loopback(acc.local_endpoint().port())).build();
    ClientPair client(io);
    RelayResult res;
    bool relayed = false, client_eof = false, header_ok = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto s = co_await acc.async_accept(asio::use_awaitable);
          auto h = co_await ppv2::read_proxy_header(s);
          ppv2::DivertTlvs t;
          header_ok = !ppv2::read_divert_tlvs(h.header(), t) && t.upstream_text == "origin.test:80";
          s.close();
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          char b[64];
          auto [ec, n] = co_await client.outer.async_read_some(asio::buffer(b), tuple_awaitable);
          client_eof = (ec == asio::error::eof && n == 0);
          client.outer.close();  // the client gives up in turn
        },
        asio::detached);
    spawn_divert_relay(io, connector, client.inner, res, relayed);
    io.run_for(10s);
    REQUIRE(relayed);
    CHECK(header_ok);
    CHECK(client_eof);
    CHECK(res.download_bytes == 0);
    CHECK(res.upload_bytes == 0);
    CHECK_FALSE(client.inner.is_open());
    CHECK(connector.metrics().snapshot()[MetricsCounter::traffic_in_bytes] == 0);
  }
  CHECK(test::open_fd_count() == baseline);
}

TEST_CASE("next hop accepts but never reads: the sender sees backpressure, memory stays bounded") {
  int baseline = test::open_fd_count();
  for (bool allow_splice : {true, false}) {
    INFO("allow_splice " << allow_splice);
    {
      asio::io_context io;
      tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      auto connector =
          DivertTcpConnector::builder().proxy_addr(loopback(acc.local_endpoint().port())).build();
      ClientPair client(io);
      tcp::socket hop(io);
      RelayCounters counters;
      RelayResult res;
      bool relayed = false;
      std::uint64_t written = 0;
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            hop = co_await acc.async_accept(asio::use_awaitable);  // and never reads
          },
          asio::detached);
      // The client writes 64 KiB blocks for as long as the kernel takes them.
      auto block = pattern(64 * 1024, 3);
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 4096; ++i) {  // bounded: 256 MiB at most
              auto [ec, n] =
                  co_await asio::async_write(client.outer, asio::buffer(block), tuple_awaitable);
              written += n;
              if (ec) co_return;
            }
          },
          asio::detached);
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto stream = co_await connector.tcp_connect(make_task());
            RelayOptions o;
            o.counters = &counters;
            o.allow_splice = allow_splice;
            res = co_await connector.relay(client.inner, stream, o);
            relayed = true;
          },
          asio::detached);
      // Let it fill up, then check that nothing moves any more.
      std::uint64_t prev = 0;
      int stable = 0;
      for (int i = 0; i < 60 && stable < 3; ++i) {  // at most 60 x 100 ms
        io.run_for(100ms);
        auto now = counters.upload.load();
        stable = (now == prev && now > 0) ? stable + 1 : 0;
        prev = now;
      }
      auto relayed_up = counters.upload.load();
      auto sent = written;
      io.run_for(300ms);
      INFO("relay upload " << relayed_up << ", client wrote " << sent << ", bound "
                           << in_flight_bound());
      CHECK(stable >= 3);
      CHECK(counters.upload.load() == relayed_up);  // stopped growing
      CHECK(written == sent);                       // the client is blocked too
      CHECK(written < 4096ull * 64 * 1024);
      CHECK(relayed_up <= in_flight_bound());
      CHECK(written - relayed_up <= in_flight_bound());
      CHECK_FALSE(relayed);
      // The stuck next hop goes away: the relay ends and closes everything.
      hop.set_option(asio::socket_base::linger(true, 0));
      hop.close();
      io.run_for(5s);
      CHECK(relayed);
      CHECK(res.error);
      CHECK_FALSE(client.inner.is_open());
      client.outer.close();
      io.run_for(100ms);
    }
  }
  CHECK(test::open_fd_count() == baseline);
}

TEST_CASE("very slow reader at the next hop: the transfer completes byte-exact") {
  int baseline = test::open_fd_count();
  {
    asio::io_context io;
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto connector =
        DivertTcpConnector::builder().proxy_addr(loopback(acc.local_endpoint().port())).build();
    ClientPair client(io);
    const auto data = pattern(256 * 1024, 11);
    std::string got;
    RelayResult res;
    bool relayed = false, hop_done = false;
    // Next hop: 2 KiB every 10 ms (about 200 KiB/s), then answers "ok".
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto s = co_await acc.async_accept(asio::use_awaitable);
          auto h = co_await ppv2::read_proxy_header(s);
          got.assign(reinterpret_cast<const char*>(h.extra().data()), h.extra().size());
          asio::steady_timer t(io);
          for (int i = 0; i < 10'000; ++i) {  // bounded
            char buf[2048];
            auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), tuple_awaitable);
            got.append(buf, n);
            if (ec) break;
            t.expires_after(10ms);
            co_await t.async_wait(asio::use_awaitable);
          }
          co_await asio::async_write(s, asio::buffer("ok", 2), asio::use_awaitable);
          s.close();
          hop_done = true;
        },
        asio::detached);
    std::string answer;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await asio::async_write(client.outer, asio::buffer(data), asio::use_awaitable);
          client.outer.shutdown(tcp::socket::shutdown_send);
          char b[16];
          for (;;) {
            auto [ec, n] = co_await client.outer.async_read_some(asio::buffer(b), tuple_awaitable);
            answer.append(b, n);
            if (ec) break;
          }
          client.outer.close();
        },
        asio::detached);
    spawn_divert_relay(io, connector, client.inner, res, relayed);
    io.run_for(20s);
    REQUIRE(relayed);
    REQUIRE(hop_done);
    CHECK(res.ok());
    CHECK(got.size() == data.size());
    CHECK(XXH3_64bits(got.data(), got.size()) == XXH3_64bits(data.data(), data.size()));
    CHECK(answer == "ok");
    auto m = connector.metrics().snapshot();
    CHECK(m[MetricsCounter::traffic_out_bytes] == data.size());
    CHECK(m[MetricsCounter::traffic_in_bytes] == 2);
  }
  CHECK(test::open_fd_count() == baseline);
}

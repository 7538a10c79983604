// One io_context run by two threads driving many concurrent tcp_connect +
// relay through one shared DivertTcpConnector (documented thread-safe); each
// connection's coroutines run on their own strand, as relay() requires. Meant
// for TSan (label "threaded"); also checks every byte and every descriptor.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <thread>

#include "divert/connector.hpp"
#include "divert/ppv2/read_header.hpp"
#include "support/live.hpp"

using namespace divert;
using namespace std::chrono_literals;
using asio::ip::tcp;
namespace test = divert::test;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

// The next hop: reads the header, then echoes every byte back until EOF.
asio::awaitable<void> echo_hop(tcp::socket s, std::atomic<int>& headers) {
  auto h = co_await ppv2::read_proxy_header(s);
  ppv2::DivertTlvs t;
  if (!ppv2::read_divert_tlvs(h.header(), t) && t.upstream) headers.fetch_add(1);
  if (!h.extra().empty())
    co_await asio::async_write(s, asio::buffer(h.extra().data(), h.extra().size()),
                               asio::use_awaitable);
  char buf[8192];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), tuple_awaitable);
    if (n) co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    if (ec) break;
  }
  s.shutdown(tcp::socket::shutdown_send);
}

// The host proxy: diverts each accepted connection through the connector and relays.
asio::awaitable<void> host_conn(tcp::socket client, const DivertTcpConnector& connector,
                                std::atomic<int>& relays_ok) {
  divert::error_code ec;
  Task task{.client = client.remote_endpoint(),
            .server = client.local_endpoint(),
            .upstream = UpstreamAddr::parse("origin.test:443", 0)};
  auto stream = co_await connector.tcp_connect(task, ec);
  if (ec) co_return;
  RelayOptions o;
  o.buffer_size = 4096;
  auto res = co_await connector.relay(client, stream, o);
  if (res.ok()) relays_ok.fetch_add(1);
}

template <class Handler>
asio::awaitable<void> accept_loop(tcp::acceptor& acc, int count, Handler h) {
  for (int i = 0; i < count; ++i) {
    auto strand = asio::make_strand(acc.get_executor());
    auto [ec, s] = co_await acc.async_accept(strand, tuple_awaitable);
    if (ec) co_return;
    asio::co_spawn(strand, h(std::move(s)), asio::detached);
  }
}

}  // namespace

TEST_CASE("two threads, one io_context: 300 concurrent diverted connections, all bytes intact") {
  constexpr int kConnections = 300;
  constexpr std::size_t kBytes = 24 * 1024;
  int baseline = test::open_fd_count();
  std::atomic<int> clients_ok{0}, relays_ok{0}, headers{0}, finished{0};
  std::optional<DivertTcpConnector> connector;
  {
    asio::io_context io(2);
    tcp::acceptor hop_acc(asio::make_strand(io),
                          tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::acceptor front_acc(asio::make_strand(io),
                            tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    hop_acc.listen(1024);
    front_acc.listen(1024);
    connector.emplace(
        DivertTcpConnector::builder()
            .proxy_addr("127.0.0.1:" + std::to_string(hop_acc.local_endpoint().port()))
            .tcp_connect({.max_retry = 2, .each_timeout = 5s})
            .build());
    auto front = front_acc.local_endpoint();
    const int setup_fds = test::open_fd_count();  // baseline + io_context's and acceptors' own
    asio::co_spawn(hop_acc.get_executor(),
                   accept_loop(hop_acc, kConnections,
                               [&](tcp::socket s) { return echo_hop(std::move(s), headers); }),
                   asio::detached);
    asio::co_spawn(
        front_acc.get_executor(),
        accept_loop(front_acc, kConnections,
                    [&](tcp::socket s) { return host_conn(std::move(s), *connector, relays_ok); }),
        asio::detached);
    for (int i = 0; i < kConnections; ++i) {
      auto strand = asio::make_strand(io);
      asio::co_spawn(
          strand,
          [&, i, strand]() -> asio::awaitable<void> {
            // Shared with the writer, which may complete after this coroutine.
            struct State {
              tcp::socket s;
              std::string data;
              std::atomic<bool> wrote{false};
              explicit State(asio::strand<asio::io_context::executor_type> ex) : s(ex) {}
            };
            auto st = std::make_shared<State>(strand);
            st->data.resize(kBytes);
            for (std::size_t k = 0; k < kBytes; ++k)
              st->data[k] = static_cast<char>((k * 131 + i) & 0xff);
            auto [cec] = co_await st->s.async_connect(front, tuple_awaitable);
            if (!cec) {
              // Write and read concurrently (the echo would otherwise fill both ways).
              asio::co_spawn(
                  strand,
                  [st]() -> asio::awaitable<void> {
                    co_await asio::async_write(st->s, asio::buffer(st->data), tuple_awaitable);
                    divert::error_code ec;
                    st->s.shutdown(tcp::socket::shutdown_send, ec);
                    st->wrote = true;
                  },
                  asio::detached);
              std::string back;
              char buf[8192];
              for (;;) {
                auto [ec, n] = co_await st->s.async_read_some(asio::buffer(buf), tuple_awaitable);
                back.append(buf, n);
                if (ec) break;
              }
              if (st->wrote && back.size() == st->data.size() &&
                  XXH3_64bits(back.data(), back.size()) ==
                      XXH3_64bits(st->data.data(), st->data.size()))
                clients_ok.fetch_add(1);
            }
            divert::error_code ec;
            st->s.close(ec);
            finished.fetch_add(1);
          },
          asio::detached);
    }
    auto guard = asio::make_work_guard(io);
    std::thread t1([&] { io.run_for(60s); });
    std::thread t2([&] { io.run_for(60s); });
    test::wait_until(
        [&] { return finished.load() == kConnections && relays_ok.load() == kConnections; }, 60s);
    // Let the relays' last closes settle, then stop.
    test::wait_until([&] { return test::open_fd_count() <= setup_fds; }, 5s);
    guard.reset();
    io.stop();
    t1.join();
    t2.join();
  }
  CHECK(finished.load() == kConnections);
  CHECK(clients_ok.load() == kConnections);
  CHECK(relays_ok.load() == kConnections);
  CHECK(headers.load() == kConnections);
  auto m = connector->metrics().snapshot();
  CHECK(m[MetricsCounter::task_total] == kConnections);
  CHECK(m[MetricsCounter::tcp_connect_success] == kConnections);
  CHECK(m[MetricsCounter::tcp_connect_error] == 0);
  CHECK(m[MetricsCounter::traffic_out_bytes] == kConnections * kBytes);
  CHECK(m[MetricsCounter::traffic_in_bytes] == kConnections * kBytes);
  CHECK(test::open_fd_count() == baseline);
}

// Host programs, one per completion-token style, each connecting through a
// live next proxy (the rig's in-test receiver) and relaying: a callback, a
// future from a non-I/O thread, a coroutine on a strand, a deferred
// operation; the executor the stream gets; lifetimes (run under ASan).
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/redirect_error.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>

#include "api/rig.hpp"
#include "divert/net/connect.hpp"

using namespace divert;
using namespace divert::test;
using namespace std::chrono_literals;

namespace {

template <class T>
T wait(std::future<T>& f) {
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  return f.get();
}

// Expected of every relay here: both ways closed cleanly, the line counted.
void check_relayed(const divert::error_code& ec, const RelayResult& r, std::size_t bytes) {
  CHECK_FALSE(ec);
  CHECK(r.ok());
  CHECK(r.upload_bytes == bytes);
  CHECK(r.download_bytes == bytes);
}

constexpr std::size_t kLine = sizeof("hello through divert\n") - 1;

}  // namespace

TEST_CASE("callback host: temporaries die at once; the task id and next proxy are reported") {
  Rig rig;
  auto [client, host_end] = rig.client_pair();
  std::promise<DivertInfo> connected;
  std::promise<std::pair<divert::error_code, RelayResult>> relayed;
  const auto& connector = rig.connector;
  {
    // A Task on the heap and gone before the operation runs: ASan reports
    // any reference to it. The error arrives by value in the callback.
    auto task = std::make_unique<Task>(make_task());
    connector.async_tcp_connect(
        rig.io.get_executor(), *task, with_info,
        [&, host_end = std::move(host_end)](divert::error_code ec, tcp::socket stream,
                                            DivertInfo info) mutable {
          REQUIRE_FALSE(ec);
          connected.set_value(info);
          connector.async_relay(std::move(host_end), std::move(stream),
                                [&](divert::error_code ec, RelayResult r) {
                                  relayed.set_value({ec, std::move(r)});
                                });
        });
    task.reset();
  }
  auto cf = connected.get_future();
  auto info = wait(cf);
  exchange(client);
  auto rf = relayed.get_future();
  auto [ec, r] = wait(rf);
  check_relayed(ec, r, kLine);
  auto seen = rig.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].upstream == "origin.test:443");
  CHECK(seen[0].task_id == info.task_id.to_string());  // the generated id, read back
  REQUIRE(info.next_proxy);
  CHECK(info.next_proxy->to_string() == "127.0.0.1:" + std::to_string(rig.next_proxy_port()));
  CHECK(info.next_proxy_endpoint == loopback(rig.next_proxy_port()));
  CHECK(connector.metrics().value(MetricsCounter::traffic_out_bytes) == kLine);
  CHECK(connector.metrics().value(MetricsCounter::traffic_in_bytes) == kLine);
}

TEST_CASE("use_future from a non-I/O thread, with a given task id") {
  Rig rig;
  auto [client, host_end] = rig.client_pair();
  auto task = make_task();
  const TaskId id = make_task_id_v7();
  task.task_id = id;
  auto cf = rig.connector.async_tcp_connect(rig.io.get_executor(), std::move(task), with_info,
                                            asio::use_future);
  auto [stream, info] = wait(cf);
  CHECK(info.task_id == id);
  CHECK(stream.is_open());
  auto rf = rig.connector.async_relay(std::move(host_end), std::move(stream), asio::use_future);
  exchange(client);
  auto r = wait(rf);
  check_relayed({}, r, kLine);
  REQUIRE(rig.seen().size() == 1);
  CHECK(rig.seen()[0].task_id == id.to_string());

  SECTION("a failure is the future's exception, with the code") {
    auto refused = DivertTcpConnector::builder()
                       .proxy_addr("127.0.0.1:" + std::to_string(free_port()))
                       .build();
    auto f = refused.async_http_forward(rig.io.get_executor(), make_task(), asio::use_future);
    REQUIRE(f.wait_for(20s) == std::future_status::ready);
    try {
      f.get();
      FAIL("no exception");
    } catch (const divert::system_error& e) {
      CHECK(e.code() == asio::error::connection_refused);
      CHECK(e.code() == condition::next_proxy_failed);
    }
  }
}

TEST_CASE("use_awaitable on a strand of a two-thread io_context: the stream is on the strand") {
  Rig rig(2);
  auto [client, host_end] = rig.client_pair();
  auto strand = asio::make_strand(rig.io);
  std::promise<std::pair<divert::error_code, RelayResult>> relayed;
  asio::co_spawn(
      strand,
      [&, host_end = std::move(host_end)]() mutable -> asio::awaitable<void> {
        auto [stream, info] =
            co_await rig.connector.async_tcp_connect(make_task(), with_info, asio::use_awaitable);
        CHECK(strand.running_in_this_thread());
        // The stream's executor is the strand (wrapped in any_io_executor).
        using Strand = asio::strand<asio::io_context::executor_type>;
        const auto stream_ex = stream.get_executor();
        const Strand* on = stream_ex.target<Strand>();
        REQUIRE(on);
        CHECK(on->running_in_this_thread());  // this coroutine's strand
        CHECK_FALSE(info.task_id.to_string().empty());
        // as_tuple keeps the counts whatever the outcome.
        auto [ec, r] =
            co_await rig.connector.async_relay(std::move(host_end), std::move(stream),
                                               asio::experimental::as_tuple(asio::use_awaitable));
        CHECK(strand.running_in_this_thread());
        relayed.set_value({ec, std::move(r)});
      },
      asio::detached);
  exchange(client);
  auto rf = relayed.get_future();
  auto [ec, r] = wait(rf);
  check_relayed(ec, r, kLine);
}

TEST_CASE("deferred: the Task is copied when the deferred operation is made") {
  Rig rig;
  auto [client, host_end] = rig.client_pair();
  auto task = std::make_unique<Task>(make_task("deferred.test:80"));
  auto op =
      rig.connector.async_tcp_connect(rig.io.get_executor(), *task, asio::experimental::deferred);
  task.reset();  // ASan: the operation holds no reference to it
  std::promise<tcp::socket> connected;
  std::move(op)([&](divert::error_code ec, tcp::socket s) {
    CHECK_FALSE(ec);
    connected.set_value(std::move(s));
  });
  auto cf = connected.get_future();
  auto stream = wait(cf);
  auto rf = rig.connector.async_relay(std::move(host_end), std::move(stream),
                                      RelayOptions{.idle_timeout = 10s}, asio::use_future);
  exchange(client);
  check_relayed({}, wait(rf), kLine);
  REQUIRE(rig.seen().size() == 1);
  CHECK(rig.seen()[0].upstream == "deferred.test:80");
}

TEST_CASE("executors: a bound handler's, or the one given; the handler runs on its own") {
  asio::io_context other;  // run below, on this thread; outlives the rig's threads
  Rig rig;
  auto strand = asio::make_strand(rig.io);
  std::promise<std::pair<bool, const asio::execution_context*>> done;

  SECTION("the handler's associated executor when none is given") {
    rig.connector.async_tcp_connect(
        make_task(), asio::bind_executor(strand, [&](divert::error_code ec, tcp::socket s) {
          CHECK_FALSE(ec);
          done.set_value({strand.running_in_this_thread(),
                          &asio::query(s.get_executor(), asio::execution::context)});
        }));
    auto f = done.get_future();
    auto [on_strand, ctx] = wait(f);
    CHECK(on_strand);
    CHECK(ctx == &rig.io);
  }
  SECTION("the stream on the executor given, the handler on its own") {
    rig.connector.async_tcp_connect(
        other.get_executor(), make_task(),
        asio::bind_executor(strand, [&](divert::error_code ec, tcp::socket s) {
          CHECK_FALSE(ec);
          done.set_value({strand.running_in_this_thread(),
                          &asio::query(s.get_executor(), asio::execution::context)});
        }));
    auto f = done.get_future();
    // The operation's I/O runs on `other`: nothing completes until it runs.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (f.wait_for(0s) != std::future_status::ready &&
           std::chrono::steady_clock::now() < deadline)
      other.run_for(50ms);
    auto [on_strand, ctx] = wait(f);
    CHECK(on_strand);
    CHECK(ctx == &other);
  }
}

TEST_CASE("as_tuple and redirect_error carry the error; nothing is thrown") {
  Rig rig;
  auto refused =
      DivertTcpConnector::builder().proxy_addr("127.0.0.1:" + std::to_string(free_port())).build();
  std::promise<void> done;
  asio::co_spawn(
      rig.io,
      [&]() -> asio::awaitable<void> {
        auto [ec, s] = co_await refused.async_tcp_connect(
            make_task(), asio::experimental::as_tuple(asio::use_awaitable));
        CHECK(ec == asio::error::connection_refused);
        CHECK_FALSE(s.is_open());
        divert::error_code ec2;
        auto s2 = co_await refused.async_http_forward(
            make_task(), asio::redirect_error(asio::use_awaitable, ec2));
        CHECK(ec2 == condition::next_proxy_failed);
        CHECK_FALSE(s2.is_open());
        auto [ec3, s3, info] = co_await refused.async_tcp_connect(
            make_task(), with_info, asio::experimental::as_tuple(asio::use_awaitable));
        CHECK(ec3 == condition::next_proxy_failed);
        REQUIRE(info.next_proxy);  // the next proxy that failed, for the host's log
        CHECK(info.next_proxy->to_string() == refused.config().proxy_addr[0].addr.to_string());
        CHECK(info.next_proxy_endpoint == tcp::endpoint());
        done.set_value();
      },
      asio::detached);
  auto f = done.get_future();
  wait(f);
}

TEST_CASE("happy eyeballs as an initiating function: callback, use_future, cancellation") {
  Rig rig;
  auto resolver = std::make_shared<net::StubResolver>();
  resolver->add("np.test", {asio::ip::make_address("127.0.0.1")});
  net::ConnectOptions o;
  o.resolve_strategy.query = net::ResolveStrategy::Query::Ipv4Only;
  auto f = net::async_happy_eyeballs_connect(rig.io.get_executor(), "np.test",
                                             rig.next_proxy_port(), o, resolver, asio::use_future);
  auto s = wait(f);
  CHECK(s.remote_endpoint() == loopback(rig.next_proxy_port()));

  std::promise<divert::error_code> refused;
  net::async_happy_eyeballs_connect(rig.io.get_executor(), "127.0.0.1", free_port(), o, resolver,
                                    [&](divert::error_code ec, tcp::socket s) {
                                      CHECK_FALSE(s.is_open());
                                      refused.set_value(ec);
                                    });
  auto rf = refused.get_future();
  CHECK(wait(rf) == asio::error::connection_refused);
}

// Pure tests of the relay's shared session (first error, result, counters)
// and of the splice direction's transition table: no sockets, no waits.
#include <system_error>

#include <asio.hpp>

#include "divert/error.hpp"
#include "divert/metrics.hpp"
#include "divert/relay.hpp"
#include "relay/splice_direction.hpp"
#include "support/catch.hpp"

namespace {

using divert::detail::RelayDir;

// A session whose "streams" only count how often they were closed.
class FakeSession final : public divert::detail::RelaySession {
 public:
  FakeSession(asio::io_context& io, const divert::RelayOptions& o)
      : RelaySession(io.get_executor(), o, divert::RelayPath::copy) {}
  void close_streams() noexcept override { ++closes; }
  int closes = 0;
};

}  // namespace

TEST_CASE("relay session: bytes go to the result, live counters and metrics", "[relay]") {
  asio::io_context io;
  divert::RelayCounters live;
  divert::Metrics metrics("relay-state-test");
  divert::RelayOptions o;
  o.counters = &live;
  o.metrics = &metrics;
  FakeSession s(io, o);
  s.count(RelayDir::upload, 100);
  s.count(RelayDir::download, 7);
  s.count(RelayDir::upload, 0);
  s.count(RelayDir::upload, 23);
  CHECK_FALSE(s.finish());
  CHECK(s.finish());
  const auto r = s.result();
  CHECK(r.ok());
  CHECK(r.upload_bytes == 123);
  CHECK(r.download_bytes == 7);
  CHECK(live.upload.load() == 123);
  CHECK(live.download.load() == 7);
  CHECK(metrics.value(divert::MetricsCounter::traffic_out_bytes) == 123);
  CHECK(metrics.value(divert::MetricsCounter::traffic_in_bytes) == 7);
  CHECK(s.closes == 0);  // closing at the end is the path's job
}

TEST_CASE("relay session: relays_open counts the session until both directions finish", "[relay]") {
  asio::io_context io;
  divert::Metrics metrics("relay-state-test");
  divert::RelayOptions o;
  o.metrics = &metrics;
  SECTION("finished") {
    FakeSession s(io, o);
    CHECK(metrics.relays_open() == 1);
    {
      FakeSession other(io, o);
      CHECK(metrics.relays_open() == 2);
      other.finish();
      CHECK(metrics.relays_open() == 2);
    }  // destroyed with one direction running
    CHECK(metrics.relays_open() == 1);
    CHECK_FALSE(s.finish());
    CHECK(metrics.relays_open() == 1);
    CHECK(s.finish());
    CHECK(metrics.relays_open() == 0);
    s.finish();  // once only, also when a path calls finish() again
    CHECK(metrics.relays_open() == 0);
  }
  SECTION("stopped by an error, then finished") {
    FakeSession s(io, o);
    s.fail(RelayDir::upload, asio::error::connection_reset);
    CHECK(metrics.relays_open() == 1);  // the directions still wind down
    s.finish();
    s.finish();
    CHECK(metrics.relays_open() == 0);
  }
  CHECK(metrics.relays_open() == 0);
  CHECK(metrics.snapshot().relays_open == 0);
}

TEST_CASE("relay session: the first error wins, closes once and blames its direction", "[relay]") {
  asio::io_context io;
  FakeSession s(io, {});
  CHECK_FALSE(s.stopped());
  s.fail(RelayDir::download, asio::error::connection_reset);
  CHECK(s.stopped());
  CHECK(s.closes == 1);
  s.fail(RelayDir::upload, asio::error::broken_pipe);  // a consequence of the close: ignored
  s.stop(make_error_code(divert::errc::idle_timeout));
  CHECK(s.closes == 1);
  CHECK_FALSE(s.finish());
  CHECK(s.finish());
  CHECK(s.stopped());
  const auto r = s.result();
  CHECK(r.error == asio::error::connection_reset);
  CHECK(r.download_error == asio::error::connection_reset);
  CHECK_FALSE(r.upload_error);
}

TEST_CASE("relay session: a stop blames no direction; nothing counts after the end", "[relay]") {
  asio::io_context io;
  SECTION("idle timeout") {
    FakeSession s(io, {});
    s.stop(make_error_code(divert::errc::idle_timeout));
    CHECK(s.closes == 1);
    const auto r = s.result();
    CHECK(r.error == divert::errc::idle_timeout);
    CHECK_FALSE(r.upload_error);
    CHECK_FALSE(r.download_error);
  }
  SECTION("cancel") {
    FakeSession s(io, {});
    s.cancel();
    CHECK(s.result().error == asio::error::operation_aborted);
  }
  SECTION("an error after both directions ended is ignored") {
    FakeSession s(io, {});
    s.finish();
    s.finish();
    s.fail(RelayDir::upload, asio::error::connection_reset);
    CHECK_FALSE(s.stopped());
    CHECK(s.closes == 0);
    CHECK(s.result().ok());
  }
}

#if DIVERT_RELAY_SPLICE
TEST_CASE("splice direction: the transition table", "[relay]") {
  using D = divert::detail::SpliceDirection;
  using S = D::State;
  using E = D::Event;
  // Every (state, event) pair, rows in State order, columns in Event order:
  // full_page, source_ended, drained, failed.
  struct Row {
    S from;
    S to[4];
  };
  constexpr Row kTable[] = {
      {S::small, {S::bulk, S::draining, S::small, S::done}},
      {S::bulk, {S::bulk, S::draining, S::bulk, S::done}},
      {S::draining, {S::draining, S::draining, S::done, S::done}},
      {S::done, {S::done, S::done, S::done, S::done}},
  };
  constexpr E kEvents[] = {E::full_page, E::source_ended, E::drained, E::failed};
  for (const auto& row : kTable) {
    for (int e = 0; e < 4; ++e) {
      CAPTURE(static_cast<int>(row.from), e);
      CHECK(D::next(row.from, kEvents[e]) == row.to[e]);
    }
  }
  // The path of a bulk transfer ended by FIN, checked at compile time too.
  static_assert(D::next(D::next(D::next(S::small, E::full_page), E::source_ended), E::drained) ==
                S::done);
}
#endif

// One health probe against real loopback peers: what passes, what fails, the
// bytes it sends, a domain resolved on every probe, cancellation, and no
// descriptor left open on any path.
#include <sys/socket.h>

#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <mutex>
#include <vector>

#include "health_check/probe.hpp"
#include "peers.hpp"
#include "support/catch.hpp"
#include "support/live.hpp"

using namespace divert;
using namespace divert::health;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

tcp::endpoint loopback(const char* ip = "127.0.0.1", unsigned short port = 0) {
  return {asio::ip::make_address(ip), port};
}

ProbeOptions options(std::chrono::milliseconds timeout = 300ms,
                     std::shared_ptr<net::Resolver> resolver = nullptr) {
  ProbeOptions o;
  o.timeout = timeout;
  o.resolver = std::move(resolver);
  return o;
}

// Runs one probe on a fresh io_context; returns it and how long it took.
std::pair<ProbeResult, std::chrono::milliseconds> run_probe(const std::string& target,
                                                            ProbeOptions o) {
  asio::io_context io;
  std::optional<ProbeResult> r;
  const auto start = Clock::now();
  asio::co_spawn(io, probe(UpstreamAddr::parse(target, 3128, "target"), std::move(o)),
                 [&](std::exception_ptr e, ProbeResult got) {
                   REQUIRE_FALSE(e);
                   r = got;
                 });
  io.run_for(10s);
  REQUIRE(r);
  return {*r, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
}

std::string target_of(const test::Listener& l) {
  return l.endpoint().address().to_string() + ":" + std::to_string(l.endpoint().port());
}

// Peers' behaviours after accepting.
struct Peer {
  test::IoThread io;
  std::mutex m;
  std::vector<std::string> received;  // what each connection sent before its EOF
  std::vector<std::shared_ptr<tcp::socket>> held;

  // As the divert Receiver does after a LOCAL header: reads the 16 bytes,
  // closes its side (FIN), then reads to the probe's FIN, recording every
  // byte received.
  test::Listener::Serve read_then_close() {
    return [this](tcp::socket s) {
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      auto buf = std::make_shared<std::string>(16, '\0');
      asio::async_read(*sock, asio::buffer(*buf),
                       [this, sock, buf](divert::error_code ec, std::size_t n) {
                         buf->resize(n);
                         if (!ec) sock->shutdown(tcp::socket::shutdown_send, ec);
                         read_all(sock, buf, [this, sock, buf] {
                           std::lock_guard lock(m);
                           received.push_back(*buf);
                           sock->close();
                         });
                       });
    };
  }
  // Keeps the connection open, silent.
  test::Listener::Serve hold() {
    return [this](tcp::socket s) {
      std::lock_guard lock(m);
      held.push_back(std::make_shared<tcp::socket>(std::move(s)));
    };
  }
  // Closes the connections hold() kept (on the io thread).
  void release() {
    io.run([&] {
      std::lock_guard lock(m);
      held.clear();
    });
  }
  // Resets the connection at once (SO_LINGER 0, then close: RST).
  static test::Listener::Serve reset() {
    return [](tcp::socket s) {
      s.set_option(asio::socket_base::linger(true, 0));
      s.close();
    };
  }
  // Reads the 16 header bytes, then resets: the RST surely comes after the
  // probe's connect and write.
  static test::Listener::Serve reset_after_header() {
    return [](tcp::socket s) {
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      auto buf = std::make_shared<std::array<char, 16>>();
      asio::async_read(*sock, asio::buffer(*buf), [sock, buf](divert::error_code, std::size_t) {
        sock->set_option(asio::socket_base::linger(true, 0));
        sock->close();
      });
    };
  }

 private:
  template <class Done>
  static void read_all(std::shared_ptr<tcp::socket> s, std::shared_ptr<std::string> buf,
                       Done done) {
    auto chunk = std::make_shared<std::array<char, 256>>();
    s->async_read_some(asio::buffer(*chunk),
                       [s, buf, chunk, done](divert::error_code ec, std::size_t n) {
                         buf->append(chunk->data(), n);
                         if (ec) return done();
                         read_all(s, buf, done);
                       });
  }
};

const std::string kLocal = [] {
  auto h = local_header();
  return std::string(h.begin(), h.end());
}();

}  // namespace

TEST_CASE("probe: a peer that reads the LOCAL header and closes passes at once", "[live]") {
  Peer peer;
  test::Listener l(peer.io, loopback(), peer.read_then_close());
  l.start();
  auto [r, took] = run_probe(target_of(l), options(2000ms));
  CHECK(r.ok);
  CHECK_FALSE(r.error);
  CHECK(r.stage == ProbeStage::watch);
  CHECK(r.peer == l.endpoint());
  CHECK(took < 1000ms);  // the peer's FIN ends it, not the 2 s deadline
  REQUIRE(test::wait_until([&] {
    std::lock_guard lock(peer.m);
    return peer.received.size() == 1;
  }));
  std::lock_guard lock(peer.m);
  CHECK(peer.received[0] == kLocal);  // exactly the 16 bytes, then the FIN
}

TEST_CASE("probe: a peer that accepts and stays silent passes at the deadline", "[live]") {
  Peer peer;
  test::Listener l(peer.io, loopback(), peer.hold());
  l.start();
  auto [r, took] = run_probe(target_of(l), options(300ms));
  CHECK(r.ok);
  CHECK(r.stage == ProbeStage::watch);
  CHECK(took >= 300ms);
  CHECK(took < 2000ms);
}

TEST_CASE("probe: a reset after the header fails at the watch", "[live]") {
  Peer peer;
  test::Listener l(peer.io, loopback(), Peer::reset_after_header());
  l.start();
  auto [r, took] = run_probe(target_of(l), options(2000ms));
  CHECK_FALSE(r.ok);
  CHECK(r.stage == ProbeStage::watch);
  CHECK(r.error == asio::error::connection_reset);
  CHECK(took < 1000ms);  // not the deadline
}

TEST_CASE("probe: a reset at once after accept fails", "[live]") {
  Peer peer;
  test::Listener l(peer.io, loopback(), Peer::reset());
  l.start();
  auto [r, took] = run_probe(target_of(l), options(2000ms));
  CHECK_FALSE(r.ok);
  // The RST may reach the connect itself (a loopback connect completing just
  // as it comes), the write, or the watch: reset, or a broken pipe.
  CHECK((r.error == asio::error::connection_reset || r.error == asio::error::broken_pipe));
  CHECK(took < 1000ms);
}

TEST_CASE("probe: nothing listening fails at connect, refused", "[live]") {
  const auto port = test::free_port();
  auto [r, took] = run_probe("127.0.0.1:" + std::to_string(port), options(2000ms));
  CHECK_FALSE(r.ok);
  CHECK(r.stage == ProbeStage::connect);
  CHECK(r.error == asio::error::connection_refused);
  CHECK(took < 1000ms);
}

namespace {
// A resolver whose answer the test changes between probes (queries counted).
class MovingResolver final : public net::Resolver {
 public:
  void set(asio::ip::address a) {
    std::lock_guard lock(m_);
    answer_ = a;
  }
  int queries() const { return queries_.load(); }
  void async_resolve(const std::string& host, net::AddressFamily family,
                     const asio::any_io_executor& ex, Handler handler) override {
    ++queries_;
    std::vector<asio::ip::address> out;
    {
      std::lock_guard lock(m_);
      if (host == "np.test" && family == net::AddressFamily::ipv4) out.push_back(answer_);
    }
    asio::post(ex, [handler = std::move(handler), out] { handler({}, out); });
  }

 private:
  std::mutex m_;
  asio::ip::address answer_;
  std::atomic<int> queries_{0};
};
}  // namespace

TEST_CASE("probe: a domain next proxy is resolved on every probe (it follows new addresses)",
          "[live]") {
  Peer a, b;
  test::Listener la(a.io, loopback("127.0.0.2"), a.read_then_close());
  la.start();
  const auto port = la.endpoint().port();
  test::Listener lb(b.io, loopback("127.0.0.3", port), b.read_then_close());
  lb.start();
  auto resolver = std::make_shared<MovingResolver>();
  resolver->set(asio::ip::make_address("127.0.0.2"));
  const std::string target = "np.test:" + std::to_string(port);
  auto [r1, t1] = run_probe(target, options(2000ms, resolver));
  CHECK(r1.ok);
  CHECK(r1.peer == la.endpoint());
  resolver->set(asio::ip::make_address("127.0.0.3"));
  auto [r2, t2] = run_probe(target, options(2000ms, resolver));
  CHECK(r2.ok);
  CHECK(r2.peer == lb.endpoint());
  CHECK(la.accepted() == 1);
  CHECK(lb.accepted() == 1);
  CHECK(resolver->queries() >= 2);
  SECTION("an unknown name fails at connect") {
    auto [r3, t3] = run_probe("other.test:1", options(2000ms, resolver));
    CHECK_FALSE(r3.ok);
    CHECK(r3.stage == ProbeStage::connect);
    CHECK(r3.error);
  }
}

TEST_CASE("probe: cancelled while watching: aborted, a failure, its socket closed", "[live]") {
  Peer peer;
  test::Listener l(peer.io, loopback(), peer.hold());
  l.start();
  const auto before = test::open_fd_count();
  std::optional<ProbeResult> r;
  const auto start = Clock::now();
  {
    asio::io_context io;
    asio::cancellation_signal cancel;
    asio::co_spawn(io, probe(UpstreamAddr::parse(target_of(l), 3128, "t"), options(5000ms)),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [&](std::exception_ptr, ProbeResult got) { r = got; }));
    asio::steady_timer t(io, 100ms);
    t.async_wait([&](divert::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    io.run_for(10s);
  }
  REQUIRE(r);
  CHECK_FALSE(r->ok);
  CHECK(r->error == asio::error::operation_aborted);
  CHECK(Clock::now() - start < 2000ms);
  peer.release();  // the peer's side is in this process too
  CHECK(test::wait_until([&] { return test::open_fd_count() == before; }, 5s));
}

TEST_CASE("probe: no descriptor left open on any path", "[live]") {
  // The peers run in this process too: they are destroyed (their sockets with
  // them) before counting, so that only the probes' descriptors are compared.
  {
    Peer warm;
    test::Listener l(warm.io, loopback(), warm.read_then_close());
    l.start();
    // Warm up (lazily opened descriptors: epoll, eventfd, the resolver's).
    run_probe(target_of(l), options(200ms));
  }
  const auto before = test::open_fd_count();
  int ok = 0, failed = 0;
  {
    Peer closing, silent, resetting;
    test::Listener l1(closing.io, loopback(), closing.read_then_close());
    test::Listener l2(silent.io, loopback(), silent.hold());
    test::Listener l3(resetting.io, loopback(), Peer::reset());
    l1.start();
    l2.start();
    l3.start();
    const auto refused = "127.0.0.1:" + std::to_string(test::free_port());
    for (int i = 0; i < 5; ++i) {
      for (const auto& t : {target_of(l1), target_of(l2), target_of(l3), refused}) {
        auto [r, took] = run_probe(t, options(100ms));
        (r.ok ? ok : failed)++;
      }
    }
  }
  CHECK(ok == 10);
  CHECK(failed == 10);
  CHECK(test::open_fd_count() == before);
}

// The HealthChecker against real next proxies on loopback: the divert Receiver
// (reports the probes as health checks), HAProxy accept-proxy (accepts them,
// no error in its log), and a next proxy stopped and restarted (marked down
// and up within the bounds), stop() and destruction with probes in flight.
#include <asio.hpp>
#include <chrono>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "divert/receiver.hpp"
#include "health_check/health_checker.hpp"
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

std::string target_of(const test::Listener& l) {
  return l.endpoint().address().to_string() + ":" + std::to_string(l.endpoint().port());
}

// Transitions reported by on_change, with their time.
struct Events {
  struct Event {
    std::string target;
    bool up;
    Clock::time_point at;
  };
  std::mutex m;
  std::vector<Event> list;

  Target target(const std::string& addr) {
    return {UpstreamAddr::parse(addr, 3128, "target"), [this, addr](bool up) {
              std::lock_guard lock(m);
              list.push_back({addr, up, Clock::now()});
            }};
  }
  std::optional<Event> find(const std::string& addr, bool up) {
    std::lock_guard lock(m);
    for (auto& e : list)
      if (e.target == addr && e.up == up) return e;
    return std::nullopt;
  }
  std::size_t size() {
    std::lock_guard lock(m);
    return list.size();
  }
};

HealthCheckConfig fast(std::chrono::milliseconds interval, std::chrono::milliseconds timeout,
                       std::uint32_t rise = 2, std::uint32_t fall = 3) {
  return {.enabled = true, .interval = interval, .timeout = timeout, .rise = rise, .fall = fall};
}

}  // namespace

TEST_CASE("HealthChecker: the divert Receiver reports every probe as a health check", "[live]") {
  test::ReceiverPeer peer("127.0.0.1");
  test::IoThread checker_io;
  Events events;
  HealthChecker checker(checker_io.io().get_executor(), fast(50ms, 1000ms), {}, nullptr, nullptr);
  checker.set_targets({events.target(target_of(peer.listener))});
  REQUIRE(test::wait_until([&] { return peer.count(ServeOutcome::health_check) >= 5; }, 5s));
  checker.stop();
  // Every connection the receiver served was a health check (a LOCAL header,
  // closed cleanly), none a bad header or anything else.
  REQUIRE(test::wait_until([&] { return peer.total() == std::uint64_t(peer.listener.accepted()); },
                           5s));
  CHECK(peer.count(ServeOutcome::health_check) == peer.total());
  CHECK(events.size() == 0);  // up from the start, and stayed up
}

TEST_CASE("HealthChecker: HAProxy accept-proxy accepts the LOCAL probes, no error logged",
          "[live]") {
  auto haproxy = DIVERT_REQUIRE_TOOL("haproxy");
  if (!haproxy) return;
  test::TempDir dir;
  // HAProxy's backend: reads to EOF (HAProxy passes the probe's close on), closes.
  test::IoThread backend_io;
  test::Listener backend(backend_io, loopback(), [](tcp::socket s) {
    auto sock = std::make_shared<tcp::socket>(std::move(s));
    auto buf = std::make_shared<std::array<char, 64>>();
    auto read = std::make_shared<std::function<void()>>();
    *read = [sock, buf, read] {
      sock->async_read_some(asio::buffer(*buf),
                            [sock, buf, read](divert::error_code ec, std::size_t) {
                              if (ec) {
                                sock->close();
                                *read = nullptr;  // breaks the cycle
                                return;
                              }
                              (*read)();
                            });
    };
    (*read)();
  });
  backend.start();
  const auto fe = test::free_port();
  auto cfg =
      dir.write("h.cfg",
                "global\n  log stdout format raw local0\n"
                "defaults\n  mode tcp\n  log global\n  timeout connect 2s\n  timeout client 5s\n"
                "  timeout server 5s\n"
                "frontend fe\n  bind 127.0.0.1:" +
                    std::to_string(fe) +
                    " accept-proxy\n"
                    "  log-format \"probe ts=%ts err=%[fc_err_str] bytes=%B\"\n"
                    "  default_backend be\n"
                    "backend be\n  server s 127.0.0.1:" +
                    std::to_string(backend.endpoint().port()) + "\n");
  auto check = test::run_command({*haproxy, "-c", "-f", cfg.string()}, 10s);
  INFO(check.out);
  REQUIRE(check.status == 0);
  test::Process hp({*haproxy, "-db", "-f", cfg.string()}, dir / "out", dir / "err");
  REQUIRE(test::wait_for_port("127.0.0.1", fe));  // one plain connect: logged, not a probe
  test::IoThread checker_io;
  Events events;
  {
    HealthChecker checker(checker_io.io().get_executor(), fast(50ms, 200ms), {}, nullptr, nullptr);
    checker.set_targets({events.target("127.0.0.1:" + std::to_string(fe))});
    REQUIRE(test::wait_until([&] { return backend.accepted() >= 6; }, 10s));
  }
  // Each probe is one log line; wait for the lines of the probes seen so far.
  auto probe_lines = [&] {
    std::vector<std::string> lines;
    std::istringstream in(test::read_file(dir / "out"));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("probe ", 0) == 0) lines.push_back(line);
    return lines;
  };
  REQUIRE(test::wait_until([&] { return probe_lines().size() >= 6; }, 5s));
  auto lines = probe_lines();
  // Every probe ended normally ("--": no abort, no error). The one in flight
  // when the checker was destroyed was cut short: HAProxy may log it as a
  // client abort, and it ends last.
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO(lines[i]);
    CHECK_THAT(lines[i], Catch::Contains("err=Success"));
    if (i + 1 < lines.size()) CHECK_THAT(lines[i], Catch::Contains("ts=--"));
  }
  const auto err = test::read_file(dir / "err");
  INFO(err);
  CHECK(err.find("ALERT") == std::string::npos);
  CHECK(events.size() == 0);
}

TEST_CASE(
    "HealthChecker: a stopped next proxy is down within fall x interval + timeout, "
    "up again within rise x interval of its restart",
    "[live]") {
  test::ReceiverPeer p1("127.0.0.2"), p2("127.0.0.3"), p3("127.0.0.4");
  const auto interval = 100ms, timeout = 200ms;
  const std::uint32_t rise = 2, fall = 3;
  test::IoThread checker_io;
  Events events;
  HealthChecker checker(checker_io.io().get_executor(), fast(interval, timeout, rise, fall), {},
                        nullptr, nullptr);
  const auto t1 = target_of(p1.listener), t2 = target_of(p2.listener), t3 = target_of(p3.listener);
  checker.set_targets({events.target(t1), events.target(t2), events.target(t3)});
  REQUIRE(test::wait_until([&] {
    return p1.count(ServeOutcome::health_check) >= 2 && p2.count(ServeOutcome::health_check) >= 2 &&
           p3.count(ServeOutcome::health_check) >= 2;
  }));
  CHECK(events.size() == 0);

  const auto stopped_at = Clock::now();
  p2.listener.stop();
  REQUIRE(test::wait_until([&] { return events.find(t2, false).has_value(); }, 5s));
  const auto down = events.find(t2, false)->at - stopped_at;
  INFO("down after " << std::chrono::duration_cast<std::chrono::milliseconds>(down).count()
                     << " ms");
  CHECK(down <= fall * interval + timeout);
  CHECK(down >= (fall - 1) * interval);  // three failed probes, not one

  p2.listener.start();
  const auto restarted_at = Clock::now();
  REQUIRE(test::wait_until([&] { return events.find(t2, true).has_value(); }, 5s));
  const auto up = events.find(t2, true)->at - restarted_at;
  INFO("up after " << std::chrono::duration_cast<std::chrono::milliseconds>(up).count() << " ms");
  // The rise-th successful probe starts within rise x interval of the restart;
  // it passes as soon as the receiver closes (its FIN), at most `timeout` later.
  CHECK(up <= rise * interval + timeout);
  CHECK(up >= (rise - 1) * interval);
  // The others never moved.
  CHECK_FALSE(events.find(t1, false));
  CHECK_FALSE(events.find(t3, false));
  CHECK(events.size() == 2);
}

TEST_CASE("HealthChecker: set_targets keeps a kept target's state; stop() ends the probes",
          "[live]") {
  test::ReceiverPeer p1("127.0.0.2");
  const auto dead = "127.0.0.1:" + std::to_string(test::free_port());
  test::IoThread checker_io;
  Events events;
  HealthChecker checker(checker_io.io().get_executor(), fast(50ms, 200ms, 2, 2), {}, nullptr,
                        nullptr);
  checker.set_targets({events.target(dead)});
  REQUIRE(test::wait_until([&] { return events.find(dead, false).has_value(); }, 5s));
  // dead stays down across a reload that keeps it (no second transition,
  // no "up" from a fresh start); p1 is new and starts up.
  checker.set_targets({events.target(target_of(p1.listener)), events.target(dead)});
  REQUIRE(test::wait_until([&] { return p1.count(ServeOutcome::health_check) >= 3; }, 5s));
  CHECK(events.size() == 1);
  // Removed: no longer probed.
  checker.set_targets({events.target(dead)});
  std::this_thread::sleep_for(100ms);  // a probe in flight when removed may still land
  const auto served = p1.listener.accepted();
  std::this_thread::sleep_for(300ms);  // six intervals
  CHECK(p1.listener.accepted() == served);
  // stop(): nothing more, twice is fine.
  checker.set_targets({events.target(target_of(p1.listener))});
  REQUIRE(test::wait_until([&] { return p1.listener.accepted() > served; }, 5s));
  checker.stop();
  checker.stop();
  std::this_thread::sleep_for(50ms);  // a probe in flight at stop() is cancelled
  const auto at_stop = p1.listener.accepted();
  std::this_thread::sleep_for(300ms);
  CHECK(p1.listener.accepted() == at_stop);
  checker.set_targets({events.target(target_of(p1.listener))});  // no-op after stop()
  std::this_thread::sleep_for(150ms);
  CHECK(p1.listener.accepted() == at_stop);
  CHECK(events.size() == 1);
}

TEST_CASE("HealthChecker: destroyed with probes in flight: no callback, no descriptor left",
          "[live]") {
  test::IoThread peer_io;
  std::vector<std::shared_ptr<tcp::socket>> held;  // io thread only
  test::Listener silent(peer_io, loopback(), [&](tcp::socket s) {
    held.push_back(std::make_shared<tcp::socket>(std::move(s)));
  });
  silent.start();
  Events events;
  int before = 0;
  {
    test::IoThread checker_io;
    checker_io.run([&] {  // the reactor's own descriptors, opened on first use
      tcp::socket warm(checker_io.io());
      warm.open(tcp::v4());
      asio::steady_timer timer(checker_io.io(), 1ms);
      timer.async_wait([](divert::error_code) {});
    });
    before = test::open_fd_count();
    {
      HealthChecker checker(checker_io.io().get_executor(), fast(50ms, 10s, 1, 1), {}, nullptr,
                            nullptr);
      checker.set_targets({events.target(target_of(silent))});
      REQUIRE(test::wait_until([&] { return silent.accepted() >= 1; }, 5s));
    }  // destroyed while the probe watches (10 s timeout)
    // The probe's socket closes on the checker's strand, soon.
    peer_io.run([&] { held.clear(); });
    CHECK(test::wait_until([&] { return test::open_fd_count() == before; }, 5s));
  }
  CHECK(events.size() == 0);
}

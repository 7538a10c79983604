// Load: N concurrent connections (10,000 by default) through
//   client --CONNECT--> divert-forward-proxy --PROXY v2--> divert-next-proxy --> origin
// all on loopback, the clients and the echo origin in this process (one
// io_context), the two programs as children. Every connection is opened and
// tunnelled first; with all N open at once the programs' RSS and descriptors
// are read from /proc; then every connection sends its own payload, the origin
// echoes it, and the client checks it byte for byte. Afterwards every process
// is back to its baseline descriptor count.
//
// The test raises RLIMIT_NOFILE (soft and hard: it needs CAP_SYS_RESOURCE
// above the hard limit, as root in CI) before starting the programs, which
// inherit it. DIVERT_LOAD_CONNECTIONS overrides N (with DIVERT_LOAD_REASON
// printed), e.g. for the ASan build.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "divert/asio.hpp"
#include "programs.hpp"

using namespace divert::test;
using namespace std::chrono_literals;
using asio::ip::tcp;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

int connections_wanted() {
  const char* env = std::getenv("DIVERT_LOAD_CONNECTIONS");
  if (!env || !*env) return 10'000;
  int n = std::atoi(env);
  const char* why = std::getenv("DIVERT_LOAD_REASON");
  std::printf("load: DIVERT_LOAD_CONNECTIONS=%d (default 10000): %s\n", n,
              why && *why ? why : "no reason given");
  return n;
}

// The descriptor limit for this process and the programs it starts (which
// inherit it): raised to `want` when allowed (root / CAP_SYS_RESOURCE), else
// to the hard limit. Returns the soft limit in force.
rlim_t raise_nofile(rlim_t want) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= want) return rl.rlim_cur;
  rlimit up{want, std::max(want, rl.rlim_max)};
  if (::setrlimit(RLIMIT_NOFILE, &up) == 0) return want;
  std::printf("load: setrlimit(RLIMIT_NOFILE, %llu): %s (hard limit %llu)\n",
              static_cast<unsigned long long>(want), std::strerror(errno),
              static_cast<unsigned long long>(rl.rlim_max));
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// Each connection's payload: its index, then a pattern that depends on it.
std::string payload(int i, std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = static_cast<std::uint32_t>(i) * 2654435761u | 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  std::snprintf(s.data(), 12, "%10d\n", i);
  return s;
}

// The origin: echoes every byte until EOF, then closes.
asio::awaitable<void> echo(tcp::socket s) {
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), tuple_awaitable);
    if (n) {
      auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf, n), tuple_awaitable);
      if (wec) break;
    }
    if (ec) break;
  }
  divert::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
  s.close(ec);
}

asio::awaitable<void> origin_loop(tcp::acceptor& acc) {
  for (;;) {
    auto [ec, s] = co_await acc.async_accept(tuple_awaitable);
    if (ec) co_return;
    asio::co_spawn(acc.get_executor(), echo(std::move(s)), asio::detached);
  }
}

// The echo origin in a child process of its own (forked before this process
// starts any thread), so its N sockets do not count against our limit.
struct ForkedOrigin {
  Listener lst{4096};
  int pid = -1;
  ForkedOrigin() {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (int sig : {SIGTERM, SIGINT, SIGSEGV, SIGABRT}) ::signal(sig, SIG_DFL);
      ::signal(SIGPIPE, SIG_IGN);
      asio::io_context io(1);
      tcp::acceptor acc(io, tcp::v4(), lst.fd.fd);
      lst.fd.fd = -1;  // owned by the acceptor now
      asio::co_spawn(io, origin_loop(acc), asio::detached);
      io.run();
      ::_exit(0);
    }
  }
  ~ForkedOrigin() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

struct Counters {
  std::atomic<int> opened{0}, failed{0}, ok{0}, finished{0};
};

// One client: CONNECT through the forward proxy, wait for `release`, then send
// the payload, half-close, and compare the echo.
asio::awaitable<void> client(int i, unsigned short fp_port, unsigned short origin_port,
                             std::size_t bytes, asio::steady_timer& release, Counters& c) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket s(ex);
  bool open = false, good = false;
  auto [cec] =
      co_await s.async_connect({asio::ip::make_address("127.0.0.1"), fp_port}, tuple_awaitable);
  std::string head;
  if (!cec) {
    auto req = "CONNECT 127.0.0.1:" + std::to_string(origin_port) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(req), tuple_awaitable);
    auto [rec, r] =
        co_await asio::async_read_until(s, asio::dynamic_buffer(head), "\r\n\r\n", tuple_awaitable);
    open = !wec && !rec && head == "HTTP/1.1 200 Connection established\r\n\r\n";
  }
  if (open) {
    ++c.opened;
    co_await release.async_wait(tuple_awaitable);  // cancelled once all are open
    auto data = payload(i, bytes);
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(data), tuple_awaitable);
    divert::error_code ec;
    s.shutdown(tcp::socket::shutdown_send, ec);
    std::string back;
    auto [rec, r] = co_await asio::async_read(s, asio::dynamic_buffer(back), tuple_awaitable);
    good = !wec && rec == asio::error::eof && back == data;
  } else {
    ++c.failed;
  }
  if (good) ++c.ok;
  divert::error_code ec;
  s.close(ec);
  ++c.finished;
}

// Starts the clients, at most `in_flight` of them not yet open at any time
// (the listen backlogs stay far from full).
asio::awaitable<void> launch(int n, int in_flight, unsigned short fp_port,
                             unsigned short origin_port, std::size_t bytes,
                             asio::steady_timer& release, Counters& c) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer pause(ex);
  for (int i = 0; i < n; ++i) {
    while (i - c.opened - c.failed >= in_flight) {
      pause.expires_after(1ms);
      co_await pause.async_wait(tuple_awaitable);
    }
    asio::co_spawn(ex, client(i, fp_port, origin_port, bytes, release, c), asio::detached);
  }
}

double mib(std::uint64_t kib) {
  return static_cast<double>(kib) / 1024.0;
}

// K copies of one program sharing a port (SO_REUSEPORT), with their baselines.
struct Tier {
  explicit Tier(std::string n) : name(std::move(n)) {}
  std::string name;
  std::vector<std::unique_ptr<NextProxy>> nps;
  std::vector<std::unique_ptr<ForwardProxy>> fps;
  std::vector<int> pids;
  std::vector<FdCount> fds0;
  std::vector<std::uint64_t> rss0, rss_peak;
  std::vector<int> fds_peak;
  void add(int pid) { pids.push_back(pid); }
  void baseline() {
    for (int pid : pids) {
      fds0.push_back(settled_fd_count(pid));
      rss0.push_back(proc_rss_kib(pid));
    }
  }
  void peak() {
    for (int pid : pids) {
      fds_peak.push_back(proc_fd_count(pid));
      rss_peak.push_back(proc_rss_kib(pid));
    }
  }
  int sockets_now() const {  // over the baseline, all processes together, now
    int n = 0;
    for (std::size_t i = 0; i < pids.size(); ++i) n += proc_fd_count(pids[i]) - fds0[i].total();
    return n;
  }
  int sockets_opened() const {  // over the baseline, all processes together, at the peak
    int n = 0;
    for (std::size_t i = 0; i < pids.size(); ++i) n += fds_peak[i] - fds0[i].total();
    return n;
  }
  bool back_to_baseline() const {
    bool ok = true;
    for (std::size_t i = 0; i < pids.size(); ++i) ok = fds_back_to(pids[i], fds0[i], 10s) && ok;
    return ok;
  }
  void report(int n) const {
    std::uint64_t r0 = 0, r1 = 0;
    std::string fds;
    for (std::size_t i = 0; i < pids.size(); ++i) {
      r0 += rss0[i];
      r1 += rss_peak[i];
      auto now = proc_fds(pids[i]);
      fds += " [" + std::to_string(fds0[i].total()) + " -> " + std::to_string(fds_peak[i]) +
             " -> " + std::to_string(now.total()) + " (" + std::to_string(now.sockets) +
             " sockets, " + std::to_string(now.pipes) + " pipes)]";
    }
    std::printf("load: %s x%zu: RSS %.1f -> %.1f MiB with all open = %.2f KiB/connection; fds%s\n",
                name.c_str(), pids.size(), mib(r0), mib(r1), static_cast<double>(r1 - r0) / n,
                fds.c_str());
  }
};

}  // namespace

TEST_CASE(
    "load: 10,000 concurrent connections through forward proxy -> next proxy -> origin, "
    "byte-exact, descriptors back to baseline") {
  const int n = connections_wanted();
  REQUIRE(n > 0);
  constexpr std::size_t kBytes = 8 * 1024;
  // Per connection, in each program: two sockets, and up to two splice pipes
  // (four descriptors) while bytes are in flight; here: one client socket.
  const rlim_t want = static_cast<rlim_t>(6 * n + 4096);
  const rlim_t limit = raise_nofile(want);
  REQUIRE(limit > static_cast<rlim_t>(n) + 1024);
  // When the limit cannot be raised that far, each tier runs as K processes
  // sharing its port (SO_REUSEPORT spreads the connections), as a deployment
  // would; with the limit raised K is 1.
  const std::size_t k = (want - 4096 + (limit - 1024) - 1) / (limit - 1024);
  if (k > 1)
    std::printf(
        "load: descriptor limit %llu < %llu: %zu forward proxies and %zu next proxies "
        "(SO_REUSEPORT)\n",
        static_cast<unsigned long long>(limit), static_cast<unsigned long long>(want), k, k);
  ForkedOrigin origin;
  TempDir dir;
  Tier fps{"forward proxy"}, nps{"next proxy"};
  const auto np_port = free_port(), fp_port = free_port();
  // Several processes on one port need SO_REUSEPORT, which the programs set
  // only when asked (their default, --accept shared, refuses a second binder).
  const std::vector<std::string> share_port{"--accept", "reuseport"};
  for (std::size_t i = 0; i < k; ++i) {
    nps.nps.push_back(
        std::make_unique<NextProxy>(dir, share_port, np_port, "np" + std::to_string(i)));
    nps.add(nps.nps.back()->proc->pid());
    fps.fps.push_back(std::make_unique<ForwardProxy>(dir, loopback(np_port), share_port, fp_port,
                                                     "fp" + std::to_string(i)));
    fps.add(fps.fps.back()->proc->pid());
  }
  fps.baseline();
  nps.baseline();
  const auto origin_fds = settled_fd_count(origin.pid);
  const int own_fds = open_fd_count();

  Counters c;
  double open_s = 0, transfer_s = 0;
  int origin_fds_peak = 0;
  {
    asio::io_context io(1);
    asio::steady_timer release(io, std::chrono::steady_clock::time_point::max());
    asio::co_spawn(io, launch(n, 512, fp_port, origin.lst.port, kBytes, release, c),
                   asio::detached);
    auto t0 = Clock::now();
    std::thread runner([&] { io.run(); });
    wait_until([&] { return c.opened + c.failed == n; }, 60s);
    open_s = std::chrono::duration<double>(Clock::now() - t0).count();
    // A client counts as open when the forward proxy answers 200, which it
    // does once its header is sent; the next proxy connects to the origin
    // after reading that header. Let every tier catch up (bounded) before
    // taking the peak, which must still hold all n at once.
    wait_until(
        [&] {
          return fps.sockets_now() >= 2 * n && nps.sockets_now() >= 2 * n &&
                 proc_fd_count(origin.pid) - origin_fds.total() >= n;
        },
        30s);
    // All open at once: what each program holds now.
    fps.peak();
    nps.peak();
    origin_fds_peak = proc_fd_count(origin.pid);
    auto t1 = Clock::now();
    asio::post(io, [&] { release.cancel(); });
    wait_until([&] { return c.finished == n; }, 60s);
    transfer_s = std::chrono::duration<double>(Clock::now() - t1).count();
    asio::post(io, [&] { io.stop(); });
    runner.join();
  }
  const bool fps_back = fps.back_to_baseline(), nps_back = nps.back_to_baseline();
  const bool origin_back = fds_back_to(origin.pid, origin_fds, 10s);
  std::printf(
      "load: %d connections: all open after %.2f s, %zu bytes each way each verified "
      "in %.2f s more\n",
      n, open_s, kBytes, transfer_s);
  fps.report(n);
  nps.report(n);
  std::fflush(stdout);
  CHECK(c.opened == n);
  CHECK(c.failed == 0);
  CHECK(c.ok == n);
  CHECK(c.finished == n);
  CHECK(fps.sockets_opened() >= 2 * n);  // all n were open in every tier at once
  CHECK(nps.sockets_opened() >= 2 * n);
  CHECK(origin_fds_peak - origin_fds.total() >= n);
  CHECK(fps_back);
  CHECK(nps_back);
  CHECK(origin_back);
  CHECK(open_fd_count() == own_fds);
  // Every connection logged by a next proxy as a clean relay of the payload.
  auto np_lines = [&] {
    std::vector<std::string> all;
    for (std::size_t i = 0; i < k; ++i) {
      auto l = lines_of(read_file(dir / ("np" + std::to_string(i) + ".jsonl")));
      all.insert(all.end(), l.begin(), l.end());
    }
    return all;
  };
  REQUIRE(wait_until([&] { return np_lines().size() == std::size_t(n); }));
  int clean = 0;
  for (auto& l : np_lines())
    if (l.find("\"bytes_up\":" + std::to_string(kBytes) + ",\"bytes_down\":" +
               std::to_string(kBytes) + ",\"error\":null") != std::string::npos)
      ++clean;
  CHECK(clean == n);
  std::uint64_t tasks = 0, success = 0, errors = 0;
  for (std::size_t i = 0; i < k; ++i) {
    int st = fps.fps[i]->proc->stop();
    CHECK(WIFEXITED(st));
    auto err = read_file(dir / ("fp" + std::to_string(i) + ".err"));
    tasks += statsd_value(err, "escaper.task.total");
    success += statsd_value(err, "escaper.tcp.connect.success");
    errors += statsd_value(err, "escaper.tcp.connect.error");
  }
  CHECK(tasks == std::uint64_t(n));
  CHECK(success == std::uint64_t(n));
  CHECK(errors == 0);
}

// tests/support/live.hpp — helpers for live tests against real peers
// (haproxy, nginx, curl, openssl) on loopback: finding tools, free ports,
// temporary directories, child processes that are always reaped.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"

namespace divert::test {

// Absolute path of `tool` on PATH (also /usr/sbin, /sbin), or nullopt.
std::optional<std::string> find_tool(const std::string& tool);

// True when running under CI (env CI set and not "0"/"false").
bool in_ci();

// Use at the top of a live test:
//   auto haproxy = DIVERT_REQUIRE_TOOL("haproxy"); if (!haproxy) return;
// In CI a missing tool fails the test (CI installs it); elsewhere it is
// skipped with a reason printed as a Catch2 warning.
#define DIVERT_REQUIRE_TOOL(name)                                                   \
  ([&]() -> std::optional<std::string> {                                            \
    auto p_ = ::divert::test::find_tool(name);                                      \
    if (!p_) {                                                                      \
      if (::divert::test::in_ci()) FAIL("required tool missing in CI: " << (name)); \
      WARN("SKIPPED: " << (name) << " not installed (tests/run.sh installs it)");   \
    }                                                                               \
    return p_;                                                                      \
  }())

// A loopback TCP port that was free a moment ago (bound to port 0, then closed).
// `host` is "127.0.0.1" or "::1".
unsigned short free_port(const std::string& host = "127.0.0.1");

// A fresh directory under $TMPDIR, removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Writes `content` to path()/name and returns the full path.
  std::filesystem::path write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// A child process started with execv; killed (SIGTERM, then SIGKILL after
// 2 s) and reaped on destruction. stdout/stderr go to the given files.
class Process {
 public:
  Process(std::vector<std::string> argv, const std::filesystem::path& stdout_file,
          const std::filesystem::path& stderr_file);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  int pid() const { return pid_; }
  bool running();
  // Sends SIGTERM, waits up to `grace`, then SIGKILL; returns the wait status.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

 private:
  int pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// HAProxy in tcp mode as a hop on loopback: a frontend on 127.0.0.1:port()
// (a free port) with `bind_options` (e.g. "accept-proxy") and
// `frontend_lines` (each ending in '\n'), forwarding to 127.0.0.1:backend_port
// (timeouts: connect 2 s, client and server 10 s). The constructor returns
// once the frontend accepts connections (FAILs after 5 s); the process is
// stopped on destruction. `haproxy` is the binary (DIVERT_REQUIRE_TOOL).
class HaproxyHop {
 public:
  HaproxyHop(const std::string& haproxy, const TempDir& dir, unsigned short backend_port,
             const std::string& bind_options, const std::string& frontend_lines = "");
  unsigned short port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  unsigned short port_;
  std::optional<Process> process_;
};

// Polls until a TCP connect to host:port succeeds or `timeout` passes.
bool wait_for_port(const std::string& host, unsigned short port,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// Polls until `pred()` is true or `timeout` passes; returns the last value.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Whole content of a file ("" if it does not exist).
std::string read_file(const std::filesystem::path& p);

// Runs a command to completion with a timeout; returns {exit status, stdout}.
struct RunResult {
  int status = -1;
  std::string out;
};
RunResult run_command(const std::vector<std::string>& argv,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

// Number of open descriptors of this process (entries in /proc/self/fd).
int open_fd_count();

// Segments a TCP socket has sent so far, SYN and pure ACKs included
// (TCP_INFO's tcpi_segs_out, Linux 4.2+); -1 when it cannot be read.
long tcp_segs_out(int fd);

}  // namespace divert::test

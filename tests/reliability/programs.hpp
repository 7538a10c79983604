// tests/reliability/programs.hpp — helpers for the tests that drive the example
// programs (divert-forward-proxy, divert-next-proxy, divert-port-forward) as
// child processes on loopback: blocking sockets bounded by timeouts, the
// programs' descriptor counts and memory (/proc/<pid>), their StatsD metrics,
// a test PKI made with the openssl CLI.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/live.hpp"

namespace divert::test {

using Clock = std::chrono::steady_clock;

// Path of an example program (DIVERT_EXAMPLES_DIR/name).
std::string bin(const std::string& name);
// "127.0.0.1:<port>".
std::string loopback(unsigned short port);

// ---- small blocking socket helpers (each bounded by a timeout)

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset();
};

sockaddr_in addr4(const std::string& ip, unsigned short port);

// A listening socket on 127.0.0.1, port chosen by the kernel.
struct Listener {
  Fd fd;
  unsigned short port = 0;
  explicit Listener(int backlog = 16);
};

// A loopback listener whose thread hands each accepted connection to
// serve(fd, n) (n: 1 for the first) until the object is destroyed.
class AcceptingPeer {
 public:
  explicit AcceptingPeer(std::function<void(int fd, int n)> serve, int backlog = 128);
  ~AcceptingPeer();
  AcceptingPeer(const AcceptingPeer&) = delete;
  AcceptingPeer& operator=(const AcceptingPeer&) = delete;
  unsigned short port() const { return lst_.port; }
  int accepted() const { return accepted_.load(); }

 private:
  Listener lst_;
  std::function<void(int, int)> serve_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Connects to 127.0.0.1:port (from `src_ip` when given); an invalid Fd on
// failure, with errno in *err.
Fd connect_to(unsigned short port, const std::string& src_ip = "", int* err = nullptr);

bool send_all(int fd, const void* p, std::size_t n);
bool send_all(int fd, const std::string& s);

// Reads until EOF/error or `timeout`; `closed` tells whether the peer closed.
struct ReadResult {
  std::string data;
  bool closed = false;
  Clock::time_point when_closed{};
};
ReadResult read_until_close(int fd, std::chrono::milliseconds timeout);
// Waits up to `timeout` for bytes and reads what is there (at most 4 KiB).
std::string read_some(int fd, std::chrono::milliseconds timeout);

// The status code of an HTTP/1.x response (0: none).
int http_status(const std::string& response);

std::vector<std::string> lines_of(const std::string& s);

// Waits until the program wrote "listening" to dir/err_file.
bool wait_listening(const TempDir& dir, const std::string& err_file);

// divert-next-proxy on a loopback port (free_port() when 0; several may share
// one port: SO_REUSEPORT); stdout dir/<tag>.jsonl, stderr dir/<tag>.err (its
// metrics at exit). `allow_loopback` adds --allow-upstream 127.0.0.0/8
// --allow-upstream ::1/128 (the tests' origins are local; the next proxy
// refuses loopback upstreams by default).
struct NextProxy {
  unsigned short port;
  std::unique_ptr<Process> proc;
  explicit NextProxy(const TempDir& dir, std::vector<std::string> extra = {},
                     unsigned short port = 0, const std::string& tag = "np",
                     bool allow_loopback = true);
};

// divert-forward-proxy on a loopback port (as above) diverting to `next_proxy`;
// stdout dir/<tag>.out, stderr dir/<tag>.err (where it prints its metrics on exit).
// `allow_loopback` adds --allow 127.0.0.0/8 --allow ::1/128 (the tests' origins
// are local; the proxy refuses loopback targets by default).
struct ForwardProxy {
  unsigned short port;
  std::unique_ptr<Process> proc;
  ForwardProxy(const TempDir& dir, const std::string& next_proxy,
               std::vector<std::string> extra = {}, unsigned short port = 0,
               const std::string& tag = "fp", bool allow_loopback = true);
};

// `extra` with --allow 127.0.0.0/8 --allow ::1/128 appended.
std::vector<std::string> with_loopback_allowed(std::vector<std::string> extra);

// One HTTP exchange with the forward proxy, bounded; returns the status (0:
// none, -1: connect failed) and, when asked, the whole response.
int proxy_status(unsigned short fp_port, const std::string& request,
                 std::chrono::milliseconds bound, std::chrono::milliseconds* took = nullptr,
                 std::string* response = nullptr);

std::string get_request(unsigned short port, const std::string& host = "127.0.0.1",
                        const std::string& scheme = "http");
std::string connect_request(unsigned short port);
// "CONNECT <authority>", Host: <authority> (e.g. "[::1]:80", "name.test:443").
std::string http_connect(const std::string& authority);

// A metric from the forward proxy's final StatsD lines ("divert.<name>:<n>|c");
// ~0 when absent.
std::uint64_t statsd_value(const std::string& text, const std::string& name);

// Open descriptors of a process (entries in /proc/<pid>/fd), by kind.
struct FdCount {
  int sockets = 0, pipes = 0, other = 0;
  int total() const { return sockets + pipes + other; }
};
FdCount proc_fds(int pid);
int proc_fd_count(int pid);
// The program's descriptors once it is idle after start-up (its signal thread
// opens a few right after "listening" is printed).
FdCount settled_fd_count(int pid);
// True when, within `within`, the program is back to its `baseline`
// descriptors exactly: sockets, pipes (the relay's per-thread pipe pool is
// empty once no relay is left on a thread) and the rest.
bool fds_back_to(int pid, const FdCount& baseline,
                 std::chrono::milliseconds within = std::chrono::seconds(3));
// Resident set size of a process in KiB (VmRSS in /proc/<pid>/status; 0 if gone).
std::uint64_t proc_rss_kib(int pid);

// A CA, and certificates made with the openssl CLI in a TempDir.
class TestPki {
 public:
  explicit TestPki(std::string openssl);
  const std::string& openssl() const { return openssl_; }
  const std::filesystem::path& ca() const { return ca_; }
  // A key and a certificate signed by the CA with this subjectAltName
  // (e.g. "DNS:localhost,IP:127.0.0.1"); returns {cert, key}.
  std::pair<std::filesystem::path, std::filesystem::path> issue(const std::string& name,
                                                                const std::string& san) const;
  // A self-signed key and certificate (not from the CA).
  std::pair<std::filesystem::path, std::filesystem::path> self_signed(const std::string& name,
                                                                      const std::string& san) const;

 private:
  void run(std::vector<std::string> args) const;
  std::string openssl_;
  TempDir dir_;
  std::filesystem::path ca_;
};

}  // namespace divert::test

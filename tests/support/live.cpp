#include "support/live.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_segs_out (glibc's lacks it)
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace divert::test {

namespace fs = std::filesystem;

std::optional<std::string> find_tool(const std::string& tool) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    fs::path p = fs::path(dir) / tool;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return std::nullopt;
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  if (!ci || !*ci) return false;
  std::string v = ci;
  return v != "0" && v != "false";
}

namespace {
struct Sockaddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};
Sockaddr make_addr(const std::string& host, unsigned short port) {
  Sockaddr a;
  if (host.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) != 1)
      throw std::runtime_error("bad IPv6 literal: " + host);
    a.len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &s4->sin_addr) != 1)
      throw std::runtime_error("bad IPv4 literal: " + host);
    a.len = sizeof(sockaddr_in);
  }
  return a;
}
}  // namespace

unsigned short free_port(const std::string& host) {
  Sockaddr a = make_addr(host, 0);
  int fd = ::socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() to " + host + " failed: " + std::strerror(errno));
  }
  sockaddr_storage out{};
  socklen_t len = sizeof out;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&out), &len);
  ::close(fd);
  if (out.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&out)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&out)->sin_port);
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  fs::path root = base && *base ? base : "/tmp";
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    fs::path p = root / ("divert-test-" + std::to_string(rd()));
    if (fs::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& name, const std::string& content) const {
  fs::path p = path_ / name;
  std::ofstream f(p, std::ios::binary);
  f << content;
  return p;
}

Process::Process(std::vector<std::string> argv, const fs::path& stdout_file,
                 const fs::path& stderr_file) {
  if (argv.empty()) throw std::invalid_argument("Process: empty argv");
  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  // A CLOEXEC pipe tells the parent when exec has happened: until then the
  // child is a copy of the test (with Catch2's signal handlers), and a signal
  // sent to it would be reported as a failure of the test itself.
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) throw std::runtime_error("pipe2() failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork() failed");
  if (pid_ > 0) {
    ::close(sync[1]);
    char c;
    while (::read(sync[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::close(sync[0]);
  }
  if (pid_ == 0) {
    ::close(sync[0]);
    for (int sig : {SIGTERM, SIGINT, SIGSEGV, SIGABRT, SIGPIPE}) ::signal(sig, SIG_DFL);
    int out = ::open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    if (out >= 0) ::dup2(out, 1);
    if (err >= 0) ::dup2(err, 2);
    if (in >= 0) ::dup2(in, 0);
    ::setpgid(0, 0);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
}

bool Process::running() {
  if (reaped_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return true;
}

int Process::stop(std::chrono::milliseconds grace) {
  if (reaped_) return status_;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status_, 0);
  reaped_ = true;
  return status_;
}

Process::~Process() {
  if (pid_ > 0) stop();
}

bool wait_for_port(const std::string& host, unsigned short port,
                   std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Sockaddr a = make_addr(host, port);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len);
      ::close(fd);
      if (rc == 0) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir dir;
  RunResult r;
  {
    Process p(argv, dir / "out", dir / "err");
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (p.running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int st = p.stop(std::chrono::milliseconds(100));
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  r.out = read_file(dir / "out");
  return r;
}

int open_fd_count() {
  int n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;  // the iterator's own descriptor
}

long tcp_segs_out(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
      len < offsetof(tcp_info, tcpi_segs_out) + sizeof ti.tcpi_segs_out)
    return -1;
  return static_cast<long>(ti.tcpi_segs_out);
}

}  // namespace divert::test

#include "programs.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace divert::test {

std::string bin(const std::string& name) {
  return std::string(DIVERT_EXAMPLES_DIR) + "/" + name;
}
std::string loopback(unsigned short port) {
  return "127.0.0.1:" + std::to_string(port);
}

void Fd::reset() {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

sockaddr_in addr4(const std::string& ip, unsigned short port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

Listener::Listener(int backlog) : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  auto a = addr4("127.0.0.1", 0);
  if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd.fd, backlog) != 0)
    throw std::runtime_error("Listener: bind/listen on 127.0.0.1 failed");
  socklen_t len = sizeof a;
  ::getsockname(fd.fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
}

AcceptingPeer::AcceptingPeer(std::function<void(int, int)> serve, int backlog)
    : lst_(backlog), serve_(std::move(serve)) {
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{lst_.fd.fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      Fd c(::accept4(lst_.fd.fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (c.fd >= 0) serve_(c.fd, ++accepted_);
    }
  });
}

AcceptingPeer::~AcceptingPeer() {
  stop_ = true;
  thread_.join();
}

Fd connect_to(unsigned short port, const std::string& src_ip, int* err) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!src_ip.empty()) {
    auto a = addr4(src_ip, 0);
    ::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  auto a = addr4("127.0.0.1", port);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (err) *err = errno;
    return Fd();
  }
  if (err) *err = 0;
  return s;
}

bool send_all(int fd, const void* p, std::size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    auto w = ::send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool send_all(int fd, const std::string& s) {
  return send_all(fd, s.data(), s.size());
}

ReadResult read_until_close(int fd, std::chrono::milliseconds timeout) {
  ReadResult r;
  auto deadline = Clock::now() + timeout;
  char buf[16384];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<long long>(left, 1))) <= 0) continue;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      r.closed = true;
      r.when_closed = Clock::now();
      return r;
    }
    r.data.append(buf, static_cast<std::size_t>(n));
  }
  return r;
}

std::string read_some(int fd, std::chrono::milliseconds timeout) {
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  auto n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

int http_status(const std::string& response) {
  std::smatch m;
  if (std::regex_search(response, m, std::regex("^HTTP/1\\.[01] ([0-9]{3})")))
    return std::stoi(m[1]);
  return 0;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

bool wait_listening(const TempDir& dir, const std::string& err_file) {
  return wait_until(
      [&] { return read_file(dir / err_file).find("listening") != std::string::npos; });
}

namespace {
std::unique_ptr<Process> start_program(const TempDir& dir, std::vector<std::string> argv,
                                       const std::vector<std::string>& extra,
                                       const std::string& out, const std::string& err) {
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = std::make_unique<Process>(argv, dir / out, dir / err);
  REQUIRE(wait_listening(dir, err));
  return p;
}
}  // namespace

NextProxy::NextProxy(const TempDir& dir, std::vector<std::string> extra, unsigned short port_,
                     const std::string& tag, bool allow_loopback)
    : port(port_ ? port_ : free_port()) {
  if (allow_loopback)
    for (const char* a : {"--allow-upstream", "127.0.0.0/8", "--allow-upstream", "::1/128"})
      extra.emplace_back(a);
  proc = start_program(dir, {bin("divert-next-proxy"), "--listen", loopback(port)}, extra,
                       tag + ".jsonl", tag + ".err");
}

std::vector<std::string> with_loopback_allowed(std::vector<std::string> extra) {
  for (const char* a : {"--allow", "127.0.0.0/8", "--allow", "::1/128"}) extra.emplace_back(a);
  return extra;
}

ForwardProxy::ForwardProxy(const TempDir& dir, const std::string& next_proxy,
                           std::vector<std::string> extra, unsigned short port_,
                           const std::string& tag, bool allow_loopback)
    : port(port_ ? port_ : free_port()),
      proc(start_program(
          dir,
          {bin("divert-forward-proxy"), "--listen", loopback(port), "--next-proxy", next_proxy},
          allow_loopback ? with_loopback_allowed(std::move(extra)) : std::move(extra), tag + ".out",
          tag + ".err")) {}

int proxy_status(unsigned short fp_port, const std::string& request,
                 std::chrono::milliseconds bound, std::chrono::milliseconds* took,
                 std::string* response) {
  auto t0 = Clock::now();
  auto s = connect_to(fp_port);
  if (s.fd < 0) return -1;
  send_all(s.fd, request);
  auto r = read_until_close(s.fd, bound);
  if (took) *took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  if (response) *response = r.data;
  return http_status(r.data);
}

std::string get_request(unsigned short port, const std::string& host, const std::string& scheme) {
  return "GET " + scheme + "://" + host + ":" + std::to_string(port) +
         "/x HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
}
std::string connect_request(unsigned short port) {
  return "CONNECT 127.0.0.1:" + std::to_string(port) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

std::uint64_t statsd_value(const std::string& text, const std::string& name) {
  std::smatch m;
  if (std::regex_search(
          text, m,
          std::regex("divert\\." + std::regex_replace(name, std::regex("\\."), "\\.") +
                     ":([0-9]+)\\|c")))
    return std::stoull(m[1]);
  return ~0ull;
}

FdCount proc_fds(int pid) {
  FdCount n;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::error_code lec;
    auto target = std::filesystem::read_symlink(it->path(), lec).string();
    if (target.rfind("socket:", 0) == 0)
      ++n.sockets;
    else if (target.rfind("pipe:", 0) == 0)
      ++n.pipes;
    else
      ++n.other;
  }
  return n;
}

int proc_fd_count(int pid) {
  return proc_fds(pid).total();
}

FdCount settled_fd_count(int pid) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return proc_fds(pid);
}

bool fds_back_to(int pid, const FdCount& baseline, std::chrono::milliseconds within) {
  return wait_until(
      [&] {
        auto n = proc_fds(pid);
        return n.sockets == baseline.sockets && n.other == baseline.other &&
               n.pipes == baseline.pipes;
      },
      within);
}

std::uint64_t proc_rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

TestPki::TestPki(std::string openssl) : openssl_(std::move(openssl)), ca_(dir_ / "ca.crt") {
  run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "2", "-subj", "/CN=divert test CA", "-keyout", (dir_ / "ca.key").string(), "-out",
       ca_.string()});
}

void TestPki::run(std::vector<std::string> args) const {
  args.insert(args.begin(), openssl_);
  auto r = run_command(args);
  INFO("openssl " << args[1]);
  REQUIRE(r.status == 0);
}

std::pair<std::filesystem::path, std::filesystem::path> TestPki::issue(
    const std::string& name, const std::string& san) const {
  auto key = dir_ / (name + ".key"), csr = dir_ / (name + ".csr"), crt = dir_ / (name + ".crt");
  auto ext = dir_.write(name + ".ext", "subjectAltName=" + san + "\n");
  run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
       "/CN=" + name, "-keyout", key.string(), "-out", csr.string()});
  run({"x509", "-req", "-in", csr.string(), "-CA", ca_.string(), "-CAkey",
       (dir_ / "ca.key").string(), "-CAcreateserial", "-days", "2", "-extfile", ext.string(),
       "-out", crt.string()});
  return {crt, key};
}

std::pair<std::filesystem::path, std::filesystem::path> TestPki::self_signed(
    const std::string& name, const std::string& san) const {
  auto key = dir_ / (name + ".key"), crt = dir_ / (name + ".crt");
  run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san, "-keyout",
       key.string(), "-out", crt.string()});
  return {crt, key};
}

}  // namespace divert::test

// LIVE: our ketama picks the same backend as nginx's `hash $arg_k consistent`
// for every key, with unequal weights. nginx runs in the foreground from a
// TempDir; its backends are extra server blocks answering with their own port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "divert/select/pick_key.hpp"
#include "divert/select/upstream_selector.hpp"
#include "support/catch.hpp"
#include "support/live.hpp"

namespace {

// One blocking HTTP/1.0 GET over loopback; returns the body ("" on any failure).
std::string http_get(unsigned short port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string resp;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (int i = 0; i < 64 && resp.size() < 65536; ++i) {  // bounded
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  auto body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return {};
  return resp.substr(body + 4);
}

bool ipv6_loopback_usable() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("ketama agrees with nginx hash $arg_k consistent", "[live]") {
  auto nginx = DIVERT_REQUIRE_TOOL("nginx");
  if (!nginx) return;

  divert::test::TempDir dir;
  const unsigned short front = divert::test::free_port();
  struct Backend {
    std::string server;  // as written in the upstream block
    unsigned short port;
    int weight;
    bool v6;
  };
  std::vector<Backend> backends;
  const int weights[] = {1, 2, 3, 5};
  for (int w : weights) {
    auto p = divert::test::free_port();
    backends.push_back({fmt::format("127.0.0.1:{}", p), p, w, false});
  }
  if (ipv6_loopback_usable()) {
    auto p = divert::test::free_port("::1");
    backends.push_back({fmt::format("[::1]:{}", p), p, 2, true});
  } else {
    WARN("no IPv6 loopback: the bracketed-IPv6 backend is left out");
  }

  std::string d = dir.path().string();
  std::string conf = fmt::format(
      "daemon off;\nmaster_process off;\nworker_processes 1;\n"
      "error_log {0}/err.log;\npid {0}/nginx.pid;\n"
      "events {{ worker_connections 128; }}\n"
      "http {{\n"
      "  access_log off;\n"
      "  client_body_temp_path {0}/body; proxy_temp_path {0}/proxy;\n"
      "  fastcgi_temp_path {0}/fastcgi; uwsgi_temp_path {0}/uwsgi; scgi_temp_path {0}/scgi;\n"
      "  upstream u {{\n    hash $arg_k consistent;\n",
      d);
  for (const auto& b : backends) {
    conf += fmt::format("    server {} weight={};\n", b.server, b.weight);
  }
  conf += "  }\n";
  conf += fmt::format("  server {{ listen 127.0.0.1:{}; location / {{ proxy_pass http://u; }} }}\n",
                      front);
  for (const auto& b : backends) {
    conf += fmt::format("  server {{ listen {}; return 200 \"{}\"; }}\n", b.server, b.port);
  }
  conf += "}\n";
  auto conf_path = dir.write("nginx.conf", conf);

  divert::test::Process proc({*nginx, "-p", d, "-e", d + "/err.log", "-c", conf_path.string()},
                             dir / "stdout", dir / "stderr");
  bool up = divert::test::wait_for_port("127.0.0.1", front, std::chrono::seconds(10));
  for (const auto& b : backends) {
    up = up &&
         divert::test::wait_for_port(b.v6 ? "::1" : "127.0.0.1", b.port, std::chrono::seconds(5));
  }
  INFO("nginx.conf:\n"
       << conf << "\nerr.log:\n"
       << divert::test::read_file(dir / "err.log") << "\nstderr:\n"
       << divert::test::read_file(dir / "stderr"));
  REQUIRE(up);

  std::vector<divert::WeightedUpstreamAddr> addrs;
  for (const auto& b : backends) {
    addrs.emplace_back(divert::UpstreamAddr::parse(b.server), static_cast<double>(b.weight));
  }
  auto sel = divert::make_upstream_selector(addrs, divert::PickPolicy::ketama);
  for (std::size_t i = 0; i < backends.size(); ++i) {
    REQUIRE(sel[i].to_string() == backends[i].server);  // same node names as nginx
  }

  const std::size_t keys = 1500;
  std::map<std::string, std::size_t> per_backend;
  std::size_t agree = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (std::size_t i = 0; i < keys; ++i) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    // URL-safe keys, so nginx's $arg_k is exactly our key text.
    auto ip = asio::ip::make_address_v4(static_cast<asio::ip::address_v4::uint_type>(
        0x0A000000u + static_cast<std::uint32_t>(i * 7919u)));
    std::optional<std::string> user;
    if (i % 2) user = fmt::format("user{}", i % 50);
    auto key = divert::make_pick_key(ip, user, fmt::format("host{}.example.com", i % 113));
    auto got = http_get(front, "/?k=" + key);
    REQUIRE_FALSE(got.empty());
    auto want = std::to_string(sel.pick(key).port());
    INFO("key " << key);
    REQUIRE(got == want);
    ++agree;
    ++per_backend[got];
  }
  CHECK(agree == keys);
  // Every backend got some keys (weights are unequal, none is starved).
  CHECK(per_backend.size() == backends.size());
}

// The programs' --metrics-listen endpoint (examples/common/metrics_http.*):
// the pure request -> response mapping, then the server on loopback with a
// plain POSIX client (bounded by SO_RCVTIMEO): a scrape, an oversized head, a
// client that never finishes its head, the connection cap, a busy port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "common/metrics_http.hpp"
#include "support/catch.hpp"

using namespace divert::examples;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string body() {
  return "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n";
}

std::string respond(std::string_view head) {
  return metrics_http_response(head, body);
}

// A client socket connected to 127.0.0.1:port whose reads give up after 3 s.
class Client {
 public:
  explicit Client(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    timeval tv{3, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~Client() { ::close(fd_); }
  void send(const std::string& s) { REQUIRE(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) >= 0); }
  // Everything until EOF; `clean` false when the read timed out or failed.
  std::string read_all(bool& clean) {
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      clean = n == 0;
      return out;
    }
  }

 private:
  int fd_;
};

MetricsHttpOptions loopback_options() {
  MetricsHttpOptions o;
  o.listen = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
  return o;
}

}  // namespace

TEST_CASE("metrics http: GET /metrics gets the exposition format", "[examples][metrics_http]") {
  const std::string ok =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
      "Content-Length: 51\r\nConnection: close\r\n\r\n" +
      body();
  CHECK(body().size() == 51);
  CHECK(respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == ok);
  CHECK(respond("GET /metrics HTTP/1.0\r\n\r\n") == ok);
  CHECK(respond("GET /metrics?name[]=x HTTP/1.1\r\n\r\n") == ok);
  CHECK(respond("GET /metrics HTTP/1.1\n\n") == ok);  // bare LF line ends
  // HEAD: the same head, no body.
  CHECK(respond("HEAD /metrics HTTP/1.1\r\n\r\n") == ok.substr(0, ok.size() - body().size()));
}

TEST_CASE("metrics http: other paths, methods and malformed requests", "[examples][metrics_http]") {
  const auto status = [](std::string_view head) {
    const auto r = respond(head);
    return r.substr(0, r.find("\r\n"));
  };
  CHECK(status("GET / HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found");
  CHECK(status("GET /metricsx HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found");
  CHECK(status("GET /metrics/ HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found");
  CHECK(status("GET http://h/metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(status("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n") ==
        "HTTP/1.1 405 Method Not Allowed");
  CHECK(respond("DELETE /metrics HTTP/1.1\r\n\r\n").find("\r\nAllow: GET, HEAD\r\n") !=
        std::string::npos);
  CHECK(status("GET /metrics HTTP/2.0\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(status("GET  /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(status("GET /metrics HTTP/1.1 x\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(status("GET\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(status("G(T /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(status(std::string("GET /metrics") + '\0' + " HTTP/1.1\r\n\r\n") ==
        "HTTP/1.1 404 Not Found");
  CHECK(status("\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  // Every reply closes and says how long its body is; render is not called.
  bool called = false;
  const auto r = metrics_http_response("GET /x HTTP/1.1\r\n\r\n", [&] {
    called = true;
    return std::string();
  });
  CHECK_FALSE(called);
  CHECK(r.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(r.find("\r\nContent-Length: 24\r\nConnection: close\r\n\r\nnot found: try /metrics\n") !=
        std::string::npos);
  const auto failing = metrics_http_response("GET /metrics HTTP/1.1\r\n\r\n", []() -> std::string {
    throw std::runtime_error("no snapshot");
  });
  CHECK(failing.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
  CHECK(metrics_http_too_large().rfind("HTTP/1.1 431 ", 0) == 0);
}

TEST_CASE("metrics http: the server answers a scrape and closes", "[examples][metrics_http]") {
  std::atomic<int> renders{0};
  MetricsHttpServer server(loopback_options(), [&] {
    ++renders;
    return body();
  });
  const auto port = server.local_endpoint().port();
  REQUIRE(port != 0);
  for (int i = 0; i < 3; ++i) {
    Client c(port);
    c.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    bool clean = false;
    const auto reply = c.read_all(clean);
    CHECK(clean);  // the server closed: Connection: close
    CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(reply.size() >= body().size());
    CHECK(reply.substr(reply.size() - body().size()) == body());
  }
  CHECK(renders == 3);
  // A head sent in small pieces is read whole.
  Client c(port);
  for (const char* piece : {"GET /met", "rics HTTP/1.1\r", "\nHost: x\r\n", "\r\n"}) {
    c.send(piece);
    std::this_thread::sleep_for(10ms);
  }
  bool clean = false;
  CHECK(c.read_all(clean).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(clean);
}

TEST_CASE("metrics http: bounded head size and read time, capped connections",
          "[examples][metrics_http]") {
  auto o = loopback_options();
  o.max_request_bytes = 1024;
  o.read_timeout = 300ms;
  o.max_connections = 2;
  std::atomic<int> renders{0};
  MetricsHttpServer server(o, [&] {
    ++renders;
    return body();
  });
  const auto port = server.local_endpoint().port();
  SECTION("a head over max_request_bytes gets 431") {
    Client c(port);
    c.send("GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a'));
    bool clean = false;
    const auto reply = c.read_all(clean);
    CHECK(reply.rfind("HTTP/1.1 431 ", 0) == 0);
    CHECK(renders == 0);
  }
  SECTION("a head that never ends is closed after read_timeout, without a reply") {
    Client c(port);
    c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    const auto start = Clock::now();
    bool clean = false;
    CHECK(c.read_all(clean).empty());
    CHECK(clean);  // closed by the server, not our 3 s read timeout
    CHECK(Clock::now() - start < 2s);
    CHECK(renders == 0);
  }
  SECTION("past max_connections a connection is closed at once; the next scrape works") {
    auto idle1 = std::make_unique<Client>(port);
    auto idle2 = std::make_unique<Client>(port);
    std::this_thread::sleep_for(50ms);  // both accepted
    Client third(port);
    third.send("GET /metrics HTTP/1.1\r\n\r\n");
    const auto start = Clock::now();
    bool clean = false;
    CHECK(third.read_all(clean).empty());
    CHECK(Clock::now() - start < 250ms);  // not the read timeout of an accepted one
    idle1.reset();
    idle2.reset();
    std::this_thread::sleep_for(50ms);  // their slots are freed
    Client fourth(port);
    fourth.send("GET /metrics HTTP/1.1\r\n\r\n");
    CHECK(fourth.read_all(clean).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
}

TEST_CASE("metrics http: a busy address is an error naming it", "[examples][metrics_http]") {
  MetricsHttpServer first(loopback_options(), body);
  auto o = loopback_options();
  o.listen.port(first.local_endpoint().port());
  try {
    MetricsHttpServer second(o, body);
    FAIL("bound a port already listening");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("--metrics-listen 127.0.0.1:" +
                                     std::to_string(o.listen.port())) != std::string::npos);
  }
}

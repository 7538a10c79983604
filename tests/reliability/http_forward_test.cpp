// divert-forward-proxy's HTTP core on loopback (issue 16):
//   client (curl, or a raw socket) -> divert-forward-proxy -> divert-next-proxy -> origins
// The origins here record every request they receive (line, fields, the
// SHA-256 of the body) and keep their connections open whatever the request
// says (Connection: close included), as the origin of the issue's report did:
//  * keep-alive to two origins on one client connection: each origin gets
//    only its own requests, in origin form, without Proxy-Authorization
//    (http forward with curl, and https forward);
//  * 10 MiB uploads, Content-Length (curl's Expect: 100-continue) and chunked,
//    through http and https forward: the origin's SHA-256 matches;
//  * response framings (chunked, Content-Length, close-delimited, HEAD, 204,
//    304), each followed by another request that succeeds;
//  * request smuggling shapes: 400, and no connection to the next proxy.
#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "programs.hpp"

using namespace divert::test;
using namespace std::chrono_literals;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

using Fields = std::vector<std::pair<std::string, std::string>>;

std::string field(const Fields& fields, std::string_view name) {
  for (auto& [k, v] : fields)
    if (iequals(k, name)) return v;
  return {};
}
bool has_field(const Fields& fields, std::string_view name) {
  return std::any_of(fields.begin(), fields.end(), [&](auto& f) { return iequals(f.first, name); });
}

// Header fields as http-parser hands them over, in pieces.
struct FieldCollector {
  Fields fields;
  bool last_was_value = false;
  void name(const char* at, std::size_t n) {
    if (fields.empty() || last_was_value) fields.emplace_back();
    fields.back().first.append(at, n);
    last_was_value = false;
  }
  void value(const char* at, std::size_t n) {
    fields.back().second.append(at, n);
    last_was_value = true;
  }
};

class Sha256 {
 public:
  Sha256() { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const char* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string hex() {
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    std::string out;
    char two[3];
    for (unsigned i = 0; i < len; ++i) {
      std::snprintf(two, sizeof two, "%02x", md[i]);
      out += two;
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_ = EVP_MD_CTX_new();
};

// ------------------------------------------------------------ the origin

// A request as an origin received it.
struct Received {
  int connection = 0;  // the origin's connection number (1 for the first)
  std::string method, target;
  Fields fields;
  std::uint64_t body_bytes = 0;
  std::string body_sha256;
};

// One side of a connection, plain or TLS (server side).
struct Io {
  int fd = -1;
  SSL* ssl = nullptr;
  ~Io() {
    if (ssl) SSL_free(ssl);
  }
  // Bytes read (> 0), 0 when nothing came within timeout_ms, -1 at the end.
  long read(char* buf, std::size_t n, int timeout_ms) {
    if (!(ssl && SSL_pending(ssl) > 0)) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return 0;
    }
    if (ssl) {
      int r = SSL_read(ssl, buf, static_cast<int>(n));
      if (r > 0) return r;
      return SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    auto r = ::recv(fd, buf, n, 0);
    return r > 0 ? r : -1;
  }
  bool write(std::string_view s) {
    if (!ssl) return send_all(fd, s.data(), s.size());
    while (!s.empty()) {
      int w = SSL_write(ssl, s.data(), static_cast<int>(s.size()));
      if (w <= 0) return false;
      s.remove_prefix(static_cast<std::size_t>(w));
    }
    return true;
  }
};

// An HTTP/1.1 origin on 127.0.0.1 (TLS when given a context) answering
// "<name> <method> <target> <body bytes> <body sha256>\n". The target picks the
// response's framing: /chunked, /close (close-delimited), /204, /304 (with a
// Content-Length and no body, as RFC 9110 allows); a HEAD request gets a
// Content-Length of 1000 and no body; /drop-second closes the connection
// without an answer when it is not the connection's first request; anything
// else gets Content-Length. It sends
// 100 Continue to Expect: 100-continue, and keeps every connection open
// (except after /close) whatever the request's Connection field says.
class Origin {
 public:
  explicit Origin(std::string name, SSL_CTX* tls = nullptr)
      : name_(std::move(name)), tls_(tls), thread_([this] { accept_loop(); }) {}
  ~Origin() {
    stop_ = true;
    thread_.join();
    std::vector<std::thread> conns;
    {
      std::lock_guard lock(mu_);
      conns.swap(conn_threads_);
    }
    for (auto& t : conns) t.join();
  }
  Origin(const Origin&) = delete;
  Origin& operator=(const Origin&) = delete;

  unsigned short port() const { return lst_.port; }
  int connections() const { return accepted_.load(); }
  std::vector<Received> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // The targets received, in order ("GET /first", ...).
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (auto& r : requests()) out.push_back(r.method + " " + r.target);
    return out;
  }

 private:
  struct Parse {
    Received req;
    FieldCollector fields;
    Sha256 sha;
    bool headers_done = false, message_done = false;
  };

  void accept_loop() {
    while (!stop_) {
      pollfd p{lst_.fd.fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(lst_.fd.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int n = ++accepted_;
      std::lock_guard lock(mu_);
      conn_threads_.emplace_back([this, fd, n] { serve(fd, n); });
    }
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings s = [] {
      http_parser_settings s{};
      s.on_url = [](http_parser* p, const char* at, std::size_t n) {
        static_cast<Parse*>(p->data)->req.target.append(at, n);
        return 0;
      };
      s.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
        auto& st = *static_cast<Parse*>(p->data);
        if (!st.headers_done) st.fields.name(at, n);  // (trailer fields are not kept)
        return 0;
      };
      s.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
        auto& st = *static_cast<Parse*>(p->data);
        if (!st.headers_done) st.fields.value(at, n);
        return 0;
      };
      s.on_headers_complete = [](http_parser* p) {
        auto& st = *static_cast<Parse*>(p->data);
        st.headers_done = true;
        st.req.method = http_method_str(static_cast<http_method>(p->method));
        http_parser_pause(p, 1);
        return 0;
      };
      s.on_body = [](http_parser* p, const char* at, std::size_t n) {
        auto& st = *static_cast<Parse*>(p->data);
        st.sha.update(at, n);
        st.req.body_bytes += n;
        return 0;
      };
      s.on_message_complete = [](http_parser* p) {
        static_cast<Parse*>(p->data)->message_done = true;
        http_parser_pause(p, 1);
        return 0;
      };
      return s;
    }();
    return s;
  }

  // Answers one request (the connection's index-th, from 1); false when the
  // connection is to be closed.
  bool respond(Io& io, const Received& r, int index) {
    // An origin closing a kept-alive connection just as the next request arrives.
    if (r.target.rfind("/drop-second", 0) == 0 && index > 1) return false;
    std::string summary = name_ + " " + r.method + " " + r.target + " " +
                          std::to_string(r.body_bytes) + " " + r.body_sha256 + "\n";
    auto length = [](const std::string& body) {
      return "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    };
    if (r.method == "HEAD") return io.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    if (r.target.rfind("/chunked", 0) == 0) {
      auto half = summary.size() / 2;
      char size1[24], size2[24];
      std::snprintf(size1, sizeof size1, "%zx", half);
      std::snprintf(size2, sizeof size2, "%zx", summary.size() - half);
      return io.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(size1) +
                      "\r\n" + summary.substr(0, half) + "\r\n" + size2 + "\r\n" +
                      summary.substr(half) + "\r\n0\r\n\r\n");
    }
    if (r.target.rfind("/close", 0) == 0) {
      io.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + summary);
      return false;
    }
    if (r.target.rfind("/204", 0) == 0) return io.write("HTTP/1.1 204 No Content\r\n\r\n");
    if (r.target.rfind("/304", 0) == 0)
      return io.write("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 100\r\n\r\n");
    return io.write("HTTP/1.1 200 OK\r\n" + length(summary));
  }

  void serve(int raw_fd, int n) {
    Fd fd(raw_fd);
    Io io{fd.fd};
    if (tls_) {
      timeval tv{5, 0};
      ::setsockopt(fd.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      io.ssl = SSL_new(tls_);
      SSL_set_fd(io.ssl, fd.fd);
      if (SSL_accept(io.ssl) != 1) return;
    }
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    auto st = std::make_unique<Parse>();
    parser.data = st.get();
    char buf[64 * 1024];
    int served = 0;
    auto deadline = Clock::now() + 60s;
    while (!stop_ && Clock::now() < deadline) {
      long got = io.read(buf, sizeof buf, 50);
      if (got == 0) continue;
      if (got < 0) return;
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(got)) {
        off += http_parser_execute(&parser, &settings(), buf + off,
                                   static_cast<std::size_t>(got) - off);
        auto err = HTTP_PARSER_ERRNO(&parser);
        if (err != HPE_OK && err != HPE_PAUSED) return;  // garbage: close
        http_parser_pause(&parser, 0);
        if (st->headers_done && !st->message_done &&
            iequals(field(st->fields.fields, "Expect"), "100-continue") && !sent_continue_) {
          io.write("HTTP/1.1 100 Continue\r\n\r\n");
          sent_continue_ = true;
        }
        if (st->message_done) {
          sent_continue_ = false;
          st->req.connection = n;
          st->req.body_sha256 = st->sha.hex();
          st->req.fields = st->fields.fields;
          {
            std::lock_guard lock(mu_);
            requests_.push_back(st->req);
          }
          bool keep = respond(io, st->req, ++served);
          if (!keep) {
            if (io.ssl) SSL_shutdown(io.ssl);
            ::shutdown(fd.fd, SHUT_WR);
            return;
          }
          st = std::make_unique<Parse>();
          http_parser_init(&parser, HTTP_REQUEST);  // open again, whatever Connection said
          parser.data = st.get();
        }
      }
    }
  }

  std::string name_;
  SSL_CTX* tls_;
  Listener lst_{64};
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  bool sent_continue_ = false;  // touched by one connection thread at a time in these tests
  mutable std::mutex mu_;
  std::vector<Received> requests_;
  std::vector<std::thread> conn_threads_;
  std::thread thread_;
};

// A server-side TLS context with this certificate and key.
struct ServerTls {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ServerTls(const std::filesystem::path& cert, const std::filesystem::path& key) {
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1);
  }
  ~ServerTls() { SSL_CTX_free(ctx); }
  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;
};

// ------------------------------------------------------------ a raw client

struct Response {
  int status = 0;
  Fields fields;
  std::string body;
  bool complete = false;
};

// One client connection to the proxy; responses read with http-parser.
class Client {
 public:
  explicit Client(unsigned short port) : fd_(connect_to(port)) { REQUIRE(fd_.fd >= 0); }
  void send(const std::string& s) { REQUIRE(send_all(fd_.fd, s)); }
  // The next final response (1xx skipped), within `timeout`.
  Response read_response(bool head_request = false, std::chrono::milliseconds timeout = 10s) {
    struct State {
      Response r;
      bool head_request;
      FieldCollector fields;
    } st{{}, head_request, {}};
    http_parser_settings s{};
    s.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
      static_cast<State*>(p->data)->fields.name(at, n);
      return 0;
    };
    s.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
      static_cast<State*>(p->data)->fields.value(at, n);
      return 0;
    };
    s.on_headers_complete = [](http_parser* p) {
      auto& st = *static_cast<State*>(p->data);
      st.r.status = p->status_code;
      return st.head_request || p->status_code / 100 == 1 || p->status_code == 204 ||
                     p->status_code == 304
                 ? 1
                 : 0;
    };
    s.on_body = [](http_parser* p, const char* at, std::size_t n) {
      static_cast<State*>(p->data)->r.body.append(at, n);
      return 0;
    };
    s.on_message_complete = [](http_parser* p) {
      auto& st = *static_cast<State*>(p->data);
      if (st.r.status / 100 == 1) {  // interim: start over for the final one
        st.r = Response{};
        st.fields = FieldCollector{};
      } else {
        st.r.complete = true;
        st.r.fields = std::move(st.fields.fields);
        http_parser_pause(p, 1);
      }
      return 0;
    };
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &st;
    auto deadline = Clock::now() + timeout;
    while (!st.r.complete && Clock::now() < deadline) {
      if (!buf_.empty()) {
        auto used = http_parser_execute(&p, &s, buf_.data(), buf_.size());
        buf_.erase(0, used);
        auto err = HTTP_PARSER_ERRNO(&p);
        if (err == HPE_PAUSED || st.r.complete) break;
        if (err != HPE_OK) break;
      }
      char chunk[65536];
      pollfd pf{fd_.fd, POLLIN, 0};
      if (::poll(&pf, 1, 50) <= 0) continue;
      auto n = ::recv(fd_.fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        http_parser_execute(&p, &s, nullptr, 0);  // ends a close-delimited response
        closed_ = true;
        break;
      }
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
    return st.r;
  }
  // True when the proxy closes the connection within `timeout` with no more bytes.
  bool closed_by_peer(std::chrono::milliseconds timeout = 3s) {
    if (closed_) return buf_.empty();
    auto r = read_until_close(fd_.fd, timeout);
    return r.closed && r.data.empty() && buf_.empty();
  }

 private:
  Fd fd_;
  std::string buf_;
  bool closed_ = false;
};

std::string basic(const std::string& user_pass) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < user_pass.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(user_pass[i]) << 16) |
                 (static_cast<unsigned char>(user_pass[i + 1]) << 8) |
                 static_cast<unsigned char>(user_pass[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (user_pass.size() - i == 1) {
    unsigned v = static_cast<unsigned char>(user_pass[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (user_pass.size() - i == 2) {
    unsigned v = (static_cast<unsigned char>(user_pass[i]) << 16) |
                 (static_cast<unsigned char>(user_pass[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return "Basic " + out;
}

const std::string kAuth = "Proxy-Authorization: " + basic("alice:s3cret") + "\r\n";

std::string get(const std::string& url, const std::string& extra = "") {
  return "GET " + url + " HTTP/1.1\r\nHost: ignored.test\r\n" + kAuth + extra + "\r\n";
}

// The checks every forwarded request must pass at its origin.
void check_origin_form(const Received& r, const std::string& host_port) {
  INFO(r.method << " " << r.target);
  CHECK(r.target.front() == '/');  // origin form
  CHECK(field(r.fields, "Host") == host_port);
  CHECK_FALSE(has_field(r.fields, "Proxy-Authorization"));
  CHECK_FALSE(has_field(r.fields, "Proxy-Connection"));
  CHECK_FALSE(has_field(r.fields, "Connection"));
}

// The whole chain, with the forward proxy requiring alice's credentials.
struct Chain {
  TempDir dir;
  NextProxy np{dir};
  ForwardProxy fp;
  explicit Chain(std::vector<std::string> extra = {})
      : fp(dir, loopback(np.port), with_user(std::move(extra))) {}
  static std::vector<std::string> with_user(std::vector<std::string> extra) {
    extra.insert(extra.end(), {"--user", "alice:s3cret"});
    return extra;
  }
  std::string proxy_url() const { return "http://alice:s3cret@" + loopback(fp.port); }
  // Connections the next proxy saw (one JSON line each, once closed).
  std::size_t diverted() const { return lines_of(read_file(dir / "np.jsonl")).size(); }
};

std::unique_ptr<TestPki> pki_or_skip() {
  auto openssl = DIVERT_REQUIRE_TOOL("openssl");
  return openssl ? std::make_unique<TestPki>(*openssl) : nullptr;
}

// A file of `size` pseudo-random bytes in `dir`, and its SHA-256.
std::pair<std::filesystem::path, std::string> random_file(const TempDir& dir, std::size_t size) {
  std::string data(size, '\0');
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  Sha256 sha;
  sha.update(data.data(), data.size());
  return {dir.write("upload.bin", data), sha.hex()};
}

}  // namespace

// ------------------------------------------------------------ keep-alive routing

TEST_CASE(
    "http forward keep-alive: curl to two origins on one proxy connection, each gets its own") {
  auto curl = DIVERT_REQUIRE_TOOL("curl");
  if (!curl) return;
  Origin a("A"), b("B");
  Chain chain;
  auto url_a = "http://127.0.0.1:" + std::to_string(a.port());
  auto url_b = "http://localhost:" + std::to_string(b.port());
  SECTION("two origins") {
    auto r = run_command({*curl, "-sS", "--max-time", "20", "-x", chain.proxy_url(), "-w",
                          "connects=%{num_connects}\\n", url_a + "/first", url_b + "/second"});
    INFO(r.out);
    CHECK(r.status == 0);
    CHECK(r.out.find("A GET /first 0 ") != std::string::npos);
    CHECK(r.out.find("B GET /second 0 ") != std::string::npos);
    // One proxy connection: the second transfer made no new connection.
    CHECK(r.out.find("connects=1\n") != std::string::npos);
    CHECK(r.out.find("connects=0\n") != std::string::npos);
    CHECK(a.lines() == std::vector<std::string>{"GET /first"});
    CHECK(b.lines() == std::vector<std::string>{"GET /second"});
  }
  SECTION("three requests alternating between the origins") {
    auto r = run_command({*curl, "-sS", "--max-time", "20", "-x", chain.proxy_url(), "-w",
                          "connects=%{num_connects}\\n", url_a + "/first", url_b + "/second",
                          url_a + "/third"});
    INFO(r.out);
    CHECK(r.status == 0);
    CHECK(r.out.find("A GET /first 0 ") < r.out.find("B GET /second 0 "));
    CHECK(r.out.find("B GET /second 0 ") < r.out.find("A GET /third 0 "));
    CHECK(a.lines() == std::vector<std::string>{"GET /first", "GET /third"});
    CHECK(b.lines() == std::vector<std::string>{"GET /second"});
  }
  for (auto& r : a.requests()) check_origin_form(r, "127.0.0.1:" + std::to_string(a.port()));
  for (auto& r : b.requests()) check_origin_form(r, "localhost:" + std::to_string(b.port()));
}

TEST_CASE("http forward: pipelined requests to two origins in one write are each routed") {
  Origin a("A"), b("B");
  Chain chain;
  Client c(chain.fp.port);
  auto url_a = "http://127.0.0.1:" + std::to_string(a.port());
  auto url_b = "http://127.0.0.1:" + std::to_string(b.port());
  c.send(get(url_a + "/one") + get(url_b + "/two") + get(url_a + "/three"));
  auto r1 = c.read_response(), r2 = c.read_response(), r3 = c.read_response();
  CHECK(r1.body.rfind("A GET /one 0 ", 0) == 0);
  CHECK(r2.body.rfind("B GET /two 0 ", 0) == 0);
  CHECK(r3.body.rfind("A GET /three 0 ", 0) == 0);
  CHECK(a.lines() == std::vector<std::string>{"GET /one", "GET /three"});
  CHECK(b.lines() == std::vector<std::string>{"GET /two"});
  for (auto& r : a.requests()) check_origin_form(r, "127.0.0.1:" + std::to_string(a.port()));
}

TEST_CASE("http forward: an upstream connection is reused only for the same upstream and user") {
  Origin a("A");
  TempDir dir;
  NextProxy np(dir);
  ForwardProxy fp(dir, loopback(np.port), {"--user", "alice:s3cret", "--user", "bob:b0b"});
  auto url = "http://127.0.0.1:" + std::to_string(a.port());
  Client c(fp.port);
  auto bob = "Proxy-Authorization: " + basic("bob:b0b") + "\r\n";
  for (auto& req : {get(url + "/1"), get(url + "/2"),
                    "GET " + url + "/3 HTTP/1.1\r\nHost: x\r\n" + bob + "\r\n", get(url + "/4")}) {
    c.send(req);
    CHECK(c.read_response().status == 200);
  }
  auto got = a.requests();
  REQUIRE(got.size() == 4);
  CHECK(got[0].connection == got[1].connection);  // same upstream, same user: reused
  CHECK(got[2].connection != got[1].connection);  // another user: a new diverted connection
  CHECK(got[3].connection != got[2].connection);  // and back: new again
  CHECK(a.connections() == 3);
}

TEST_CASE("https forward keep-alive: two TLS origins on one proxy connection, each gets its own") {
  auto pki = pki_or_skip();
  if (!pki) return;
  auto cert = pki->issue("localhost", "DNS:localhost");
  ServerTls tls(cert.first, cert.second);
  Origin a("A", tls.ctx), b("B", tls.ctx);
  Chain chain({"--ca-file", pki->ca().string()});
  Client c(chain.fp.port);
  auto url_a = "https://localhost:" + std::to_string(a.port());
  auto url_b = "https://localhost:" + std::to_string(b.port());
  for (auto& [url, expect] :
       std::vector<std::pair<std::string, std::string>>{{url_a + "/first", "A GET /first 0 "},
                                                        {url_b + "/second", "B GET /second 0 "},
                                                        {url_a + "/third", "A GET /third 0 "},
                                                        {url_a + "/fourth", "A GET /fourth 0 "}}) {
    c.send(get(url));
    auto r = c.read_response();
    INFO(url << " -> " << r.body);
    CHECK(r.status == 200);
    CHECK(r.body.rfind(expect, 0) == 0);
  }
  CHECK(a.lines() == std::vector<std::string>{"GET /first", "GET /third", "GET /fourth"});
  CHECK(b.lines() == std::vector<std::string>{"GET /second"});
  auto got = a.requests();
  REQUIRE(got.size() == 3);
  CHECK(got[1].connection != got[0].connection);  // B was in between
  CHECK(got[2].connection == got[1].connection);  // same upstream, user, TLS name: reused
  for (auto& r : got) check_origin_form(r, "localhost:" + std::to_string(a.port()));
  for (auto& r : b.requests()) check_origin_form(r, "localhost:" + std::to_string(b.port()));
}

TEST_CASE(
    "http forward: a reused connection the origin closed meanwhile is retried for a GET only") {
  Origin a("A");
  Chain chain;
  auto url = "http://127.0.0.1:" + std::to_string(a.port());
  Client c(chain.fp.port);
  c.send(get(url + "/first"));
  CHECK(c.read_response().status == 200);
  // The origin takes the request on the kept connection and closes it
  // unanswered: no byte of the request is lost, so it goes again on a new one.
  c.send(get(url + "/drop-second"));
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body.rfind("A GET /drop-second 0 ", 0) == 0);
  CHECK(a.connections() == 2);
  // A request with a body is not sent twice: 502.
  c.send("POST " + url + "/drop-second HTTP/1.1\r\nHost: x\r\n" + kAuth +
         "Content-Length: 5\r\n\r\nhello");
  CHECK(c.read_response().status == 502);
  CHECK(a.connections() == 2);
}

TEST_CASE(
    "keep-alive: a CONNECT after forwarded requests becomes a tunnel, as on a new connection") {
  Origin a("A"), b("B");
  Chain chain;
  Client c(chain.fp.port);
  c.send(get("http://127.0.0.1:" + std::to_string(a.port()) + "/forwarded"));
  CHECK(c.read_response().body.rfind("A GET /forwarded 0 ", 0) == 0);
  c.send("CONNECT 127.0.0.1:" + std::to_string(b.port()) + " HTTP/1.1\r\nHost: x\r\n" + kAuth +
         "\r\n");
  CHECK(c.read_response(/*head_request=*/true).status == 200);  // no body follows a 200 to CONNECT
  c.send("GET /inside HTTP/1.1\r\nHost: x\r\n\r\n");            // the origin's own protocol now
  CHECK(c.read_response().body.rfind("B GET /inside 0 ", 0) == 0);
  CHECK(a.lines() == std::vector<std::string>{"GET /forwarded"});
  CHECK(b.lines() == std::vector<std::string>{"GET /inside"});
}

TEST_CASE("keep-alive: a client connection idle past --idle-timeout is closed, not before") {
  Origin a("A");
  Chain chain({"--idle-timeout", "600ms"});
  auto url = "http://127.0.0.1:" + std::to_string(a.port());
  auto fds = settled_fd_count(chain.fp.proc->pid());
  Client c(chain.fp.port);
  c.send(get(url + "/first"));
  CHECK(c.read_response().status == 200);
  auto t0 = Clock::now();
  // Still open within the timeout: another request goes through.
  std::this_thread::sleep_for(300ms);
  c.send(get(url + "/second"));
  CHECK(c.read_response().status == 200);
  t0 = Clock::now();
  CHECK(c.closed_by_peer(5s));
  auto took = Clock::now() - t0;
  CHECK(took >= 500ms);
  CHECK(took < 3s);
  // The upstream connection it kept went with it.
  CHECK(fds_back_to(chain.fp.proc->pid(), fds));
}

TEST_CASE("keep-alive: --idle-timeout 0 (never) keeps a connection and waits for a body's pieces") {
  Origin a("A");
  Chain chain({"--idle-timeout", "0"});
  auto url = "http://127.0.0.1:" + std::to_string(a.port());
  Client c(chain.fp.port);
  c.send(get(url + "/first"));
  CHECK(c.read_response().status == 200);
  std::this_thread::sleep_for(200ms);  // between requests: the connection stays open
  c.send("POST " + url + "/upload HTTP/1.1\r\nHost: x\r\n" + kAuth + "Content-Length: 5\r\n\r\nhe");
  std::this_thread::sleep_for(200ms);  // the rest of the body comes in a later read
  c.send("llo");
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body.rfind("A POST /upload 5 ", 0) == 0);
  CHECK(a.lines() == std::vector<std::string>{"GET /first", "POST /upload"});
}

TEST_CASE("keep-alive: a client that stops reading its response is closed after --idle-timeout") {
  // An origin with a response far larger than the sockets' buffers, written
  // as fast as it is taken, for 10 s at most.
  AcceptingPeer origin([](int fd, int) {
    read_some(fd, 2s);
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n");
    const std::string block(64 * 1024, 'x');
    for (auto until = Clock::now() + 10s; Clock::now() < until;) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (::send(fd, block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
          errno != EAGAIN)
        return;
    }
  });
  Chain chain({"--idle-timeout", "1s"});
  const int pid = chain.fp.proc->pid();
  auto fds = settled_fd_count(pid);
  auto c = connect_to(chain.fp.port);
  REQUIRE(c.fd >= 0);
  REQUIRE(send_all(c.fd, get("http://127.0.0.1:" + std::to_string(origin.port()) + "/big")));
  // Never read: the proxy's writes stall once the client's buffers are full.
  REQUIRE(wait_until([&] { return proc_fds(pid).sockets >= fds.sockets + 2; }, 5s));
  auto t0 = Clock::now();
  CHECK(fds_back_to(pid, fds, 6s));
  CHECK(Clock::now() - t0 < 5s);
}

TEST_CASE(
    "head timeout: --head-timeout bounds each request head, counted per request (slowloris)") {
  Origin a("A");
  Chain chain({"--head-timeout", "1s"});
  auto url = "http://127.0.0.1:" + std::to_string(a.port());
  // Sends `head` a byte every 100 ms (3 s in all) unless the proxy closes
  // first; returns how long the proxy took to close after the first byte.
  auto trickle = [](int fd, const std::string& head) {
    auto t0 = Clock::now();
    for (char ch : head) {
      if (!send_all(fd, &ch, 1)) break;
      auto r = read_until_close(fd, 100ms);
      if (r.closed) return r.when_closed - t0;
    }
    auto r = read_until_close(fd, 3s);
    return r.closed ? r.when_closed - t0 : Clock::duration::max();
  };
  const auto head = get(url + "/slow").substr(0, 30);
  SECTION("the first request") {
    auto c = connect_to(chain.fp.port);
    REQUIRE(c.fd >= 0);
    auto took = trickle(c.fd, head);
    CHECK(took >= 900ms);
    CHECK(took < 2500ms);
  }
  SECTION("a request on a kept-alive connection, after a wait longer than the head timeout") {
    Client c(chain.fp.port);
    c.send(get(url + "/first"));
    CHECK(c.read_response().status == 200);
    std::this_thread::sleep_for(1500ms);  // between requests --idle-timeout applies
    c.send(get(url + "/second"));
    CHECK(c.read_response().status == 200);
  }
  SECTION("a kept-alive connection's next head") {
    auto c = connect_to(chain.fp.port);
    REQUIRE(c.fd >= 0);
    REQUIRE(send_all(c.fd, get(url + "/first")));
    CHECK(divert::test::http_status(read_some(c.fd, 5s)) == 200);
    std::this_thread::sleep_for(1500ms);
    auto took = trickle(c.fd, head);
    CHECK(took >= 900ms);
    CHECK(took < 2500ms);
  }
  CHECK(a.lines().size() <= 2);  // no trickled request got through
}

// ------------------------------------------------------------ uploads

TEST_CASE(
    "uploads: 10 MiB POST (Expect: 100-continue) and chunked, through http and https forward") {
  auto curl = DIVERT_REQUIRE_TOOL("curl");
  auto pki = pki_or_skip();
  if (!curl || !pki) return;
  auto cert = pki->issue("localhost", "DNS:localhost");
  ServerTls tls(cert.first, cert.second);
  Origin plain("P"), secure("S", tls.ctx);
  Chain chain({"--ca-file", pki->ca().string()});
  auto [file, sha] = random_file(chain.dir, 10 << 20);
  const std::string size = std::to_string(10 << 20);
  struct Case {
    std::string name;
    std::vector<std::string> args;
    Origin* origin;
  };
  auto https_target = "https://localhost:" + std::to_string(secure.port()) + "/upload";
  auto via_proxy = std::vector<std::string>{
      "-x", chain.proxy_url(), "http://127.0.0.1:" + std::to_string(plain.port()) + "/upload"};
  // curl sends an https:// target to the proxy in absolute form when told to.
  auto https_forward =
      std::vector<std::string>{"-H", kAuth.substr(0, kAuth.size() - 2), "--request-target",
                               https_target, "http://" + loopback(chain.fp.port) + "/"};
  for (auto& c : std::vector<Case>{{"http, Content-Length", via_proxy, &plain},
                                   {"https, Content-Length", https_forward, &secure}}) {
    for (bool chunked : {false, true}) {
      // With curl's default (Expect: 100-continue for bodies over 1 MiB) and
      // without (-H "Expect:"): the body then follows the head at once and
      // must be streamed before any response byte exists.
      for (bool expect : {true, false}) {
        INFO(c.name << (chunked ? ", chunked" : "") << (expect ? ", Expect" : ", no Expect"));
        std::vector<std::string> argv{*curl,
                                      "-sS",
                                      "-v",
                                      "--stderr",
                                      "-",
                                      "--max-time",
                                      "30",
                                      "--data-binary",
                                      "@" + file.string()};
        if (chunked) argv.insert(argv.end(), {"-H", "Transfer-Encoding: chunked"});
        if (!expect) argv.insert(argv.end(), {"-H", "Expect:"});
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        auto before = c.origin->requests().size();
        auto t0 = Clock::now();
        auto r = run_command(argv, 40s);
        auto took = Clock::now() - t0;
        INFO(r.out.substr(r.out.size() > 3000 ? r.out.size() - 3000 : 0));
        CHECK(r.status == 0);
        CHECK(r.out.find(" POST /upload " + size + " " + sha + "\n") != std::string::npos);
        // The origin's 100 Continue reaches curl through the proxy.
        if (expect) CHECK(r.out.find("< HTTP/1.1 100 Continue") != std::string::npos);
        CHECK(took < 10s);
        auto got = c.origin->requests();
        REQUIRE(got.size() == before + 1);
        CHECK(got.back().body_bytes == (10u << 20));
        CHECK(got.back().body_sha256 == sha);
        CHECK(iequals(field(got.back().fields, "Expect"), expect ? "100-continue" : ""));
        CHECK(iequals(field(got.back().fields, "Transfer-Encoding"), chunked ? "chunked" : ""));
      }
    }
  }
}

// ------------------------------------------------------------ response framing

TEST_CASE("responses: each framing, then another request on the same client connection") {
  Origin a("A");
  Chain chain;
  auto url = "http://127.0.0.1:" + std::to_string(a.port());
  struct Case {
    std::string name, target, method;
    int status;
    std::string body_prefix;  // what the body starts with ("" : no body)
  };
  for (auto& k : std::vector<Case>{
           {"Content-Length", "/length", "GET", 200, "A GET /length 0 "},
           {"chunked", "/chunked", "GET", 200, "A GET /chunked 0 "},
           {"HEAD", "/head", "HEAD", 200, ""},
           {"204", "/204", "GET", 204, ""},
           {"304 with a Content-Length", "/304", "GET", 304, ""},
       }) {
    INFO(k.name);
    Client c(chain.fp.port);
    c.send(k.method + " " + url + k.target + " HTTP/1.1\r\nHost: x\r\n" + kAuth + "\r\n");
    auto r = c.read_response(k.method == "HEAD");
    CHECK(r.complete);
    CHECK(r.status == k.status);
    CHECK(r.body.rfind(k.body_prefix, 0) == 0);
    if (k.body_prefix.empty()) CHECK(r.body.empty());
    c.send(get(url + "/after"));
    auto again = c.read_response();
    CHECK(again.status == 200);
    CHECK(again.body.rfind("A GET /after 0 ", 0) == 0);
  }
  SECTION("close-delimited: the whole body, then the proxy closes; a new connection works") {
    Client c(chain.fp.port);
    c.send(get(url + "/close"));
    auto r = c.read_response();
    CHECK(r.complete);
    CHECK(r.status == 200);
    CHECK(r.body.rfind("A GET /close 0 ", 0) == 0);
    CHECK(c.closed_by_peer());
    Client d(chain.fp.port);
    d.send(get(url + "/after"));
    CHECK(d.read_response().body.rfind("A GET /after 0 ", 0) == 0);
  }
}

// ------------------------------------------------------------ smuggling

TEST_CASE("request smuggling shapes: 400 and nothing sent to the next proxy") {
  // A next proxy that only counts: no shape may reach it.
  AcceptingPeer hop([](int fd, int) { read_until_close(fd, 1s); });
  TempDir dir;
  ForwardProxy fp(dir, loopback(hop.port()));
  const std::string line = "POST http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\n";
  const std::vector<std::pair<std::string, std::string>> shapes = {
      {"TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
      {"CL and TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"two CL, different", "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
      {"two CL, equal", "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
      {"TE gzip", "Transfer-Encoding: gzip\r\n\r\n"},
      {"TE chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n\r\n"},
      {"TE chunked twice",
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"TE identity", "Transfer-Encoding: identity\r\n\r\n"},
      {"Connection: Content-Length",
       "Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"},
      {"Connection: Transfer-Encoding", "Connection: Transfer-Encoding\r\n\r\n"},
      {"Connection: Host", "Connection: close, host\r\n\r\n"},
      {"control byte in a value", "X-A: a\x01z\r\n\r\n"},
      {"DEL in a value", "X-A: a\x7fz\r\n\r\n"},
      {"lone CR in a value", "X-A: a\rX-B: z\r\n\r\n"},
      {"obs-fold", "X-A: a\r\n Content-Length: 5\r\n\r\nhello"},
      {"space before the colon", "Content-Length : 5\r\n\r\nhello"},
  };
  for (auto& [name, rest] : shapes) {
    INFO(name);
    std::string response;
    CHECK(proxy_status(fp.port, line + rest, 5s, nullptr, &response) == 400);
  }
  CHECK(proxy_status(fp.port,
                     "POST http://127.0.0.1:9/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                     5s) == 400);
  std::this_thread::sleep_for(200ms);
  CHECK(hop.accepted() == 0);
}

#include "common/http_request.hpp"
#include "support/catch.hpp"

using namespace divert::examples;
using State = RequestParser::State;

namespace {

struct Parsed {
  State state = State::head;
  int status = 0;
  std::string reason;
  RequestHead head;
  std::size_t head_length = 0;
  std::string body;      // re-framed
  std::size_t used = 0;  // bytes consumed
};

// Parses `data` as one request, fed `step` bytes at a time.
Parsed parse(std::string_view data, std::size_t step = std::string_view::npos,
             std::size_t max_head = 16 * 1024) {
  RequestParser p(max_head);
  Parsed r;
  while (r.used < data.size() && (p.state() == State::head || p.state() == State::body)) {
    auto piece = data.substr(r.used, step);
    auto n = p.feed(piece, r.body);
    r.used += n;
    if (n < piece.size()) break;
  }
  r.state = p.state();
  if (r.state == State::error) {
    r.status = p.error_status();
    r.reason = p.error_reason();
  } else if (r.state != State::head) {
    r.head = p.head();
    r.head_length = p.head_length();
  }
  return r;
}

int status(const std::string& req, std::size_t max_head = 16 * 1024) {
  auto r = parse(req, std::string_view::npos, max_head);
  return r.state == State::error ? r.status : 0;
}

}  // namespace

TEST_CASE("CONNECT request: the head ends the message, the rest is the tunnel's") {
  std::string req = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nEXTRA";
  auto r = parse(req);
  REQUIRE(r.state == State::complete);
  CHECK(r.used == req.size() - 5);
  CHECK(r.head_length == req.size() - 5);
  CHECK(r.head.kind == ProxyRequestKind::connect);
  CHECK(r.head.host == "example.com");
  CHECK(r.head.port == 443);
  CHECK(r.head.authority() == "example.com:443");
}

TEST_CASE("CONNECT to IPv6 literal") {
  auto r = parse("CONNECT [2001:DB8::1]:8443 HTTP/1.1\r\n\r\n");
  REQUIRE(r.state == State::complete);
  CHECK(r.head.host == "2001:db8::1");
  CHECK(r.head.authority() == "[2001:db8::1]:8443");
}

TEST_CASE(
    "absolute-form http and https requests go upstream in origin form, hop-by-hop fields removed") {
  auto r = parse(
      "GET http://Example.COM/a/b?x=1#frag HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: "
      "Basic eA==\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept: */*\r\nKeep-Alive: 5\r\n"
      "TE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n\r\n");
  REQUIRE(r.state == State::complete);
  CHECK(r.head.kind == ProxyRequestKind::http_forward);
  CHECK(r.head.host == "example.com");
  CHECK(r.head.port == 80);
  CHECK(r.head.path == "/a/b?x=1");
  CHECK(r.head.keep_alive);
  CHECK(r.head.origin_form_request() ==
        "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");

  r = parse("GET https://127.0.0.1:8443 HTTP/1.0\r\n\r\n");
  REQUIRE(r.state == State::complete);
  CHECK(r.head.kind == ProxyRequestKind::https_forward);
  CHECK(r.head.port == 8443);
  CHECK(r.head.path == "/");
  CHECK_FALSE(r.head.keep_alive);  // HTTP/1.0 without keep-alive
  CHECK(r.head.origin_form_request() == "GET / HTTP/1.0\r\nHost: 127.0.0.1:8443\r\n\r\n");

  r = parse("GET http://h.test/ HTTP/1.1\r\nConnection: close\r\n\r\n");
  REQUIRE(r.state == State::complete);
  CHECK_FALSE(r.head.keep_alive);
}

TEST_CASE("incomplete heads need more, byte by byte") {
  std::string req = "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n";
  for (std::size_t n = 0; n < req.size(); ++n) {
    auto r = parse(std::string_view(req).substr(0, n));
    INFO(n);
    CHECK(r.state == State::head);
    CHECK(r.used == n);
  }
}

TEST_CASE("bad requests answer the right status") {
  CHECK(status("GET /local HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET ftp://x/ HTTP/1.1\r\n\r\n") == 501);
  CHECK(status("GET http://x/ HTTP/2.0\r\n\r\n") == 505);
  CHECK(status("GET http://x/ HTTP/1.2\r\n\r\n") == 505);
  CHECK(status("CONNECT x HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("CONNECT x:0 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("CONNECT x:65536 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET http://u@x/ HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET http://x/ HTTP/1.1\r\nBad Name: v\r\n\r\n") == 400);
  CHECK(status("\x01GET") == 400);
  CHECK(status("BREW http://x/ HTTP/1.1\r\n\r\n") == 400);  // not a method http-parser knows
  CHECK(status("GET http://x/ HTTP/1.1\r\nX: " + std::string(300, 'a'), 256) == 431);
  std::string many = "GET http://x/ HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X" + std::to_string(i) + ": v\r\n";
  CHECK(status(many + "\r\n") == 431);
}

TEST_CASE("request smuggling shapes are refused with 400 (RFC 9112 6.3)") {
  const std::string get = "POST http://h.test/ HTTP/1.1\r\nHost: h.test\r\n";
  const std::vector<std::pair<std::string, std::string>> shapes = {
      {"TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"},
      {"CL and TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"},
      {"two CL, different", "Content-Length: 5\r\nContent-Length: 6\r\n"},
      {"two CL, equal", "Content-Length: 5\r\nContent-Length: 5\r\n"},
      {"CL list", "Content-Length: 5, 5\r\n"},
      {"CL not a number", "Content-Length: +5\r\n"},
      {"TE gzip only", "Transfer-Encoding: gzip\r\n"},
      {"TE chunked not last", "Transfer-Encoding: chunked, gzip\r\n"},
      {"TE chunked twice", "Transfer-Encoding: chunked, chunked\r\n"},
      {"TE chunked in two fields then gzip",
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"},
      {"TE identity", "Transfer-Encoding: identity\r\n"},
      {"TE empty", "Transfer-Encoding: \r\n"},
      {"TE with a typo", "Transfer-Encoding: chunkedx\r\n"},
      {"Connection names Content-Length",
       "Connection: close, Content-Length\r\nContent-Length: 1\r\n"},
      {"Connection names Transfer-Encoding", "Connection: transfer-encoding\r\n"},
      {"Connection names Host", "Connection: Host\r\n"},
      {"control byte in a value", "X-A: a\x01z\r\n"},
      {"DEL in a value", "X-A: a\x7fz\r\n"},
      {"NUL in a value", std::string("X-A: a\0z\r\n", 10)},
      {"lone CR in a value", "X-A: a\rz\r\n"},
      {"obs-fold", "X-A: a\r\n folded\r\n"},
      {"obs-fold with a tab", "X-A: a\r\n\tfolded\r\n"},
      {"space before the colon", "Content-Length : 5\r\n"},
  };
  for (auto& [name, fields] : shapes) {
    INFO(name);
    auto req = get + fields + "\r\nhello";
    CHECK(status(req) == 400);
    // Byte by byte too: the same answer wherever the reads end.
    auto r = parse(req, 1);
    CHECK(r.state == State::error);
    CHECK(r.status == 400);
  }
  CHECK(status("POST http://h.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") ==
        400);
  // The accepted neighbours of those shapes.
  CHECK(status(get + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == 0);
  CHECK(status(get + "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n") == 0);
  CHECK(status(get + "Content-Length: 5\r\nX-A: a\tb\r\n\r\nhello") == 0);
  CHECK(status(get + "Connection: keep-alive, x-custom\r\n\r\n") == 0);
}

TEST_CASE("Content-Length body: passed on as it arrives, the request ends after it") {
  std::string req =
      "POST http://h.test/up HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello worldGET http://next/";
  for (std::size_t step : {std::string_view::npos, std::size_t{1}, std::size_t{7}}) {
    INFO(step);
    auto r = parse(req, step);
    REQUIRE(r.state == State::complete);
    CHECK(r.body == "hello world");
    CHECK(r.used == req.find("GET"));
    REQUIRE(r.head.content_length);
    CHECK(*r.head.content_length == 11);
    CHECK(r.head.origin_form_request() ==
          "POST /up HTTP/1.1\r\nHost: h.test\r\nContent-Length: 11\r\n\r\n");
  }
  // Half a body: the rest is awaited.
  auto r = parse("POST http://h.test/ HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello");
  CHECK(r.state == State::body);
  CHECK(r.body == "hello");
}

TEST_CASE("chunked body: re-framed without extensions or trailers, the request ends after it") {
  std::string req =
      "POST http://h.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n006\r\n world\r\n0\r\nX-Trailer: dropped\r\n\r\nNEXT";
  for (std::size_t step : {std::string_view::npos, std::size_t{1}, std::size_t{3}}) {
    INFO(step);
    auto r = parse(req, step);
    REQUIRE(r.state == State::complete);
    CHECK(r.head.chunked);
    CHECK(r.used == req.size() - 4);
    CHECK(r.body == "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  }
  CHECK(status("POST http://h.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == 400);
  CHECK(status("POST http://h.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               "fffffffffffffffff\r\n") == 400);  // chunk size overflow
}

TEST_CASE("a request without a body ends with its head; a pipelined one stays unread") {
  std::string req = "GET http://a.test/1 HTTP/1.1\r\n\r\nGET http://b.test/2 HTTP/1.1\r\n\r\n";
  auto r = parse(req);
  REQUIRE(r.state == State::complete);
  CHECK(r.used == req.find("GET", 1));
  CHECK(r.body.empty());
  auto r2 = parse(std::string_view(req).substr(r.used));
  REQUIRE(r2.state == State::complete);
  CHECK(r2.head.host == "b.test");
}

TEST_CASE("Basic proxy credentials") {
  auto c = parse_basic_auth("Basic YWxpY2U6czNjcjN0");  // alice:s3cr3t
  REQUIRE(c);
  CHECK(c->first == "alice");
  CHECK(c->second == "s3cr3t");
  CHECK_FALSE(parse_basic_auth("Bearer abc"));
  CHECK_FALSE(parse_basic_auth("Basic !!!"));
  CHECK_FALSE(parse_basic_auth("Basic YWxpY2U="));  // no colon
}

// ---------------------------------------------------------------- responses

namespace {

struct Framed {
  ResponseParser::State state;
  std::size_t used;
  int status;
  bool keep_alive;
  bool interim;
};

Framed frame(std::string_view data, bool head_request = false, bool eof = false) {
  ResponseParser p(head_request);
  Framed f{};
  f.used = p.feed(data);
  if (eof && f.used == data.size()) p.feed_eof();
  f.state = p.state();
  f.status = p.status();
  f.keep_alive = p.keep_alive();
  f.interim = p.is_interim();
  return f;
}

}  // namespace

TEST_CASE("response framing: where each response ends (RFC 9112 6.3)") {
  using RS = ResponseParser::State;
  const std::string next = "HTTP/1.1 200 OK\r\n";  // bytes after the response, never consumed
  struct Case {
    std::string name, response;
    bool head_request;
  };
  for (auto& c : std::vector<Case>{
           {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false},
           {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            false},
           {"204", "HTTP/1.1 204 No Content\r\n\r\n", false},
           {"304 with a Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
            false},
           {"HEAD with a Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true},
           {"HEAD with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
       }) {
    INFO(c.name);
    auto f = frame(c.response + next, c.head_request);
    CHECK(f.state == RS::complete);
    CHECK(f.used == c.response.size());
    CHECK(f.keep_alive);
    CHECK_FALSE(f.interim);
  }
  auto interim = frame("HTTP/1.1 100 Continue\r\n\r\n" + next);
  CHECK(interim.state == RS::complete);
  CHECK(interim.interim);
  CHECK(interim.used == 25);

  // Close-delimited: only the origin's close ends it, and the connection is done.
  auto open = frame("HTTP/1.1 200 OK\r\n\r\nsome body");
  CHECK(open.state == RS::body);
  auto closed = frame("HTTP/1.1 200 OK\r\n\r\nsome body", false, true);
  CHECK(closed.state == RS::complete);
  CHECK_FALSE(closed.keep_alive);
  // Cut short: an error, not a complete response.
  CHECK(frame("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, true).state == RS::error);
  CHECK(frame("HTTP/1.1 200 OK\r\nContent-Le", false, true).state == RS::error);
  // The origin's Connection: close and HTTP/1.0 make the connection single-use.
  CHECK_FALSE(
      frame("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
  CHECK_FALSE(frame("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  // Malformed, and the smuggling shape, are errors (the client gets 502).
  CHECK(frame("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").state ==
        RS::error);
  CHECK(frame("HTTP/1.1 101 Switching Protocols\r\n\r\n").state == RS::error);
  CHECK(frame("garbage\r\n\r\n").state == RS::error);
  ResponseParser small(false, 64);
  small.feed("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a'));
  CHECK(small.state() == RS::error);
}

TEST_CASE("the same error however the reads split the bytes (found by the fuzz target)") {
  // obs-fold early in a head that is also over the limit: the first error in
  // the bytes wins, in one read as in many (one read used to say 431).
  std::string req = "GET http://a/ HTTP/1.0\r\n X:" + std::string(300, 'a') + "\r\n\r\n";
  for (std::size_t step : {std::string_view::npos, std::size_t{1}, std::size_t{8}}) {
    INFO(step);
    auto r = parse(req, step, 192);
    CHECK(r.state == State::error);
    CHECK(r.status == 400);
    CHECK(r.reason == "obsolete header line folding");
  }
  // More than 100 fields, the 101st after an obs-fold: 400 too.
  std::string many = "GET http://x/ HTTP/1.1\r\nA: 1\r\n folded\r\n";
  for (int i = 0; i < 101; ++i) many += "X" + std::to_string(i) + ": v\r\n";
  CHECK(parse(many + "\r\n").status == 400);
  CHECK(parse(many + "\r\n", 5).status == 400);
}

#include "common/http_request.hpp"
#include "support/catch.hpp"

using namespace divert::examples;
using Status = ParseResult::Status;

TEST_CASE("CONNECT request") {
  RequestHead h;
  std::string req = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nEXTRA";
  auto r = parse_request_head(req, h);
  REQUIRE(r.status == Status::complete);
  CHECK(r.head_length == req.size() - 5);
  CHECK(h.kind == ProxyRequestKind::connect);
  CHECK(h.host == "example.com");
  CHECK(h.port == 443);
  CHECK(h.authority() == "example.com:443");
}

TEST_CASE("CONNECT to IPv6 literal") {
  RequestHead h;
  auto r = parse_request_head("CONNECT [2001:DB8::1]:8443 HTTP/1.1\r\n\r\n", h);
  REQUIRE(r.status == Status::complete);
  CHECK(h.host == "2001:db8::1");
  CHECK(h.authority() == "[2001:db8::1]:8443");
}

TEST_CASE("absolute-form http and https requests") {
  RequestHead h;
  auto r = parse_request_head(
      "GET http://Example.COM/a/b?x=1#frag HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: "
      "Basic eA==\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept: */*\r\n\r\n",
      h);
  REQUIRE(r.status == Status::complete);
  CHECK(h.kind == ProxyRequestKind::http_forward);
  CHECK(h.host == "example.com");
  CHECK(h.port == 80);
  CHECK(h.path == "/a/b?x=1");
  CHECK(h.origin_form_request() ==
        "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n");

  r = parse_request_head("GET https://127.0.0.1:8443 HTTP/1.0\r\n\r\n", h);
  REQUIRE(r.status == Status::complete);
  CHECK(h.kind == ProxyRequestKind::https_forward);
  CHECK(h.port == 8443);
  CHECK(h.path == "/");
  CHECK(h.origin_form_request() == "GET / HTTP/1.0\r\nHost: 127.0.0.1:8443\r\nConnection: close\r\n\r\n");
}

TEST_CASE("incomplete heads need more, byte by byte") {
  std::string req = "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n";
  for (std::size_t n = 0; n < req.size(); ++n) {
    RequestHead h;
    auto r = parse_request_head(std::string_view(req).substr(0, n), h);
    INFO(n);
    CHECK(r.status == Status::need_more);
  }
}

TEST_CASE("bad requests answer the right status") {
  auto status = [](const std::string& req) {
    RequestHead h;
    auto r = parse_request_head(req, h, 256);
    return r.status == Status::error ? r.http_status : 0;
  };
  CHECK(status("GET /local HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET ftp://x/ HTTP/1.1\r\n\r\n") == 501);
  CHECK(status("GET http://x/ HTTP/2.0\r\n\r\n") == 505);
  CHECK(status("CONNECT x HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("CONNECT x:0 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("CONNECT x:65536 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET http://u@x/ HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET http://x/ HTTP/1.1\r\n folded\r\n\r\n") == 400);
  CHECK(status("GET http://x/ HTTP/1.1\r\nBad Name: v\r\n\r\n") == 400);
  CHECK(status("\x01GET") == 400);
  CHECK(status("GET http://x/ HTTP/1.1\r\nX: " + std::string(300, 'a')) == 431);
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

// Regressions found by the reliability work in the forward proxy's request
// parser (examples/common/http_request): control bytes in the request target.
#include "common/http_request.hpp"
#include "support/catch.hpp"

using namespace divert::examples;

TEST_CASE(
    "request target with a lone CR or another control byte is refused (no injection upstream)") {
  // Before the fix the CR went verbatim into the origin-form request line:
  // "GET /a\rX-Injected:1 HTTP/1.1" — a lenient upstream may split it into a header.
  for (std::string bad : {std::string("GET http://h.test/a\rX-Injected:1 HTTP/1.1\r\n\r\n"),
                          std::string("GET http://h.test/a\x01 HTTP/1.1\r\n\r\n"),
                          std::string("GET http://h.test/a\tb HTTP/1.1\r\n\r\n"),
                          std::string("GET http://h.test/a\x7f HTTP/1.1\r\n\r\n"),
                          std::string("GET http://h.test/a\0b HTTP/1.1\r\n\r\n", 34),
                          std::string("CONNECT h.test:443\r HTTP/1.1\r\n\r\n")}) {
    INFO(bad);
    RequestParser p;
    std::string body;
    p.feed(bad, body);
    CHECK(p.state() == RequestParser::State::error);
    CHECK(p.error_status() == 400);
  }
  RequestParser ok;
  std::string body;
  ok.feed("GET http://h.test/a%0Db?x=1 HTTP/1.1\r\nHost: h.test\r\n\r\n", body);
  REQUIRE(ok.state() == RequestParser::State::complete);
  CHECK(ok.head().origin_form_request().rfind("GET /a%0Db?x=1 HTTP/1.1\r\nHost: h.test\r\n", 0) ==
        0);
}

// Fuzz the forward proxy's request parser (examples/common/http_request, on
// http-parser 2.9): never crashes; the result does not depend on how the
// bytes are split into reads; an error carries one of the documented
// statuses; it never consumes past the request or a head past its limit; and
// what the proxy would send upstream (the origin-form head plus the
// re-framed body) is exactly one well-formed request to an independent
// http-parser with no lone CR/LF or NUL in its head — the no-smuggling
// property. ResponseParser is fed the same bytes and must not crash either.
// fuzz/CMakeLists.txt builds the parser from examples/common/http_request.cpp
// and links it here.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <http_parser.h>

#include "common/http_request.hpp"

namespace {

using namespace divert::examples;

struct Run {
  RequestParser::State state;
  std::size_t used = 0;
  std::string body;
  int status = 0;
  std::string upstream_head;
  std::size_t head_length = 0;
  bool connect = false;
};

Run run(std::string_view text, std::size_t max_head, std::size_t step) {
  RequestParser p(max_head);
  Run r;
  while (r.used < text.size() &&
         (p.state() == RequestParser::State::head || p.state() == RequestParser::State::body)) {
    auto piece = text.substr(r.used, step);
    auto n = p.feed(piece, r.body);
    if (n > piece.size()) std::abort();
    r.used += n;
    if (n < piece.size()) break;
  }
  r.state = p.state();
  if (r.state == RequestParser::State::error) {
    r.status = p.error_status();
  } else if (r.state != RequestParser::State::head) {
    r.upstream_head = p.head().origin_form_request();
    r.head_length = p.head_length();
    r.connect = p.head().kind == ProxyRequestKind::connect;
    if (p.head().kind != ProxyRequestKind::connect && p.head().host.empty()) std::abort();
    (void)p.head().authority();
    if (auto v = p.head().header("proxy-authorization")) (void)parse_basic_auth(*v);
  }
  return r;
}

// Parses what the proxy would send upstream with a fresh http-parser:
// true when it is one request, complete exactly at its end if `complete`.
bool one_request(const std::string& bytes, bool complete) {
  struct Seen {
    int messages = 0;
  } seen;
  http_parser_settings s{};
  s.on_message_complete = [](http_parser* p) {
    ++static_cast<Seen*>(p->data)->messages;
    http_parser_pause(p, 1);
    return 0;
  };
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  p.data = &seen;
  auto n = http_parser_execute(&p, &s, bytes.data(), bytes.size());
  auto err = HTTP_PARSER_ERRNO(&p);
  if (complete) return err == HPE_PAUSED && seen.messages == 1 && n == bytes.size();
  return err == HPE_OK && seen.messages == 0 && n == bytes.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First byte picks the head limit (64 bytes .. 16 KiB), the second the read
  // size (1 .. 256 bytes), the rest is what the client sent.
  std::size_t max_head = 64 + static_cast<std::size_t>(data[0]) * 64;
  std::size_t step = 1 + static_cast<std::size_t>(data[1]);
  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  auto whole = run(text, max_head, text.size() + 1);
  auto split = run(text, max_head, step);
  // The same outcome however the bytes came (how far an error got may differ).
  if (whole.state != split.state || whole.status != split.status) std::abort();
  if (whole.state != RequestParser::State::error &&
      (whole.used != split.used || whole.body != split.body ||
       whole.upstream_head != split.upstream_head || whole.head_length != split.head_length))
    std::abort();
  // Re-framing writes CRLF where the client may have sent a bare LF: at most
  // twice the bytes consumed (after an error the output is thrown away).
  if (whole.used > text.size()) std::abort();
  if (whole.state != RequestParser::State::error && whole.body.size() > 2 * whole.used)
    std::abort();

  switch (whole.state) {
    case RequestParser::State::head:
      if (whole.used != text.size() || whole.used > max_head) std::abort();
      break;
    case RequestParser::State::error:
      switch (whole.status) {
        case 400:
        case 431:
        case 501:
        case 505:
          break;
        default:
          std::abort();
      }
      break;
    case RequestParser::State::body:
    case RequestParser::State::complete: {
      if (whole.head_length == 0 || whole.head_length > whole.used || whole.head_length > max_head)
        std::abort();
      const auto& req = whole.upstream_head;
      for (std::size_t i = 0; i < req.size(); ++i) {
        if (req[i] == '\r' && (i + 1 >= req.size() || req[i + 1] != '\n')) std::abort();
        if (req[i] == '\n' && (i == 0 || req[i - 1] != '\r')) std::abort();
        if (req[i] == '\0') std::abort();
      }
      // CONNECT becomes a tunnel: no request goes upstream.
      if (!whole.connect &&
          !one_request(req + whole.body, whole.state == RequestParser::State::complete))
        std::abort();
      break;
    }
  }

  // Responses: the same bytes, any split, must not crash or overrun.
  for (bool head_request : {false, true}) {
    ResponseParser rp(head_request, max_head);
    std::size_t used = 0;
    while (used < text.size() && (rp.state() == ResponseParser::State::head ||
                                  rp.state() == ResponseParser::State::body)) {
      auto piece = text.substr(used, step);
      auto n = rp.feed(piece);
      if (n > piece.size()) std::abort();
      used += n;
      if (n < piece.size()) break;
    }
    rp.feed_eof();
    (void)rp.keep_alive();
  }
  (void)parse_basic_auth(text);
  return 0;
}

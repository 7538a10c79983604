// examples/common/http_request.hpp — the forward proxy's request-head parser.
//
// Pure and bounded: parse_request_head() looks at the bytes received so far and
// says need_more, complete (with the head's length) or error (with the HTTP
// status to answer: 400, 405, 414, 431, 501 or 505). It never reads past the end
// of the head, so bytes after it (a body, or pipelined data) stay with the caller.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace divert::examples {

enum class ProxyRequestKind {
  connect,        // CONNECT host:port  -> tcp connect
  http_forward,   // GET http://host[:port]/path  -> http forward
  https_forward,  // GET https://host[:port]/path -> https forward (TLS on our side)
};

struct RequestHead {
  ProxyRequestKind kind = ProxyRequestKind::connect;
  std::string method;
  std::string host;       // as written (IPv6 without brackets), lower-cased
  std::uint16_t port = 0; // explicit or the scheme's default
  std::string path;       // origin-form target for forwards ("/" when absent)
  int version_minor = 1;  // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent

  // First header with this name (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
  // "host:port" with IPv6 bracketed: the upstream string for 0xE0.
  std::string authority() const;
  // The request to send upstream in origin form: hop-by-hop headers removed
  // (Proxy-Authorization, Proxy-Connection, Connection and the headers it
  // names, Keep-Alive, TE, Trailer, Upgrade), Host set from the URI,
  // "Connection: close" added.
  std::string origin_form_request() const;
};

struct ParseResult {
  enum class Status { need_more, complete, error } status = Status::need_more;
  std::size_t head_length = 0;  // when complete: bytes of the head including the blank line
  int http_status = 0;          // when error
  std::string reason;           // when error
};

// Limits: the head (request line + headers) must fit in max_head bytes
// (default 16 KiB) and carry at most 100 headers.
ParseResult parse_request_head(std::string_view data, RequestHead& out,
                               std::size_t max_head = 16 * 1024);

// Decodes "Basic <base64(user:pass)>"; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> parse_basic_auth(std::string_view value);

}  // namespace divert::examples

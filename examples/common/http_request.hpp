// examples/common/http_request.hpp — the forward proxy's HTTP/1 message
// parsing: requests from clients, responses from origins.
//
// Built on nodejs/http-parser 2.9 (Debian's libhttp-parser-dev, strict: its
// lenient flags stay off) with the proxy's own checks on top (RFC 9112 §6.3:
// the request shapes that could make the proxy and the origin disagree about
// where a message ends are refused with 400 before anything is sent on).
//
// Pure and bounded: the parsers look only at the bytes they are given, keep
// no more than one head (request: 16 KiB, 100 fields; response: 64 KiB) and
// never consume past the end of one message, so bytes after it (a pipelined
// request, the data of a CONNECT tunnel) stay with the caller.
// Thread-safety: none (one parser per message, on one thread).
#pragma once

#include <cstdint>
#include <memory>
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
  std::string host;        // as written (IPv6 without brackets), lower-cased
  std::uint16_t port = 0;  // explicit or the scheme's default
  std::string path;        // origin-form target for forwards ("/" when absent)
  int version_minor = 1;   // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  bool keep_alive = true;  // the client may send another request after this one
  bool chunked = false;    // the body is chunked (Transfer-Encoding ends in chunked)
  std::optional<std::uint64_t> content_length;  // the body's length, when given

  // First header with this name (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
  // "host:port" with IPv6 bracketed: the upstream string for 0xE0.
  std::string authority() const;
  // The request head to send upstream, in origin form: hop-by-hop fields
  // removed (Connection and the fields it names, Proxy-Authorization,
  // Proxy-Connection, Keep-Alive, TE, Trailer, Upgrade), Host set from the
  // target. The framing fields (Content-Length or Transfer-Encoding) stay:
  // the body follows as RequestParser re-frames it.
  std::string origin_form_request() const;
};

// An incremental request parser: one per request.
//   RequestParser p;
//   std::string body;
//   auto used = p.feed(bytes, body);   // repeat with more bytes while state() is head or body
// Once the head is complete (state() is body or complete) head() holds it;
// the body, re-framed (Content-Length: as is; chunked: chunk sizes in plain
// hex, no chunk extensions, no trailer fields, CRLF line ends) is appended
// to `body_out`: at most twice the bytes consumed (a bare LF, which RFC 9112
// lets a recipient accept, becomes CRLF); after an error, what was appended
// is to be thrown away. feed() stops right after the end of the
// request (state() complete): bytes after it are not consumed. On error
// state() is error, with the status to answer (400, 431, 501 or 505).
class RequestParser {
 public:
  enum class State { head, body, complete, error };

  // max_head: the largest head accepted, in bytes (431 beyond).
  explicit RequestParser(std::size_t max_head = 16 * 1024);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses the next bytes from the client; returns how many were consumed.
  std::size_t feed(std::string_view data, std::string& body_out);

  State state() const;
  const RequestHead& head() const;  // once state() is body or complete
  std::size_t head_length() const;  // bytes of the head, blank line included (0 before)
  int error_status() const;         // when state() is error
  const std::string& error_reason() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses one response from an origin to find where it ends (RFC 9112 §6.3):
// Content-Length, chunked, close-delimited, and no body for 1xx, 204, 304 and
// responses to HEAD. The caller passes the bytes on unchanged. feed() stops
// right after the end of the response (state() complete); an interim (1xx)
// response is complete on its own and is_interim() says so (the final one
// follows: use a new parser).
class ResponseParser {
 public:
  enum class State { head, body, complete, error };

  // head_request: the request was HEAD. max_head: the largest head, in bytes.
  explicit ResponseParser(bool head_request, std::size_t max_head = 64 * 1024);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Parses the next bytes from the origin; returns how many were consumed.
  std::size_t feed(std::string_view data);
  // The origin closed: ends a close-delimited response (state() complete);
  // any other unfinished response is an error.
  void feed_eof();

  State state() const;
  int status() const;       // once the head is complete
  bool is_interim() const;  // a complete 1xx response
  // Once complete: the origin keeps the connection for another request
  // (HTTP/1.1 without Connection: close, or keep-alive; not close-delimited).
  bool keep_alive() const;
  bool close_delimited() const;  // the body ends when the origin closes
  const std::string& error_reason() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes "Basic <base64(user:pass)>"; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> parse_basic_auth(std::string_view value);

}  // namespace divert::examples

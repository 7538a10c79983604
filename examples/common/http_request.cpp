#include "http_request.hpp"  // sibling include: also built by fuzz/CMakeLists.txt

#include "divert/host_port.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>

#include <http_parser.h>

namespace divert::examples {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// A URI authority "host[:port]" / "[v6][:port]" (divert::split_host_port), with
// the URI's own rules on top: no bare IPv6, port 1..65535, no byte in the host
// that ends an authority or is not visible ASCII. False on bad syntax.
bool split_host_port(std::string_view a, std::string& host, std::uint16_t& port,
                     std::uint16_t default_port) {
  const auto split = divert::split_host_port(a);
  if (!split || split.parts.bare_ipv6()) return false;
  const auto h = split.parts.host;
  for (char c : h)
    if (c <= ' ' || c == '/' || c == '@' || c == '?' || c == '#' ||
        static_cast<unsigned char>(c) >= 0x7f)
      return false;
  if (!split.parts.port) {
    if (default_port == 0) return false;
    port = default_port;
  } else {
    if (*split.parts.port == 0) return false;
    port = *split.parts.port;
  }
  host = lower(h);
  return true;
}

}  // namespace

std::optional<std::string_view> RequestHead::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::string RequestHead::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string RequestHead::origin_form_request() const {
  std::vector<std::string> drop = {"proxy-authorization",
                                   "proxy-connection",
                                   "connection",
                                   "keep-alive",
                                   "te",
                                   "trailer",
                                   "upgrade"};
  if (auto conn = header("Connection")) {
    std::string_view s = *conn;
    while (!s.empty()) {
      auto comma = s.find(',');
      auto tok = s.substr(0, comma);
      while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
      while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
      if (!tok.empty()) drop.push_back(lower(tok));
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma + 1);
    }
  }
  // RFC 9112 3.2.2: a proxy replaces Host with the target URI's authority.
  bool default_port = (kind == ProxyRequestKind::http_forward && port == 80) ||
                      (kind == ProxyRequestKind::https_forward && port == 443);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string out = method + " " + path + " HTTP/1." + std::to_string(version_minor) + "\r\n" +
                    "Host: " + (default_port ? h : h + ":" + std::to_string(port)) + "\r\n";
  drop.push_back("host");
  for (auto& [k, v] : headers) {
    if (std::find(drop.begin(), drop.end(), lower(k)) != drop.end()) continue;
    out += k + ": " + v + "\r\n";
  }
  out += "\r\n";
  return out;
}

// ---------------------------------------------------------------- requests

namespace {

// Splits a comma-separated field value into its trimmed, non-empty items.
std::vector<std::string_view> list_items(std::string_view s) {
  std::vector<std::string_view> items;
  while (true) {
    auto comma = s.find(',');
    auto item = s.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) items.push_back(item);
    if (comma == std::string_view::npos) return items;
    s.remove_prefix(comma + 1);
  }
}

bool has_control_byte(std::string_view v) {
  return std::any_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// A parser's error status for an http-parser error code.
int status_for(http_errno e) {
  return e == HPE_HEADER_OVERFLOW ? 431 : 400;
}

}  // namespace

struct RequestParser::Impl {
  http_parser parser{};
  std::size_t max_head;
  State state = State::head;
  RequestHead head;
  std::string target;
  std::vector<std::pair<std::string, std::string>> fields;
  bool last_was_value = false;
  bool value_may_continue = false;  // the last value ran to the end of the fed bytes
  bool head_paused = false;         // on_headers_complete paused the parser
  std::size_t head_bytes = 0;       // bytes of the head fed so far
  std::size_t head_length = 0;
  char prev = '\0';  // the byte before the next one fed (obs-fold check)
  int error_status = 0;
  std::string error_reason;
  std::string* out = nullptr;  // where body bytes go during feed()
  const char* end = nullptr;   // end of the bytes fed to http_parser_execute()

  explicit Impl(std::size_t m) : max_head(m) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
  }
  static Impl& of(http_parser* p) { return *static_cast<Impl*>(p->data); }
  // Records an error from a callback; http-parser then stops with a callback error.
  int fail(int status, std::string reason) {
    if (error_status == 0) {
      error_status = status;
      error_reason = std::move(reason);
    }
    return -1;
  }
  void set_error(int status, std::string reason) {
    fail(status, std::move(reason));
    state = State::error;
  }
  bool analyse_head();
  bool analyse_target();

  static const http_parser_settings settings;
};

const http_parser_settings RequestParser::Impl::settings = [] {
  http_parser_settings s{};
  s.on_url = [](http_parser* p, const char* at, std::size_t n) {
    Impl::of(p).target.append(at, n);
    return 0;
  };
  s.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
    auto& self = Impl::of(p);
    if (self.state != State::head) return 0;  // a trailer field: dropped
    if (self.fields.empty() || self.last_was_value) self.fields.emplace_back();
    self.fields.back().first.append(at, n);
    self.last_was_value = false;
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
    auto& self = Impl::of(p);
    if (self.state != State::head) return 0;
    // A value that went on after its line had ended: obs-fold.
    if (self.last_was_value && !self.value_may_continue)
      return self.fail(400, "obsolete header line folding");
    self.fields.back().second.append(at, n);
    self.last_was_value = true;
    self.value_may_continue = at + n == self.end;
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) {
    auto& self = Impl::of(p);
    self.head_paused = true;
    http_parser_pause(p, 1);
    return 0;
  };
  s.on_body = [](http_parser* p, const char* at, std::size_t n) {
    Impl::of(p).out->append(at, n);
    return 0;
  };
  s.on_chunk_header = [](http_parser* p) {
    char hex[24];
    auto [end, ec] = std::to_chars(hex, hex + sizeof hex, p->content_length, 16);
    auto& out = *Impl::of(p).out;
    out.append(hex, end);
    out += "\r\n";
    return 0;
  };
  s.on_chunk_complete = [](http_parser* p) {
    *Impl::of(p).out += "\r\n";  // after a chunk's data, or ends the (dropped) trailer section
    return 0;
  };
  s.on_message_complete = [](http_parser* p) {
    Impl::of(p).state = State::complete;
    http_parser_pause(p, 1);
    return 0;
  };
  return s;
}();

// The request target: CONNECT authority, or an absolute http/https URI.
bool RequestParser::Impl::analyse_target() {
  auto& r = head;
  std::string_view t = target;
  // No space or control byte in the target: a lone CR (or any CTL) would be
  // copied into the origin-form request line sent upstream, where a lenient
  // parser may take it for a line end (request/header injection).
  if (t.empty() || std::any_of(t.begin(), t.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
      })) {
    set_error(400, "malformed request target");
    return false;
  }
  if (r.method == "CONNECT") {
    r.kind = ProxyRequestKind::connect;
    if (!split_host_port(t, r.host, r.port, 0)) {
      set_error(400, "CONNECT target must be host:port");
      return false;
    }
    return true;
  }
  std::string_view rest;
  std::uint16_t default_port;
  if (t.size() > 7 && iequals(t.substr(0, 7), "http://")) {
    r.kind = ProxyRequestKind::http_forward;
    rest = t.substr(7);
    default_port = 80;
  } else if (t.size() > 8 && iequals(t.substr(0, 8), "https://")) {
    r.kind = ProxyRequestKind::https_forward;
    rest = t.substr(8);
    default_port = 443;
  } else if (t.front() == '/') {
    set_error(400, "origin-form request to a proxy (absolute-form URI required)");
    return false;
  } else {
    set_error(501, "unsupported URI scheme");
    return false;
  }
  auto slash = rest.find_first_of("/?#");
  auto auth = rest.substr(0, slash);
  if (auth.find('@') != std::string_view::npos) {
    set_error(400, "userinfo in URI not allowed");
    return false;
  }
  if (!split_host_port(auth, r.host, r.port, default_port)) {
    set_error(400, "malformed URI authority");
    return false;
  }
  r.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (r.path.front() != '/') r.path = "/" + r.path;
  auto hash = r.path.find('#');
  if (hash != std::string::npos) r.path.resize(hash);
  return true;
}

// The checks on a complete head (RFC 9112 §6.3 and §11.2): the shapes where
// the proxy and the origin could disagree about the body's length are refused.
bool RequestParser::Impl::analyse_head() {
  auto& r = head;
  r.method = http_method_str(static_cast<http_method>(parser.method));
  if (parser.http_major != 1 || parser.http_minor > 1) {
    set_error(505, "HTTP version not supported");
    return false;
  }
  r.version_minor = parser.http_minor;
  if (fields.size() > 100) {
    set_error(431, "more than 100 header fields");
    return false;
  }
  int content_lengths = 0;
  std::vector<std::string_view> codings;
  bool transfer_encoding = false;
  for (auto& [name, value] : fields) {
    // http-parser (not strict) lets spaces into names: "Content-Length : 5"
    // would be a field it does not frame by, and one an origin may.
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
      set_error(400, "malformed header field name");
      return false;
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    if (has_control_byte(value)) {
      set_error(400, "control character in the value of " + name);
      return false;
    }
    if (iequals(name, "Content-Length")) {
      // Even two equal values are refused: nothing legitimate sends them.
      if (++content_lengths > 1) {
        set_error(400, "more than one Content-Length");
        return false;
      }
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc{} || end != value.data() + value.size()) {
        set_error(400, "malformed Content-Length");
        return false;
      }
      r.content_length = v;
    } else if (iequals(name, "Transfer-Encoding")) {
      transfer_encoding = true;
      for (auto c : list_items(value)) codings.push_back(c);
    } else if (iequals(name, "Connection")) {
      for (auto tok : list_items(value)) {
        if (iequals(tok, "Content-Length") || iequals(tok, "Transfer-Encoding") ||
            iequals(tok, "Host")) {
          set_error(400, "Connection names " + std::string(tok));
          return false;
        }
      }
    }
  }
  if (transfer_encoding) {
    if (r.content_length) {
      set_error(400, "both Transfer-Encoding and Content-Length");
      return false;
    }
    if (r.version_minor == 0) {
      set_error(400, "Transfer-Encoding in an HTTP/1.0 request");
      return false;
    }
    auto chunked = [](std::string_view c) { return iequals(c, "chunked"); };
    if (codings.empty() || !chunked(codings.back()) ||
        std::count_if(codings.begin(), codings.end(), chunked) != 1) {
      set_error(400, "Transfer-Encoding other than a final chunked");
      return false;
    }
    r.chunked = true;
  }
  // http-parser frames the body the same way, or the request goes no further.
  if (r.chunked != ((parser.flags & F_CHUNKED) != 0) ||
      (r.content_length && parser.content_length != *r.content_length)) {
    set_error(400, "message framing not understood");
    return false;
  }
  if (!analyse_target()) return false;
  r.keep_alive = http_should_keep_alive(&parser) != 0;
  r.headers = std::move(fields);
  return true;
}

RequestParser::RequestParser(std::size_t max_head) : impl_(std::make_unique<Impl>(max_head)) {}
RequestParser::~RequestParser() = default;

std::size_t RequestParser::feed(std::string_view data, std::string& body_out) {
  auto& s = *impl_;
  s.out = &body_out;
  std::size_t used = 0;
  while (used < data.size() && (s.state == State::head || s.state == State::body)) {
    auto rest = data.substr(used);
    if (s.state == State::head) {
      // Never more than the head's allowance: a head over it is refused unread.
      rest = rest.substr(0, s.max_head - s.head_bytes);
    }
    s.end = rest.data() + rest.size();
    auto n = http_parser_execute(&s.parser, &Impl::settings, rest.data(), rest.size());
    auto err = HTTP_PARSER_ERRNO(&s.parser);
    if (s.state == State::head) {
      // The head's bytes: before the pause on its end, all of them are (the
      // parser stops on the head's last LF, which it consumes on resuming).
      auto head_part = rest.substr(0, s.head_paused ? n + 1 : n);
      for (char c : head_part) {
        if (s.prev == '\n' && (c == ' ' || c == '\t') && s.error_status == 0)
          s.fail(400, "obsolete header line folding");
        s.prev = c;
      }
      s.head_bytes += head_part.size();
      // Errors come in the order of the bytes: the size last (it is the last byte's).
      if (!s.head_paused && s.head_bytes == s.max_head && s.error_status == 0 && err == HPE_OK)
        s.fail(431, "request head larger than " + std::to_string(s.max_head) + " bytes");
    }
    if (s.error_status != 0 || (err != HPE_OK && err != HPE_PAUSED)) {
      if (s.error_status == 0) s.fail(status_for(err), http_errno_description(err));
      s.state = State::error;
      break;
    }
    used += n;
    if (s.head_paused) {
      s.head_paused = false;
      if (n >= rest.size() || rest[n] != '\n') {
        s.set_error(400, "malformed end of the request head");
        break;
      }
      s.head_length = s.head_bytes;
      if (!s.analyse_head()) break;
      s.state = State::body;
      http_parser_pause(&s.parser, 0);
      continue;  // the parser consumes the head's last LF, then the body
    }
    if (s.state == State::complete) break;
    if (n < rest.size() && err != HPE_PAUSED) {  // should not happen: the parser stopped early
      s.set_error(400, "request not understood");
      break;
    }
  }
  s.out = nullptr;
  return used;
}

RequestParser::State RequestParser::state() const {
  return impl_->state;
}
const RequestHead& RequestParser::head() const {
  return impl_->head;
}
std::size_t RequestParser::head_length() const {
  return impl_->head_length;
}
int RequestParser::error_status() const {
  return impl_->error_status;
}
const std::string& RequestParser::error_reason() const {
  return impl_->error_reason;
}

// ---------------------------------------------------------------- responses

struct ResponseParser::Impl {
  http_parser parser{};
  bool head_request;
  std::size_t max_head;
  std::size_t head_bytes = 0;
  State state = State::head;
  int status = 0;
  bool keep_alive = false;
  bool close_delimited = false;
  std::string error_reason;

  Impl(bool head, std::size_t m) : head_request(head), max_head(m) {
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = this;
  }
  static Impl& of(http_parser* p) { return *static_cast<Impl*>(p->data); }
  static const http_parser_settings settings;
};

const http_parser_settings ResponseParser::Impl::settings = [] {
  http_parser_settings s{};
  s.on_headers_complete = [](http_parser* p) {
    auto& self = Impl::of(p);
    self.status = p->status_code;
    self.state = State::body;
    if (self.status == 101) {  // the proxy never passes an Upgrade on
      self.error_reason = "101 Switching Protocols to a request without Upgrade";
      return -1;
    }
    // No body (RFC 9112 §6.3 items 1 and 2), whatever the fields say.
    bool no_body =
        self.head_request || self.status / 100 == 1 || self.status == 204 || self.status == 304;
    return no_body ? 1 : 0;
  };
  s.on_message_complete = [](http_parser* p) {
    auto& self = Impl::of(p);
    self.state = State::complete;
    self.keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);
    return 0;
  };
  return s;
}();

ResponseParser::ResponseParser(bool head_request, std::size_t max_head)
    : impl_(std::make_unique<Impl>(head_request, max_head)) {}
ResponseParser::~ResponseParser() = default;

std::size_t ResponseParser::feed(std::string_view data) {
  auto& s = *impl_;
  if (s.state == State::complete || s.state == State::error) return 0;
  if (s.state == State::head) data = data.substr(0, s.max_head - s.head_bytes);
  bool in_head = s.state == State::head;
  auto n = http_parser_execute(&s.parser, &Impl::settings, data.data(), data.size());
  if (in_head) s.head_bytes += n;  // an upper bound once the head ended in these bytes
  if (s.state == State::head && s.head_bytes >= s.max_head) {
    s.state = State::error;
    s.error_reason = "response head larger than " + std::to_string(s.max_head) + " bytes";
    return n;
  }
  auto err = HTTP_PARSER_ERRNO(&s.parser);
  if (err != HPE_OK && err != HPE_PAUSED) {
    if (s.error_reason.empty()) s.error_reason = http_errno_description(err);
    s.state = State::error;
  }
  return n;
}

void ResponseParser::feed_eof() {
  auto& s = *impl_;
  if (s.state != State::head && s.state != State::body) return;
  bool was_body = s.state == State::body;
  http_parser_execute(&s.parser, &Impl::settings, nullptr, 0);
  if (s.state == State::complete && was_body) {
    s.close_delimited = true;
    s.keep_alive = false;
  } else {
    s.state = State::error;
    s.error_reason = "the origin closed before the end of the response";
  }
}

ResponseParser::State ResponseParser::state() const {
  return impl_->state;
}
int ResponseParser::status() const {
  return impl_->status;
}
bool ResponseParser::is_interim() const {
  return impl_->state == State::complete && impl_->status / 100 == 1;
}
bool ResponseParser::keep_alive() const {
  return impl_->keep_alive;
}
bool ResponseParser::close_delimited() const {
  return impl_->close_delimited;
}
const std::string& ResponseParser::error_reason() const {
  return impl_->error_reason;
}

std::optional<std::pair<std::string, std::string>> parse_basic_auth(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.size() < 6 || !iequals(value.substr(0, 6), "basic ")) return std::nullopt;
  value.remove_prefix(6);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string decoded;
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t i = 0;
  for (; i < value.size() && value[i] != '='; ++i) {
    auto pos = alphabet.find(value[i]);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  for (; i < value.size(); ++i)
    if (value[i] != '=') return std::nullopt;
  if (value.size() % 4 != 0) return std::nullopt;
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

}  // namespace divert::examples

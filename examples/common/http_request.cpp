#include "http_request.hpp"  // sibling include: also compiled into fuzz/fuzz_http_request.cpp

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace divert::examples {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
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

ParseResult error(int status, std::string reason) {
  ParseResult r;
  r.status = ParseResult::Status::error;
  r.http_status = status;
  r.reason = std::move(reason);
  return r;
}

// Splits "host[:port]" / "[v6][:port]"; false on bad syntax.
bool split_host_port(std::string_view a, std::string& host, std::uint16_t& port,
                     std::uint16_t default_port) {
  std::string_view h;
  std::string_view p;
  if (!a.empty() && a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos) return false;
    h = a.substr(1, close - 1);
    auto rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      p = rest.substr(1);
      if (p.empty()) return false;
    }
  } else {
    auto colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      if (a.find(':') != colon) return false;  // bare IPv6 is not valid in a URI authority
      h = a.substr(0, colon);
      p = a.substr(colon + 1);
      if (p.empty()) return false;
    } else {
      h = a;
    }
  }
  if (h.empty()) return false;
  for (char c : h)
    if (c <= ' ' || c == '/' || c == '@' || c == '?' || c == '#' || static_cast<unsigned char>(c) >= 0x7f)
      return false;
  if (p.empty()) {
    if (default_port == 0) return false;
    port = default_port;
  } else {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
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
  std::vector<std::string> drop = {"proxy-authorization", "proxy-connection", "connection",
                                   "keep-alive", "te", "trailer", "upgrade"};
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
  out += "Connection: close\r\n\r\n";
  return out;
}

ParseResult parse_request_head(std::string_view data, RequestHead& out, std::size_t max_head) {
  // Find the end of the head; accept bare LF line ends as RFC 9112 allows.
  std::size_t end = std::string_view::npos;
  for (std::size_t i = 0; i < data.size() && i < max_head; ++i) {
    if (data[i] != '\n') continue;
    if (i >= 1 && data[i - 1] == '\n') {
      end = i + 1;
      break;
    }
    if (i >= 2 && data[i - 1] == '\r' && data[i - 2] == '\n') {
      end = i + 1;
      break;
    }
  }
  if (end == std::string_view::npos) {
    if (data.size() >= max_head) return error(431, "request head larger than " + std::to_string(max_head) + " bytes");
    // Refuse early what can never become a request line.
    for (std::size_t i = 0; i < data.size() && data[i] != ' '; ++i)
      if (!is_tchar(data[i])) return error(400, "malformed request line");
    return {};
  }
  std::string_view head = data.substr(0, end);
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    auto nl = head.find('\n');
    auto line = head.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    head.remove_prefix(nl + 1);
  }
  // Last line is the empty terminator.
  if (lines.size() < 2) return error(400, "empty request");
  if (lines.size() - 2 > 100) return error(431, "more than 100 header fields");

  RequestHead r;
  std::string_view rl = lines[0];
  auto sp1 = rl.find(' ');
  auto sp2 = rl.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) return error(400, "malformed request line");
  r.method = std::string(rl.substr(0, sp1));
  std::string_view target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = rl.substr(sp2 + 1);
  if (r.method.empty() || !std::all_of(r.method.begin(), r.method.end(), is_tchar))
    return error(400, "malformed method");
  // No space or control byte in the target: a lone CR (or any CTL) would be
  // copied into the origin-form request line sent upstream, where a lenient
  // parser may take it for a line end (request/header injection).
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
      }))
    return error(400, "malformed request target");
  if (version == "HTTP/1.1") r.version_minor = 1;
  else if (version == "HTTP/1.0") r.version_minor = 0;
  else if (version.substr(0, 5) == "HTTP/") return error(505, "HTTP version not supported");
  else return error(400, "malformed HTTP version");

  for (std::size_t i = 1; i + 1 < lines.size(); ++i) {
    auto line = lines[i];
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      return error(400, "obsolete header line folding");
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return error(400, "malformed header field");
    auto name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return error(400, "malformed header name");
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    for (char c : value)
      if (c == '\0' || c == '\r' || c == '\n') return error(400, "invalid character in header value");
    r.headers.emplace_back(std::string(name), std::string(value));
  }

  if (r.method == "CONNECT") {
    r.kind = ProxyRequestKind::connect;
    if (!split_host_port(target, r.host, r.port, 0))
      return error(400, "CONNECT target must be host:port");
  } else {
    std::string_view rest;
    std::uint16_t default_port;
    if (target.size() > 7 && iequals(target.substr(0, 7), "http://")) {
      r.kind = ProxyRequestKind::http_forward;
      rest = target.substr(7);
      default_port = 80;
    } else if (target.size() > 8 && iequals(target.substr(0, 8), "https://")) {
      r.kind = ProxyRequestKind::https_forward;
      rest = target.substr(8);
      default_port = 443;
    } else if (!target.empty() && target.front() == '/') {
      return error(400, "origin-form request to a proxy (absolute-form URI required)");
    } else {
      return error(501, "unsupported URI scheme");
    }
    auto slash = rest.find_first_of("/?#");
    auto auth = rest.substr(0, slash);
    if (auth.find('@') != std::string_view::npos) return error(400, "userinfo in URI not allowed");
    if (!split_host_port(auth, r.host, r.port, default_port)) return error(400, "malformed URI authority");
    r.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (r.path.front() != '/') r.path = "/" + r.path;
    auto hash = r.path.find('#');
    if (hash != std::string::npos) r.path.resize(hash);
  }
  out = std::move(r);
  ParseResult ok;
  ok.status = ParseResult::Status::complete;
  ok.head_length = end;
  return ok;
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

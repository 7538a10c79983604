// Logger: silent by default, level filtering, sink arguments, lazy formatting.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "divert/logger.hpp"
#include "support/catch.hpp"

using divert::Logger;
using divert::LogLevel;

namespace {
struct Line {
  LogLevel level;
  std::string message;
  std::string task;
};
struct Counted {
  int* formats;
};
}  // namespace

template <>
struct fmt::formatter<Counted> : fmt::formatter<int> {
  template <class Ctx>
  auto format(const Counted& c, Ctx& ctx) const {
    ++*c.formats;
    return fmt::formatter<int>::format(*c.formats, ctx);
  }
};

TEST_CASE("logger: the default logger is silent", "[logger]") {
  Logger null;
  for (auto l : {LogLevel::trace, LogLevel::info, LogLevel::error, LogLevel::off}) {
    CHECK_FALSE(null.enabled(l));
  }
  int formats = 0;
  null.logf(LogLevel::error, "", "{}", Counted{&formats});
  null.log(LogLevel::error, "nothing");
  CHECK(formats == 0);
  CHECK_FALSE(divert::null_logger().enabled(LogLevel::error));
  CHECK_FALSE(Logger(divert::LogSink{}, LogLevel::trace).enabled(LogLevel::error));
}

TEST_CASE("logger: levels, task ids and lazy formatting", "[logger]") {
  std::vector<Line> lines;
  Logger log(
      [&](LogLevel l, std::string_view m, std::string_view t) {
        lines.push_back({l, std::string(m), std::string(t)});
      },
      LogLevel::info);
  CHECK(log.min_level() == LogLevel::info);
  CHECK_FALSE(log.enabled(LogLevel::debug));
  CHECK(log.enabled(LogLevel::info));
  CHECK(log.enabled(LogLevel::error));
  CHECK_FALSE(log.enabled(LogLevel::off));
  int formats = 0;
  log.logf(LogLevel::debug, "t1", "dropped {}", Counted{&formats});
  CHECK(formats == 0);
  log.logf(LogLevel::warn, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "connect to {} failed: {}",
           "10.0.0.7:3128", "refused");
  log.log(LogLevel::error, "no task");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].level == LogLevel::warn);
  CHECK(lines[0].message == "connect to 10.0.0.7:3128 failed: refused");
  CHECK(lines[0].task == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
  CHECK(lines[1].level == LogLevel::error);
  CHECK(lines[1].task.empty());
  // Copies share the sink.
  Logger copy = log;
  copy.log(LogLevel::info, "from the copy");
  CHECK(lines.size() == 3);
}

TEST_CASE("logger: level names and the stderr logger's level", "[logger]") {
  CHECK(divert::to_string(LogLevel::trace) == "trace");
  CHECK(divert::to_string(LogLevel::warn) == "warn");
  CHECK(divert::to_string(LogLevel::off) == "off");
  auto err = divert::stderr_logger(LogLevel::warn);
  CHECK(err.enabled(LogLevel::warn));
  CHECK_FALSE(err.enabled(LogLevel::info));
  err.log(LogLevel::warn, "stderr logger test line (expected in the test output)", "task-1");
}

namespace {
// Strict UTF-8 check (Unicode Table 3-7), independent of json_escape's code:
// decodes every sequence and rejects overlongs, surrogates and > U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0 || i + static_cast<std::size_t>(n) >= s.size()) return false;
    std::uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1Fu) : n == 2 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    const std::uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<std::size_t>(n) + 1;
  }
  return true;
}

// True when `escaped`, put between quotes, is one JSON string token: no raw
// control characters, no unescaped quote, only JSON's escapes.
bool json_string_body(std::string_view escaped) {
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    const auto c = static_cast<unsigned char>(escaped[i]);
    if (c < 0x20 || c == 0x7F || c == '"') return false;
    if (c != '\\') continue;
    if (++i >= escaped.size()) return false;
    const char e = escaped[i];
    if (e == 'u') {
      if (i + 4 >= escaped.size()) return false;
      for (int k = 1; k <= 4; ++k)
        if (!std::isxdigit(static_cast<unsigned char>(escaped[i + static_cast<std::size_t>(k)])))
          return false;
      i += 4;
    } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
      return false;
    }
  }
  return valid_utf8(escaped);
}
}  // namespace

TEST_CASE("json_escape: hostile bytes give valid UTF-8 JSON", "[json]") {
  using divert::json_escape;
  CHECK(json_escape("plain ascii") == "plain ascii");
  CHECK(json_escape("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(json_escape("\n\r\t") == "\\n\\r\\t");
  CHECK(json_escape(std::string("\0\x01\x1f\x7f", 4)) == "\\u0000\\u0001\\u001f\\u007f");
  CHECK(json_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(json_escape("\xc2\x85") == "\\u0085");                         // C1 control (NEL)
  CHECK(json_escape("\xe2\x80\xa8\xe2\x80\xa9") == "\\u2028\\u2029");  // line separators
  CHECK(json_escape("\xff") == "\\ufffd");
  CHECK(json_escape("\x80\x80") == "\\ufffd\\ufffd");             // stray continuations
  CHECK(json_escape("\xc3") == "\\ufffd");                        // truncated at the end
  CHECK(json_escape("\xe2\x82x") == "\\ufffdx");                  // truncated: one U+FFFD
  CHECK(json_escape("\xc0\xaf") == "\\ufffd\\ufffd");             // overlong '/'
  CHECK(json_escape("\xe0\x80\xaf") == "\\ufffd\\ufffd\\ufffd");  // overlong, 3 bytes
  CHECK(json_escape("\xed\xa0\x80") == "\\ufffd\\ufffd\\ufffd");  // a surrogate
  CHECK(json_escape("\xf4\x90\x80\x80") == "\\ufffd\\ufffd\\ufffd\\ufffd");  // > U+10FFFF
  CHECK(json_escape("\xf0\x9f\x98") == "\\ufffd");                           // truncated 4-byte
  CHECK(json_escape("al\"ice\x7f\x80\xfe\xff\xc3\xa9") ==
        "al\\\"ice\\u007f\\ufffd\\ufffd\\ufffd\xc3\xa9");

  // Every byte alone, every pair of bytes, and pseudo-random strings.
  for (unsigned a = 0; a < 256; ++a) {
    for (unsigned b = 0; b < 256; ++b) {
      const char two[] = {static_cast<char>(a), static_cast<char>(b)};
      const auto e = json_escape(std::string_view(two, 2));
      if (!json_string_body(e)) FAIL("bytes " << a << " " << b << " -> " << e);
    }
  }
  std::uint32_t x = 12345;
  for (int n = 0; n < 5000; ++n) {
    std::string s;
    for (int k = 0; k < 12; ++k) {
      x = x * 1664525u + 1013904223u;
      s.push_back(static_cast<char>(x >> 24));
    }
    if (!json_string_body(json_escape(s))) FAIL("input #" << n);
  }
}

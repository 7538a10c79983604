#include "divert/logger.hpp"

#include <unistd.h>

#include <cerrno>

namespace divert {

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      return "off";
  }
  return "unknown";
}

Logger stderr_logger(LogLevel min_level) {
  return Logger(
      [](LogLevel level, std::string_view message, std::string_view task_id) {
        std::string line = fmt::format("divert {}", to_string(level));
        if (!task_id.empty()) fmt::format_to(std::back_inserter(line), " [task {}]", task_id);
        line += ' ';
        line += message;
        line += '\n';
        // One write(2) per line: atomic with respect to other writers for
        // lines up to PIPE_BUF on pipes, and unbroken on terminals and files.
        const char* p = line.data();
        std::size_t left = line.size();
        for (int tries = 0; left > 0 && tries < 8; ++tries) {
          const ssize_t n = ::write(STDERR_FILENO, p, left);
          if (n < 0) {
            if (errno == EINTR) continue;
            return;
          }
          p += n;
          left -= static_cast<std::size_t>(n);
        }
      },
      min_level);
}

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (2-4 bytes,
// Unicode Table 3-7), or of the maximal ill-formed prefix to replace by one
// U+FFFD (negative: -1 to -3). `s` starts with a byte >= 0x80.
int utf8_sequence(std::string_view s) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = b(0);
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0)
      lo = 0xA0;  // overlong
    else if (lead == 0xED)
      hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0)
      lo = 0x90;  // overlong
    else if (lead == 0xF4)
      hi = 0x8F;  // above U+10FFFF
  } else {
    return -1;  // a continuation byte, 0xC0, 0xC1, 0xF5-0xFF
  }
  for (int i = 1; i <= need; ++i) {
    if (static_cast<std::size_t>(i) >= s.size()) return -i;
    const unsigned char c = b(static_cast<std::size_t>(i));
    const unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
    if (c < min || c > max) return -i;
  }
  return need + 1;
}

void append_u_escape(std::string& out, unsigned code) {
  fmt::format_to(std::back_inserter(out), "\\u{:04x}", code);
}

}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F)
            append_u_escape(out, c);
          else
            out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    const int n = utf8_sequence(text.substr(i));
    if (n < 0) {
      append_u_escape(out, 0xFFFD);
      i += static_cast<std::size_t>(-n);
      continue;
    }
    const auto b1 = static_cast<unsigned char>(text[i + 1]);
    const bool c1_control = c == 0xC2 && b1 < 0xA0;  // U+0080-U+009F
    const bool line_separator =
        c == 0xE2 && b1 == 0x80 && (text[i + 2] == '\xA8' || text[i + 2] == '\xA9');  // U+2028/9
    if (c1_control)
      append_u_escape(out, b1);
    else if (line_separator)
      append_u_escape(out, 0x2028u + (text[i + 2] == '\xA9' ? 1u : 0u));
    else
      out.append(text.substr(i, static_cast<std::size_t>(n)));
    i += static_cast<std::size_t>(n);
  }
  return out;
}

}  // namespace divert

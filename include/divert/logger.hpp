// divert/logger.hpp — the `shared_logger` hook: where divert writes what it
// does (connect failures, ejections, relay endings). Silent by default.
//
// A sink is any callable (LogLevel, message, task_id). task_id is the task's
// UUID as text, or empty when the message is not about one task. Messages are
// single lines without a trailing newline.
// Thread-safety: a Logger is an immutable value (copying shares the sink).
// divert calls the sink from whatever thread runs its I/O, possibly several at
// once, so the sink itself must be thread-safe; stderr_logger() is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "divert/export.hpp"

namespace divert {

enum class LogLevel : std::uint8_t { trace = 0, debug, info, warn, error, off };

// "trace", "debug", "info", "warn", "error", "off".
DIVERT_EXPORT std::string_view to_string(LogLevel level) noexcept;

using LogSink =
    std::function<void(LogLevel level, std::string_view message, std::string_view task_id)>;

class Logger {
 public:
  // The null logger: enabled() is false for every level and nothing is called.
  Logger() = default;
  // Messages below `min_level` are dropped before they are formatted.
  explicit Logger(LogSink sink, LogLevel min_level = LogLevel::trace)
      : sink_(sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr),
        min_level_(min_level) {}

  bool enabled(LogLevel level) const noexcept {
    return sink_ && level != LogLevel::off && level >= min_level_;
  }
  LogLevel min_level() const noexcept { return min_level_; }

  void log(LogLevel level, std::string_view message, std::string_view task_id = {}) const {
    if (enabled(level)) (*sink_)(level, message, task_id);
  }
  // fmt-formatted; the arguments are only formatted when the level is enabled.
  template <class... Args>
  void logf(LogLevel level, std::string_view task_id, fmt::format_string<Args...> format,
            Args&&... args) const {
    if (enabled(level)) (*sink_)(level, fmt::format(format, std::forward<Args>(args)...), task_id);
  }

 private:
  std::shared_ptr<const LogSink> sink_;
  LogLevel min_level_ = LogLevel::off;
};

// A logger that writes "divert <level> [task <id>] <message>\n" to stderr, one
// write(2) per line so lines from several threads never interleave.
DIVERT_EXPORT Logger stderr_logger(LogLevel min_level = LogLevel::info);

// The contents of a JSON string (without the quotes) holding `text`, always
// valid UTF-8 and safe on one log line whatever bytes `text` has (it often
// comes from the network: user names, host names, TLV values):
//  * well-formed UTF-8 is kept as is, except the C1 controls U+0080-U+009F
//    and U+2028/U+2029 (line separators to some readers), written \u0085 etc.;
//  * '"' and '\\' are escaped; \n \r \t as such; other controls below 0x20
//    and DEL (0x7F) as \u00XX;
//  * each byte that is not part of well-formed UTF-8 (a stray continuation
//    byte, a truncated sequence, an overlong form, a surrogate, a code point
//    above U+10FFFF, bytes 0xC0, 0xC1, 0xF5-0xFF) becomes U+FFFD, written
//    \ufffd so the line stays ASCII there; one U+FFFD per maximal ill-formed
//    subsequence (the Unicode/WHATWG decoding rule).
// Thread-safety: a pure function.
DIVERT_EXPORT std::string json_escape(std::string_view text);

// Same as Logger{}: drops everything.
inline Logger null_logger() {
  return Logger{};
}

}  // namespace divert

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

// Same as Logger{}: drops everything.
inline Logger null_logger() {
  return Logger{};
}

}  // namespace divert

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

}  // namespace divert

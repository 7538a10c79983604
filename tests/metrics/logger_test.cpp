// Logger: silent by default, level filtering, sink arguments, lazy formatting.
#include <string>
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

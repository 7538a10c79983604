#include "support/live.hpp"

using namespace divert::test;

TEST_CASE("free_port gives a bindable loopback port") {
  auto p = free_port();
  CHECK(p > 0);
  CHECK_FALSE(wait_for_port("127.0.0.1", p, std::chrono::milliseconds(50)));
}

TEST_CASE("run_command captures output and status") {
  auto sh = find_tool("sh");
  REQUIRE(sh);
  auto r = run_command({*sh, "-c", "echo hello; exit 3"});
  CHECK(r.status == 3);
  CHECK(r.out == "hello\n");
}

TEST_CASE("Process is stopped and reaped") {
  auto sleep = find_tool("sleep");
  REQUIRE(sleep);
  TempDir d;
  int before = open_fd_count();
  {
    Process p({*sleep, "30"}, d / "o", d / "e");
    CHECK(p.running());
  }
  CHECK(open_fd_count() == before);
}

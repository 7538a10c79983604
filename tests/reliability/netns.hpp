// tests/reliability/netns.hpp — runs a piece of a test inside a fresh network
// namespace made by the test itself: a thread unshares CLONE_NEWNET (namespaces
// are per thread on Linux; processes forked from that thread inherit it),
// brings lo up and runs the test's setup commands there, e.g. an nftables rule
// that drops SYNs to one port on 127.0.0.1, so a connect() there is
// black-holed (no RST, no answer).
#pragma once

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "support/live.hpp"

namespace divert::test {

// Runs body() on a thread inside a new network namespace with lo up, after
// running `setup` there (each an argv whose first word is a tool looked up on
// PATH). Returns "" on success, else why the namespace could not be made
// (body() did not run). body() must not use Catch2 macros (it runs on another
// thread): it records results for the caller to check.
inline std::string run_in_netns(const std::vector<std::vector<std::string>>& setup,
                                const std::function<void()>& body) {
  std::string why;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    std::vector<std::vector<std::string>> cmds{{"ip", "link", "set", "lo", "up"}};
    cmds.insert(cmds.end(), setup.begin(), setup.end());
    for (auto cmd : cmds) {
      auto tool = find_tool(cmd[0]);
      if (!tool) {
        why = cmd[0] + " missing";
        return;
      }
      cmd[0] = *tool;
      auto r = run_command(cmd, std::chrono::seconds(10));
      if (r.status != 0) {
        why = "command failed:";
        for (auto& w : cmd) why += " " + w;
        return;
      }
    }
    body();
  });
  t.join();
  return why;
}

// run_in_netns() where SYNs to 127.0.0.1:`port` are dropped (nftables).
inline std::string run_in_blackhole_netns(unsigned short port, const std::function<void()>& body) {
  auto p = std::to_string(port);
  return run_in_netns(
      {{"nft", "add", "table", "ip", "divert_test"},
       {"nft", "add chain ip divert_test in { type filter hook input priority 0 ; }"},
       {"nft", "add", "rule", "ip", "divert_test", "in", "tcp", "dport", p, "tcp", "flags", "syn",
        "drop"}},
      body);
}

// In CI the namespace must work (we run as root); elsewhere a failure skips.
#define DIVERT_REQUIRE_NETNS(why)                                                          \
  do {                                                                                     \
    if (!(why).empty()) {                                                                  \
      if (::divert::test::in_ci()) FAIL("network namespace unavailable in CI: " << (why)); \
      WARN("SKIPPED: network namespace unavailable: " << (why));                           \
      return;                                                                              \
    }                                                                                      \
  } while (0)

}  // namespace divert::test

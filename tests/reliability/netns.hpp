// tests/reliability/netns.hpp — runs a piece of a test inside a fresh network
// namespace made by the test itself: a thread unshares CLONE_NEWNET (namespaces
// are per thread on Linux; processes forked from that thread inherit it),
// brings lo up and installs an nftables rule that drops SYNs to one port on
// 127.0.0.1, so a connect() there is black-holed (no RST, no answer).
#pragma once

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "support/live.hpp"

namespace divert::test {

// Runs body() on a thread inside a new network namespace where SYNs to
// 127.0.0.1:`port` are dropped. Returns "" on success, else why the namespace
// could not be made (body() did not run). body() must not use Catch2 macros
// (it runs on another thread): it records results for the caller to check.
inline std::string run_in_blackhole_netns(unsigned short port, const std::function<void()>& body) {
  std::string why;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    auto ip = find_tool("ip");
    auto nft = find_tool("nft");
    if (!ip || !nft) {
      why = "ip or nft missing";
      return;
    }
    auto p = std::to_string(port);
    for (auto& cmd : std::vector<std::vector<std::string>>{
             {*ip, "link", "set", "lo", "up"},
             {*nft, "add", "table", "ip", "divert_test"},
             {*nft, "add chain ip divert_test in { type filter hook input priority 0 ; }"},
             {*nft, "add", "rule", "ip", "divert_test", "in", "tcp", "dport", p, "tcp", "flags",
              "syn", "drop"}}) {
      auto r = run_command(cmd, std::chrono::seconds(10));
      if (r.status != 0) {
        why = "command failed: " + cmd[0] + " " + cmd[1] + " " + cmd[2];
        return;
      }
    }
    body();
  });
  t.join();
  return why;
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

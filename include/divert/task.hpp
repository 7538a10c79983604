// divert/task.hpp — what the host hands the connector for one client
// connection, and the task id type.
//
// Thread-safety: values. The connector takes a Task by value: the caller's
// Task may be destroyed as soon as the call that took it has returned, even
// before the returned awaitable is started (the awaitable owns its own copy).
#pragma once

#include <optional>
#include <string>

#include "divert/asio/ip/tcp.hpp"
#include "divert/export.hpp"
#include "divert/ppv2/types.hpp"
#include "divert/upstream.hpp"

namespace divert {

using TaskId = ppv2::Uuid;

// A fresh RFC 9562 UUID version 7: 48-bit Unix time in milliseconds, then
// 74 random bits (version and variant set). Time-ordered, so task ids sort by
// creation time in logs. Thread-safe (a per-thread generator seeded from the OS).
DIVERT_EXPORT TaskId make_task_id_v7();

struct Task {
  // The client as the host accepted it: the PROXY header's source address.
  asio::ip::tcp::endpoint client{};
  // The local address the client connected to: the PROXY header's destination.
  asio::ip::tcp::endpoint server{};
  // Where the next proxy should go (TLV 0xE0, canonical host:port text).
  UpstreamAddr upstream;
  // The authenticated client user (TLV 0xE2, UTF-8 without NUL); leave empty
  // when the host does no client authentication. An empty string counts as
  // no user (no 0xE2). Also part of the pick key.
  std::optional<std::string> username{};
  // TLV 0xE3. Generated with make_task_id_v7() when empty.
  std::optional<TaskId> task_id{};
  // Bytes the client already sent that belong to the upstream (e.g. a
  // request read with the proxy request head). Sent in the same write as the
  // PROXY header, never before it.
  std::string initial_data{};
};

}  // namespace divert

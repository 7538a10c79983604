// Per-thread pool of empty pipes for the splice path (Linux only). A splice
// direction takes a pipe while bytes are in flight and gives it back drained,
// so most relays never call pipe2(). The pool keeps at most two pipes per live
// splice relay on its thread (256 at most): with no relay left it holds no
// descriptor.
#pragma once

#include <cstddef>

#include "divert/asio.hpp"
#include "relay/splice_platform.hpp"

#if DIVERT_RELAY_SPLICE
namespace divert::detail {

// A pipe and the bytes waiting in it; fds -1 when none is held.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  std::size_t bytes = 0;

  bool held() const noexcept { return read_end >= 0; }
  bool empty() const noexcept { return bytes == 0; }
};

// Takes a pipe from this thread's pool (or a new one) into `p` when it holds none.
error_code take_pipe(Pipe& p);  // pipe2()'s errno as an Asio code
// Gives `p`'s pipe back to the pool when it is empty, else closes it.
void put_pipe(Pipe& p) noexcept;

// One live splice relay on this thread (sizes the pool): construct one per relay.
class PipePoolUser {
 public:
  PipePoolUser() noexcept;
  ~PipePoolUser();
  PipePoolUser(const PipePoolUser&) = delete;
  PipePoolUser& operator=(const PipePoolUser&) = delete;
};

}  // namespace divert::detail
#endif

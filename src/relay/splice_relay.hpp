// The splice path (Linux): two SpliceDirections over two tcp::sockets and the
// RelaySession they share. Both directions and the idle timeout run as
// callbacks on this one object (no coroutine frame per direction).
#pragma once

#include "relay/splice_platform.hpp"

#if DIVERT_RELAY_SPLICE
#include <memory>

#include "divert/relay.hpp"
#include "relay/pipe_pool.hpp"
#include "relay/splice_direction.hpp"

namespace divert::detail {

class SpliceRelay final : public RelaySession {
 public:
  SpliceRelay(asio::ip::tcp::socket& a, asio::ip::tcp::socket& b, const RelayOptions& options,
              std::unique_ptr<RelayCompletion> done);
  // Dispatched to the sockets' executor: switches them to O_NONBLOCK and
  // starts both directions. Nothing completes inline.
  void start();
  void close_streams() noexcept override;
  // A direction reached State::done; the second one completes the relay.
  void finished();
  bool other_done(const SpliceDirection& d) const noexcept {
    return (&d == &up_ ? down_ : up_).state() == SpliceDirection::State::done;
  }
  // Whether the process ignores SIGPIPE (-1: not asked yet), asked once per relay.
  signed char& sigpipe_ignored() noexcept { return sigpipe_ignored_; }

 private:
  PipePoolUser pool_user_;  // first: the pool is trimmed after the directions gave their pipes back
  asio::ip::tcp::socket& a_;
  asio::ip::tcp::socket& b_;
  SpliceDirection up_, down_;
  std::unique_ptr<RelayCompletion> done_;
  signed char sigpipe_ignored_ = -1;
};

}  // namespace divert::detail
#endif

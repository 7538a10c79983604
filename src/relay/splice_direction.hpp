// One direction of the splice path (Linux): from -> to, as a state machine.
//
// States (State) and the events that move them (Event, next()):
//   small --full_page--> bulk      a copy read filled the page: more is queued
//   small, bulk --source_ended--> draining   FIN, or a read error (kept until
//                                  the pipe is empty, so bytes read before the
//                                  error still go out)
//   draining --drained--> done     half-close sent (or the read error recorded)
//   any --failed--> done           a write failed, or the relay stopped
//
// small: bytes are copied through user space, which costs half of splice() in
//   and out of a pipe for small transfers. The direction waits for bytes with
//   an Asio receive into its 512-byte head buffer (Asio retries a read that
//   came back short only once epoll reports the socket, with no epoll_ctl()
//   per wait as async_wait() needs) and reads further bytes with recv() into a
//   per-thread page. After a short read one more recv() looks for the
//   source's FIN: when it is there the bytes go out with MSG_MORE and the
//   half-close follows in the same segment (the price: one recv() that returns
//   EAGAIN per short read, since Asio does not report EPOLLRDHUP). What send()
//   leaves over waits in a pipe (a page at most: always room in an empty
//   pipe), and bytes read meanwhile queue behind it until `to` is writable.
// bulk: splice(2) socket -> pipe -> socket, up to 64 KiB (the default pipe
//   size) at a time, waiting with async_wait() for readable / writable.
// The direction holds a pipe only while bytes are in it (from the per-thread
// pool, relay/pipe_pool.hpp), so an idle relay holds none. Every wait ends in
// run(), which steps the machine until it has to wait again: no callback
// calls another step directly.
#pragma once

#include "relay/splice_platform.hpp"

#if DIVERT_RELAY_SPLICE
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "divert/relay.hpp"
#include "relay/pipe_pool.hpp"

namespace divert::detail {

class SpliceRelay;

class SpliceDirection {
 public:
  enum class State : std::uint8_t { small, bulk, draining, done };
  enum class Event : std::uint8_t { full_page, source_ended, drained, failed };

  // The transition table (see the file comment); other pairs keep the state.
  static constexpr State next(State s, Event e) noexcept {
    switch (e) {
      case Event::full_page:
        return s == State::small ? State::bulk : s;
      case Event::source_ended:
        return s == State::small || s == State::bulk ? State::draining : s;
      case Event::drained:
        return s == State::draining ? State::done : s;
      case Event::failed:
        return State::done;
    }
    return s;
  }

  SpliceDirection(SpliceRelay& relay, RelayDir dir, asio::ip::tcp::socket& from,
                  asio::ip::tcp::socket& to) noexcept
      : relay_(relay), dir_(dir), from_(from), to_(to) {}
  SpliceDirection(const SpliceDirection&) = delete;
  SpliceDirection& operator=(const SpliceDirection&) = delete;
  ~SpliceDirection() { put_pipe(pipe_); }

  void start();  // waits for the first bytes; reports to SpliceRelay::finished() at the end
  State state() const noexcept { return state_; }

 private:
  // What to do after a step: another step, or wait (one operation at a time).
  enum class Next : std::uint8_t { step, receive, wait_readable, wait_writable, finished };

  void run(Next next);
  Next step();
  Next on_receive(error_code ec, std::size_t n);             // the head buffer's receive completed
  Next on_wait(error_code ec);                               // readable / writable, or an error
  Next copy_page();                                          // small: recv() a page, send() it
  Next splice_through();                                     // splice from -> pipe, then flush()
  Next flush();                                              // splice pipe -> to
  Next end();                                                // draining, pipe empty
  bool forward(const char* data, std::size_t n, int flags);  // send(), leftovers to the pipe
  bool queue(const char* data, std::size_t n);               // write() behind the pipe's bytes
  void on(Event e) noexcept { state_ = next(state_, e); }
  void source_ended(error_code ec) noexcept;  // ec empty: FIN
  void fail(error_code ec);

  SpliceRelay& relay_;
  RelayDir dir_;
  asio::ip::tcp::socket& from_;
  asio::ip::tcp::socket& to_;
  State state_ = State::small;
  Pipe pipe_;
  error_code source_error_;  // Event::source_ended's read error (empty for FIN)
  char head_[512];
};

}  // namespace divert::detail
#endif

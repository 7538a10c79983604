#include "divert/ppv2/read_header.hpp"
#include "divert/asio/redirect_error.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/use_awaitable.hpp"

#include <memory>

#include "divert/error.hpp"
#include "divert/ppv2/errc.hpp"

namespace divert::ppv2 {

namespace {
// Shared with the timer's handler, which may run after the read finished.
struct Deadline {
  bool done = false;
  bool fired = false;
};
}  // namespace

asio::awaitable<error_code> read_proxy_header(asio::ip::tcp::socket& socket, ReceivedHeader& out,
                                              ReadHeaderOptions opts) {
  out = ReceivedHeader{};
  auto state = std::make_shared<Deadline>();
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(opts.timeout);
  timer.async_wait([state, &socket](error_code ec) {
    if (ec || state->done) return;
    state->fired = true;
    error_code ignored;
    socket.cancel(ignored);
  });
  struct Finish {  // stop the timer however we leave
    std::shared_ptr<Deadline> s;
    asio::steady_timer& t;
    ~Finish() {
      s->done = true;
      t.cancel();
    }
  } finish{state, timer};

  // Read chunk: enough for a typical header plus some payload, never more than
  // max_size + chunk in total.
  constexpr std::size_t kChunk = 2048;
  std::vector<std::uint8_t>& buf = out.bytes_;
  buf.reserve(kChunk);
  for (;;) {
    const std::size_t old = buf.size();
    buf.resize(old + kChunk);
    error_code ec;
    const std::size_t n = co_await socket.async_read_some(
        asio::buffer(buf.data() + old, kChunk), asio::redirect_error(asio::use_awaitable, ec));
    buf.resize(old + n);
    if (state->fired) co_return divert::errc::header_timeout;
    if (ec == asio::error::eof) co_return errc::truncated;
    if (ec) co_return ec;
    ParseResult r = opts.accept_v1 ? parse_any(buf, opts.decoder) : parse(buf, opts.decoder);
    if (r.error()) co_return r.ec;
    if (r.complete()) {
      out.header_size_ = r.consumed;
      out.header_ = r.header;  // views into buf, whose heap block a move keeps
      co_return error_code{};
    }
  }
}

asio::awaitable<ReceivedHeader> read_proxy_header(asio::ip::tcp::socket& socket,
                                                  ReadHeaderOptions opts) {
  ReceivedHeader out;
  error_code ec = co_await read_proxy_header(socket, out, opts);
  if (ec) throw std::system_error(ec, "read_proxy_header");
  co_return out;
}

}  // namespace divert::ppv2

// divert/ppv2/read_header.hpp — the receiving side's Asio helper: read exactly one
// PROXY header from a freshly accepted stream, under a timeout.
//
//   auto [ec, got] = co_await divert::ppv2::async_read_proxy_header(
//       socket, {}, divert::detail::as_tuple(asio::use_awaitable));
//   if (!ec && got.header().addresses_known()) use(got.header().src);
//   if (!ec && got.divert().upstream) connect_to(*got.divert().upstream);
//   relay(got.extra(), socket);   // bytes the peer sent after the header
//
// It reads with async_read_some into its own buffer, so it may read past the
// header; those bytes are returned in extra() and must be handled before reading
// the stream again. The spec says a receiver "MUST NOT start processing the
// connection before it receives a complete and valid header": any decode error,
// timeout or early close is an error and the caller should close the stream.
// Errors: divert::errc::header_timeout (no complete header within `timeout`,
// default 5 s, counted from the call, not per read), ppv2::errc::truncated (peer
// closed early), any ppv2::errc from the decoder or from read_divert_tlvs() (a
// PROXY header whose divert TLVs 0xE0-0xE3 are malformed is not valid either),
// asio::error::operation_aborted when cancelled, or the stream's own error.
// Thread-safety: do not use the stream concurrently while the read is pending;
// the timer runs on the stream's executor, which must not run the operation's
// handlers concurrently (one thread, or a strand).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>
#include "divert/asio/as_tuple.hpp"
#include "divert/asio/experimental/awaitable_operators.hpp"
#include "divert/asio/ip/tcp.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/this_coro.hpp"
#include "divert/asio/use_awaitable.hpp"

#include "divert/asio.hpp"
#include "divert/detail/spawn_for_handler.hpp"
#include "divert/error.hpp"
#include "divert/export.hpp"
#include "divert/ppv2/decoder.hpp"

namespace divert::ppv2 {

struct ReadHeaderOptions {
  std::chrono::milliseconds timeout{5000};  // whole-header deadline
  DecoderOptions decoder{};                 // max_size etc.
  bool accept_v1 = false;                   // also accept a v1 text header
};

namespace detail {
class HeaderReader;
}

// A header read from a stream, owning its bytes. Move-only: the views point into
// the owned storage (which a move keeps in place).
class ReceivedHeader {
 public:
  ReceivedHeader() = default;
  ReceivedHeader(ReceivedHeader&&) noexcept = default;
  ReceivedHeader& operator=(ReceivedHeader&&) noexcept = default;
  ReceivedHeader(const ReceivedHeader&) = delete;
  ReceivedHeader& operator=(const ReceivedHeader&) = delete;

  const HeaderView& header() const noexcept { return header_; }
  // divert's TLVs (0xE0 upstream, 0xE1 TLS name, 0xE2 username, 0xE3 task id,
  // and 0xE7 when the codec knows it), typed; all empty for LOCAL and v1.
  const DivertTlvs& divert() const noexcept { return divert_; }
  // Bytes read past the header (the start of the payload), possibly empty.
  std::span<const std::uint8_t> extra() const noexcept {
    return std::span<const std::uint8_t>(bytes_).subspan(header_size_);
  }
  std::size_t header_size() const noexcept { return header_size_; }

 private:
  friend class detail::HeaderReader;
  std::vector<std::uint8_t> bytes_;
  std::size_t header_size_ = 0;
  HeaderView header_;
  DivertTlvs divert_;
};

namespace detail {

// The sans-I/O half of async_read_proxy_header(): the buffer and the decoder.
class DIVERT_EXPORT HeaderReader {
 public:
  explicit HeaderReader(const ReadHeaderOptions& options);
  // Room for the next read.
  asio::mutable_buffer prepare();
  // The last read gave `n` bytes and `ec`. nullopt: read more; else the
  // outcome ({} when the header is complete: take() it).
  std::optional<error_code> commit(std::size_t n, const error_code& ec);
  ReceivedHeader take() noexcept { return std::move(out_); }

 private:
  ReadHeaderOptions options_;
  ReceivedHeader out_;
  std::size_t filled_ = 0;
};

using ReadHeaderResult = std::pair<error_code, ReceivedHeader>;

template <class AsyncReadStream>
asio::awaitable<ReadHeaderResult> read_proxy_header_op(AsyncReadStream& stream,
                                                       ReadHeaderOptions options) {
  using namespace asio::experimental::awaitable_operators;
  const auto use = divert::detail::as_tuple(asio::use_awaitable);
  co_await asio::this_coro::throw_if_cancelled(false);  // report operation_aborted instead
  HeaderReader reader(options);
  asio::steady_timer deadline(co_await asio::this_coro::executor);
  deadline.expires_after(options.timeout);
  for (;;) {
    auto first =
        co_await (stream.async_read_some(reader.prepare(), use) || deadline.async_wait(use));
    if (first.index() == 1) {
      auto [timer_ec] = std::get<1>(first);
      co_return ReadHeaderResult{
          timer_ec ? timer_ec
                   : error_code(::divert::make_error_code(::divert::errc::header_timeout)),
          ReceivedHeader{}};
    }
    auto [ec, n] = std::get<0>(first);
    if (auto done = reader.commit(n, ec)) {
      if (*done) co_return ReadHeaderResult{*done, ReceivedHeader{}};
      co_return ReadHeaderResult{error_code{}, reader.take()};
    }
  }
}

}  // namespace detail

// Reads one PROXY header from `stream` (any Asio AsyncReadStream) within
// options.timeout. Completion signature void(divert::error_code, ReceivedHeader)
// (an empty ReceivedHeader on error; errors listed at the top). Works with any
// completion token (callbacks, use_awaitable, use_future, deferred, as_tuple);
// the handler runs on its associated executor (default: the stream's); its
// cancellation slot cancels the read (terminal cancellation: the stream must
// then be closed). `stream` must outlive the operation; `options` is copied.
template <class AsyncReadStream, class CompletionToken>
auto async_read_proxy_header(AsyncReadStream& stream, ReadHeaderOptions options,
                             CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(divert::error_code, ReceivedHeader)>(
      [](auto handler, AsyncReadStream* s, ReadHeaderOptions opts) {
        ::divert::detail::spawn_for_handler(s->get_executor(),
                                            detail::read_proxy_header_op(*s, std::move(opts)),
                                            std::move(handler));
      },
      token, &stream, std::move(options));
}

// Coroutine forms over a TCP socket. Non-throwing: fills `out` and returns {}
// on success.
DIVERT_EXPORT asio::awaitable<error_code> read_proxy_header(asio::ip::tcp::socket& socket,
                                                            ReceivedHeader& out,
                                                            ReadHeaderOptions opts = {});

// Throwing form: divert::system_error (divert/asio.hpp) with the codes above.
DIVERT_EXPORT asio::awaitable<ReceivedHeader> read_proxy_header(asio::ip::tcp::socket& socket,
                                                                ReadHeaderOptions opts = {});

}  // namespace divert::ppv2

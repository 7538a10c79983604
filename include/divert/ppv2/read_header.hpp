// divert/ppv2/read_header.hpp — the receiving side's Asio helper: read exactly one
// PROXY header from a freshly accepted TCP socket, under a timeout.
//
//   auto got = co_await divert::ppv2::read_proxy_header(socket);   // throws system_error
//   if (got.header().addresses_known()) use(got.header().src);
//   relay(got.extra(), socket);   // bytes the peer sent after the header
//
// It reads with read_some into its own buffer, so it may read past the header; those
// bytes are returned in extra() and must be handled before reading the socket again.
// The spec says a receiver "MUST NOT start processing the connection before it
// receives a complete and valid header": any decode error, timeout or early close
// is an error and the caller should close the socket.
// Errors: divert::errc::header_timeout (no complete header within `timeout`,
// default 5 s, counted from the call, not per read), ppv2::errc::truncated (peer
// closed early), any ppv2::errc from the decoder, or the socket's own error.
// Thread-safety: do not use the socket concurrently while the read is pending; the
// timer runs on the socket's executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include "divert/asio/awaitable.hpp"
#include "divert/asio/ip/tcp.hpp"
#include "divert/export.hpp"
#include "divert/ppv2/decoder.hpp"

namespace divert::ppv2 {

struct ReadHeaderOptions {
  std::chrono::milliseconds timeout{5000};  // whole-header deadline
  DecoderOptions decoder{};                 // max_size etc.
  bool accept_v1 = false;                   // also accept a v1 text header
};

// A header read from a socket, owning its bytes. Move-only: the view points into
// the owned storage (which a move keeps in place).
class ReceivedHeader {
 public:
  ReceivedHeader() = default;
  ReceivedHeader(ReceivedHeader&&) noexcept = default;
  ReceivedHeader& operator=(ReceivedHeader&&) noexcept = default;
  ReceivedHeader(const ReceivedHeader&) = delete;
  ReceivedHeader& operator=(const ReceivedHeader&) = delete;

  const HeaderView& header() const noexcept { return header_; }
  // Bytes read past the header (the start of the payload), possibly empty.
  std::span<const std::uint8_t> extra() const noexcept {
    return std::span<const std::uint8_t>(bytes_).subspan(header_size_);
  }
  std::size_t header_size() const noexcept { return header_size_; }

 private:
  friend DIVERT_EXPORT asio::awaitable<error_code> read_proxy_header(asio::ip::tcp::socket&,
                                                                     ReceivedHeader&,
                                                                     ReadHeaderOptions);
  std::vector<std::uint8_t> bytes_;
  std::size_t header_size_ = 0;
  HeaderView header_;
};

// Non-throwing form: fills `out` and returns {} on success.
DIVERT_EXPORT asio::awaitable<error_code> read_proxy_header(asio::ip::tcp::socket& socket,
                                                            ReceivedHeader& out,
                                                            ReadHeaderOptions opts = {});

// Throwing form: std::system_error with the codes above.
DIVERT_EXPORT asio::awaitable<ReceivedHeader> read_proxy_header(asio::ip::tcp::socket& socket,
                                                                ReadHeaderOptions opts = {});

}  // namespace divert::ppv2

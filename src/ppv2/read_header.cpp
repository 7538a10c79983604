#include "divert/ppv2/read_header.hpp"
#include "divert/asio/redirect_error.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/use_awaitable.hpp"

#include "divert/error.hpp"
#include "divert/ppv2/errc.hpp"

namespace divert::ppv2 {

namespace detail {

namespace {
// Read chunk: enough for a typical header plus some payload; the buffer never
// grows past max_size + one chunk.
constexpr std::size_t kChunk = 2048;
}  // namespace

HeaderReader::HeaderReader(const ReadHeaderOptions& options) : options_(options) {
  out_.bytes_.reserve(kChunk);
}

asio::mutable_buffer HeaderReader::prepare() {
  out_.bytes_.resize(filled_ + kChunk);
  return asio::buffer(out_.bytes_.data() + filled_, kChunk);
}

std::optional<error_code> HeaderReader::commit(std::size_t n, const error_code& ec) {
  filled_ += n;
  auto& buf = out_.bytes_;
  buf.resize(filled_);
  if (ec == asio::error::eof) return make_error_code(errc::truncated);
  if (ec) return ec;
  ParseResult r =
      options_.accept_v1 ? parse_any(buf, options_.decoder) : parse(buf, options_.decoder);
  if (r.error()) return r.ec;
  if (!r.complete()) return std::nullopt;
  out_.header_size_ = r.consumed;
  out_.header_ = r.header;  // views into buf, whose heap block a move keeps
  if (out_.header_.command == Command::proxy && out_.header_.version == 2) {
    if (auto tec = read_divert_tlvs(out_.header_, out_.divert_)) return tec;
  }
  return error_code{};
}

}  // namespace detail

asio::awaitable<error_code> read_proxy_header(asio::ip::tcp::socket& socket, ReceivedHeader& out,
                                              ReadHeaderOptions opts) {
  auto [ec, got] =
      co_await async_read_proxy_header(socket, opts, divert::detail::as_tuple(asio::use_awaitable));
  out = std::move(got);
  co_return ec;
}

asio::awaitable<ReceivedHeader> read_proxy_header(asio::ip::tcp::socket& socket,
                                                  ReadHeaderOptions opts) {
  auto [ec, got] =
      co_await async_read_proxy_header(socket, opts, divert::detail::as_tuple(asio::use_awaitable));
  if (ec) throw system_error(ec, "read_proxy_header");
  co_return std::move(got);
}

}  // namespace divert::ppv2

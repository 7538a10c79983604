// read_proxy_header() on real loopback socket pairs: extra bytes, tears, timeout,
// early close, bad headers, v1.
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "divert/error.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/ppv2/read_header.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

using namespace divert::ppv2;
using namespace divert::ppv2::test;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct Pair {
  asio::io_context io;
  tcp::socket client{io};
  tcp::socket server{io};
  Pair() {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acc.local_endpoint());
    server = acc.accept();
  }
  void send(std::span<const std::uint8_t> b) {
    asio::write(client, asio::buffer(b.data(), b.size()));
  }
  void send(std::string_view s) { send(as_bytes(s)); }
  // Sends `b` from a coroutine on io: `chunk` bytes, then a pause of `gap`.
  void send_slowly(Bytes b, std::size_t chunk, std::chrono::milliseconds gap) {
    asio::co_spawn(
        io,
        [this, b = std::move(b), chunk, gap]() -> asio::awaitable<void> {
          asio::steady_timer t(io);
          for (std::size_t i = 0; i < b.size(); i += chunk) {
            co_await asio::async_write(client,
                                       asio::buffer(b.data() + i, std::min(chunk, b.size() - i)),
                                       asio::use_awaitable);
            t.expires_after(gap);
            co_await t.async_wait(asio::use_awaitable);
          }
        },
        asio::detached);
  }

  // Runs read_proxy_header on the server side (bounded by 10 s of wall time).
  divert::error_code read(ReceivedHeader& out, ReadHeaderOptions opts = {}) {
    std::optional<divert::error_code> result;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> { result = co_await read_proxy_header(server, out, opts); },
        asio::detached);
    io.run_for(10s);
    REQUIRE(result.has_value());
    return *result;
  }
};

Bytes divert_header() {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 40000);
  s.dst = ep("192.0.2.2", 3128);
  s.upstream = "example.com:443";
  s.crc32c = true;
  return encode_ok(s);
}

}  // namespace

TEST_CASE("read_proxy_header: header and the bytes sent after it") {
  Pair p;
  Bytes h = divert_header();
  Bytes all = h;
  const std::string payload = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
  all.insert(all.end(), payload.begin(), payload.end());
  p.send(all);  // one write: header coalesced with the first client bytes
  ReceivedHeader got;
  REQUIRE_FALSE(p.read(got));
  CHECK(got.header_size() == h.size());
  CHECK(got.header().src == ep("192.0.2.1", 40000));
  CHECK(got.header().find(tlv::divert_upstream)->text() == "example.com:443");
  CHECK(std::string(got.extra().begin(), got.extra().end()) == payload);
  // The view survives a move of the owner.
  ReceivedHeader moved = std::move(got);
  CHECK(moved.header().find(tlv::divert_upstream)->text() == "example.com:443");
}

TEST_CASE("read_proxy_header: header torn across several segments") {
  Pair p;
  Bytes h = divert_header();
  ReceivedHeader got;
  std::optional<divert::error_code> result;
  p.send_slowly(h, 7, 2ms);
  asio::co_spawn(
      p.io, [&]() -> asio::awaitable<void> { result = co_await read_proxy_header(p.server, got); },
      asio::detached);
  p.io.run_for(10s);
  REQUIRE(result);
  REQUIRE_FALSE(*result);
  CHECK(got.header_size() == h.size());
  CHECK(got.extra().empty());
}

TEST_CASE("read_proxy_header: timeout fires on a stalled header") {
  Pair p;
  Bytes h = divert_header();
  p.send(std::span(h).first(20));  // a partial header, then silence
  ReceivedHeader got;
  const auto t0 = std::chrono::steady_clock::now();
  auto ec = p.read(got, {.timeout = 200ms});
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(ec == divert::errc::header_timeout);
  CHECK(took >= 190ms);
  CHECK(took < 3s);
  CHECK(p.server.is_open());  // closing is the caller's decision
}

TEST_CASE("read_proxy_header: peer closes before the header is complete") {
  Pair p;
  Bytes h = divert_header();
  p.send(std::span(h).first(30));
  p.client.shutdown(tcp::socket::shutdown_send);
  ReceivedHeader got;
  CHECK(p.read(got, {.timeout = 3s}) == errc::truncated);
}

TEST_CASE("read_proxy_header: a bad header fails at once, without waiting for more") {
  Pair p;
  p.send("GET / HTTP/1.1\r\n");
  ReceivedHeader got;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(p.read(got, {.timeout = 3s}) == errc::bad_signature);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("read_proxy_header: v1 only when allowed; max size honoured") {
  {
    Pair p;
    p.send("PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\nhello");
    ReceivedHeader got;
    REQUIRE_FALSE(p.read(got, {.accept_v1 = true}));
    CHECK(got.header().version == 1);
    CHECK(got.header().src == ep("2001:db8::1", 1000));
    CHECK(std::string(got.extra().begin(), got.extra().end()) == "hello");
  }
  {
    Pair p;
    p.send("PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\nhello");
    ReceivedHeader got;
    CHECK(p.read(got) == errc::bad_signature);
  }
  {
    Pair p;
    p.send(haproxy_golden());
    ReceivedHeader got;
    ReadHeaderOptions o;
    o.decoder.max_size = 100;
    CHECK(p.read(got, o) == errc::header_too_large);
  }
}

TEST_CASE("read_proxy_header: throwing form") {
  Pair p;
  const Bytes h = divert_header();
  p.send(std::span(h).first(10));
  p.client.close();
  std::optional<divert::error_code> caught;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        try {
          (void)co_await read_proxy_header(p.server, ReadHeaderOptions{.timeout = 2s});
        } catch (const divert::system_error& e) {
          caught = e.code();
        }
      },
      asio::detached);
  p.io.run_for(5s);
  REQUIRE(caught);
  CHECK(*caught == errc::truncated);
}

// Hostile senders against the reader's sans-I/O half and its deadline.
namespace {

// One read of `bytes` into `r` (what async_read_some would have given).
std::optional<std::error_code> feed(detail::HeaderReader& r, std::span<const std::uint8_t> bytes) {
  auto room = r.prepare();
  REQUIRE(bytes.size() <= room.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  return r.commit(bytes.size(), {});
}

}  // namespace

TEST_CASE("HeaderReader: a header split at every place, or byte by byte, reads the same",
          "[read-header][hostile]") {
  const Bytes h = divert_header();
  Bytes all = h;
  for (char c : std::string("payload")) all.push_back(static_cast<std::uint8_t>(c));
  const std::span<const std::uint8_t> bytes(all);
  for (std::size_t cut = 1; cut < all.size(); ++cut) {
    INFO("split after byte " << cut);
    detail::HeaderReader r({});
    auto first = feed(r, bytes.first(cut));
    if (cut < h.size()) {
      REQUIRE_FALSE(first);  // read more
      REQUIRE(feed(r, bytes.subspan(cut)) == std::optional<std::error_code>(std::error_code()));
    } else {
      REQUIRE(first == std::optional<std::error_code>(std::error_code()));
    }
    auto got = r.take();
    CHECK(got.header_size() == h.size());
    CHECK(got.divert().upstream_text == std::optional<std::string_view>("example.com:443"));
    const std::size_t read = cut < h.size() ? all.size() : cut;
    CHECK(std::string(got.extra().begin(), got.extra().end()) ==
          std::string(all.begin() + h.size(), all.begin() + read));
  }
  detail::HeaderReader r({});
  for (std::size_t i = 0; i + 1 < h.size(); ++i) REQUIRE_FALSE(feed(r, bytes.subspan(i, 1)));
  REQUIRE(feed(r, bytes.subspan(h.size() - 1, 1)) ==
          std::optional<std::error_code>(std::error_code()));
  CHECK(r.take().extra().empty());
}

TEST_CASE("HeaderReader: a huge declared length is refused from the 16 fixed bytes alone",
          "[read-header][hostile]") {
  Bytes h = divert_header();
  h[14] = 0xFF;  // length 65535: 65551 bytes, far over max_size (4096)
  h[15] = 0xFF;
  detail::HeaderReader r({});
  REQUIRE_FALSE(feed(r, std::span(h).first(15)));
  CHECK(feed(r, std::span(h).subspan(15, 1)) ==
        std::optional<std::error_code>(make_error_code(errc::header_too_large)));
}

TEST_CASE("HeaderReader: a TLV whose length runs past the header is an error, not a wait",
          "[read-header][hostile]") {
  HeaderSpec s;
  s.src = ep("192.0.2.1", 40000);
  s.dst = ep("192.0.2.2", 3128);
  s.upstream = "example.com:443";
  Bytes h = encode_ok(s);
  // The first TLV (0xE0) starts after the 16 fixed bytes and 12 address bytes.
  REQUIRE(h[28] == tlv::divert_upstream);
  h[29] = 0xFF;  // its length: 65280 + the real one
  detail::HeaderReader r({});
  auto done = feed(r, h);
  REQUIRE(done);
  CHECK(*done);
}

TEST_CASE(
    "read_proxy_header: a sender dripping one byte every 50 ms meets the whole-header "
    "deadline",
    "[read-header][hostile]") {
  Pair p;
  const Bytes h = divert_header();
  ReceivedHeader got;
  std::optional<divert::error_code> result;
  p.send_slowly(h, 1, 50ms);
  const auto t0 = std::chrono::steady_clock::now();
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        result = co_await read_proxy_header(p.server, got, {.timeout = 300ms});
      },
      asio::detached);
  while (!result && std::chrono::steady_clock::now() - t0 < 10s) p.io.run_one_for(100ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(result);
  CHECK(*result == divert::errc::header_timeout);  // each byte is in time; the whole is not
  CHECK(took >= 290ms);
  CHECK(took < 2s);
}

// async_read_proxy_header(): the completion-token forms, the typed divert view,
// the handler's executor and cancellation, any AsyncReadStream.
TEST_CASE("async_read_proxy_header: callback, use_future, deferred, use_awaitable",
          "[read-header][token]") {
  const Bytes h = divert_header();
  Bytes with_payload = h;
  with_payload.push_back('x');
  SECTION("callback: header, typed 0xE0 view and the bytes past it") {
    Pair p;
    p.send(with_payload);
    std::optional<divert::error_code> ec;
    ReceivedHeader got;
    async_read_proxy_header(p.server, {}, [&](divert::error_code e, ReceivedHeader r) {
      ec = e;
      got = std::move(r);
    });
    p.io.run_for(10s);
    REQUIRE(ec);
    REQUIRE_FALSE(*ec);
    REQUIRE(got.divert().upstream);
    CHECK(got.divert().upstream->host == "example.com");
    CHECK(got.divert().upstream->port == 443);
    CHECK(got.divert().upstream_text == std::string_view("example.com:443"));
    CHECK_FALSE(got.divert().status_reply);
    CHECK(std::string(got.extra().begin(), got.extra().end()) == "x");
  }
  SECTION("use_future, the io_context on another thread") {
    Pair p;
    auto work = asio::make_work_guard(p.io);
    std::thread t([&] { p.io.run_for(10s); });
    auto f = async_read_proxy_header(p.server, {}, asio::use_future);
    p.send(h);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    auto got = f.get();
    CHECK(got.header_size() == h.size());
    work.reset();
    p.io.stop();
    t.join();
  }
  SECTION("use_future reports errors as exceptions") {
    Pair p;
    auto work = asio::make_work_guard(p.io);
    std::thread t([&] { p.io.run_for(10s); });
    auto f = async_read_proxy_header(p.server, {}, asio::use_future);
    p.send("GET / HTTP/1.1\r\n");
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    try {
      f.get();
      FAIL("no error");
    } catch (const divert::system_error& e) {
      CHECK(e.code() == errc::bad_signature);
    }
    work.reset();
    p.io.stop();
    t.join();
  }
  SECTION("deferred: nothing is read until the operation is started") {
    Pair p;
    p.send(h);
    auto op = async_read_proxy_header(p.server, {}, asio::experimental::deferred);
    p.io.run_for(50ms);
    CHECK(p.server.available() == h.size());  // not read yet
    std::optional<divert::error_code> ec;
    std::move(op)([&](divert::error_code e, ReceivedHeader) { ec = e; });
    p.io.restart();  // it ran out of work above
    p.io.run_for(10s);
    REQUIRE(ec);
    CHECK_FALSE(*ec);
  }
  SECTION("use_awaitable with as_tuple") {
    Pair p;
    p.send(h);
    std::optional<divert::error_code> ec;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
          auto [e, got] = co_await async_read_proxy_header(
              p.server, {}, asio::experimental::as_tuple(asio::use_awaitable));
          ec = e;
        },
        asio::detached);
    p.io.run_for(10s);
    REQUIRE(ec);
    CHECK_FALSE(*ec);
  }
}

TEST_CASE("async_read_proxy_header: handler executor, cancellation slot, a 0xE7 request",
          "[read-header][token]") {
  SECTION("the handler runs on its associated executor (a strand)") {
    Pair p;
    auto strand = asio::make_strand(p.io);
    p.send(divert_header());
    std::optional<bool> on_strand;
    async_read_proxy_header(p.server, {},
                            asio::bind_executor(strand, [&](divert::error_code, ReceivedHeader) {
                              on_strand = strand.running_in_this_thread();
                            }));
    p.io.run_for(10s);
    REQUIRE(on_strand);
    CHECK(*on_strand);
  }
  SECTION("the cancellation slot ends a pending read with operation_aborted") {
    Pair p;
    asio::cancellation_signal cancel;
    std::optional<divert::error_code> ec;
    async_read_proxy_header(
        p.server, {.timeout = 10s},
        asio::bind_cancellation_slot(cancel.slot(),
                                     [&](divert::error_code e, ReceivedHeader) { ec = e; }));
    asio::steady_timer t(p.io, 50ms);
    t.async_wait([&](divert::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    const auto t0 = std::chrono::steady_clock::now();
    p.io.run_for(5s);
    REQUIRE(ec);
    CHECK(*ec == asio::error::operation_aborted);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  }
  SECTION("TLV 0xE7 = 0x01 is in the typed view") {
    Pair p;
    HeaderSpec s;
    s.src = ep("192.0.2.1", 40000);
    s.dst = ep("192.0.2.2", 3128);
    s.upstream = "example.com:443";
    s.status_reply = true;
    p.send(encode_ok(s));
    ReceivedHeader got;
    REQUIRE_FALSE(p.read(got));
    CHECK(got.divert().status_reply == std::optional<std::uint8_t>(1));
  }
  SECTION("a malformed divert TLV fails the read") {
    Pair p;
    HeaderSpec s;
    s.src = ep("192.0.2.1", 40000);
    s.dst = ep("192.0.2.2", 3128);
    const std::uint8_t bad_task_id[3] = {1, 2, 3};
    TlvView extra[] = {{tlv::divert_task_id, bad_task_id}};
    s.extra = extra;
    p.send(encode_ok(s));
    ReceivedHeader got;
    CHECK(p.read(got) == errc::bad_task_id);
  }
}

// tests/api/rig.hpp — a host's surroundings for the completion-token tests:
// an io_context run by its own threads, an in-test next proxy on loopback
// (reads the PROXY header, then echoes), and client connections to relay.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "divert/connector.hpp"
#include "divert/ppv2/read_header.hpp"
#include "support/live.hpp"

namespace divert::test {

using asio::ip::tcp;
using namespace std::chrono_literals;

inline tcp::endpoint loopback(unsigned short port = 0) {
  return {asio::ip::make_address("127.0.0.1"), port};
}

inline Task make_task(const std::string& upstream = "origin.test:443") {
  return Task{.client = tcp::endpoint(asio::ip::make_address("127.0.0.9"), 40000),
              .server = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080),
              .upstream = UpstreamAddr::parse(upstream, 0)};
}

// What the next proxy saw of one connection.
struct Seen {
  std::string upstream, task_id;
};

class Rig {
 public:
  explicit Rig(int threads = 1)
      : work_(asio::make_work_guard(io)),
        next_proxy_(io, loopback()),
        front_(io, loopback()),
        connector(DivertTcpConnector::builder()
                      .proxy_addr("127.0.0.1:" + std::to_string(next_proxy_port()))
                      .build()) {
    asio::co_spawn(io, serve(), asio::detached);
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io.run(); });
  }
  ~Rig() {
    work_.reset();
    io.stop();
    for (auto& t : threads_) t.join();
  }

  unsigned short next_proxy_port() const { return next_proxy_.local_endpoint().port(); }

  // A client connection to the host: {the client's end (blocking, with a
  // 10 s receive timeout), the host's end (on `io`)}.
  std::pair<tcp::socket, tcp::socket> client_pair() {
    tcp::socket client(io);
    client.connect(front_.local_endpoint());
    timeval tv{10, 0};
    ::setsockopt(client.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    tcp::socket host_end = front_.accept();
    return {std::move(client), std::move(host_end)};
  }

  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  asio::io_context io;

 private:
  asio::awaitable<void> serve() {
    for (;;) {
      auto s = co_await next_proxy_.async_accept(asio::use_awaitable);
      asio::co_spawn(io, echo(std::move(s)), asio::detached);
    }
  }
  // Reads the header, then echoes until EOF, then half-closes.
  asio::awaitable<void> echo(tcp::socket s) {
    auto got = co_await ppv2::read_proxy_header(s);
    ppv2::DivertTlvs t;
    if (ppv2::read_divert_tlvs(got.header(), t)) co_return;
    {
      std::lock_guard lock(mutex_);
      seen_.push_back({std::string(t.upstream_text.value_or("")),
                       t.task_id ? t.task_id->to_string() : std::string()});
    }
    std::string extra(reinterpret_cast<const char*>(got.extra().data()), got.extra().size());
    if (!extra.empty()) co_await asio::async_write(s, asio::buffer(extra), asio::use_awaitable);
    char buf[4096];
    for (;;) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf),
                                                asio::experimental::as_tuple(asio::use_awaitable));
      if (ec) break;
      co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    }
    divert::error_code ignored;
    s.shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::executor_work_guard<asio::io_context::executor_type> work_;
  tcp::acceptor next_proxy_;
  tcp::acceptor front_;
  std::mutex mutex_;
  std::vector<Seen> seen_;
  std::vector<std::thread> threads_;

 public:
  DivertTcpConnector connector;
};

// The client's side of a relayed connection: a line out, the same line back,
// then a half-close answered by EOF once the relay has ended both ways.
inline void exchange(tcp::socket& client, const std::string& line = "hello through divert\n") {
  asio::write(client, asio::buffer(line));
  std::string back(line.size(), '\0');
  asio::read(client, asio::buffer(back));
  CHECK(back == line);
  client.shutdown(tcp::socket::shutdown_send);
  char c;
  divert::error_code ec;
  client.read_some(asio::buffer(&c, 1), ec);
  CHECK(ec == asio::error::eof);
}

}  // namespace divert::test

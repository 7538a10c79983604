// A Boost.Asio host using divert built with -DDIVERT_ASIO=boost: divert's
// types are boost::asio's, so the host's own sockets, executors and
// coroutines go straight in. It connects through a next proxy it plays
// itself (a loopback acceptor) and reads back the PROXY v2 header divert sent,
// with io_context::work (deprecated API) kept working.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <divert/divert.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <type_traits>

static_assert(DIVERT_ASIO_BOOST == 1, "divert/config.hpp: this divert is built with Boost.Asio");
static_assert(std::is_same_v<divert::error_code, boost::system::error_code>);
static_assert(std::is_same_v<decltype(divert::Task::client), boost::asio::ip::tcp::endpoint>);

namespace net = boost::asio;
using net::ip::tcp;

int main() {
  net::io_context io;
  net::io_context::work work(io);  // deprecated: gone under BOOST_ASIO_NO_DEPRECATED
  tcp::acceptor next_proxy(io, {net::ip::make_address("127.0.0.1"), 0});
  auto connector =
      divert::DivertTcpConnector::builder()
          .proxy_addr({{"127.0.0.1:" + std::to_string(next_proxy.local_endpoint().port()), 1.0}})
          .build();
  std::string upstream_seen;
  bool connected = false;
  int finished = 0;  // both coroutines done: stop (the work guard keeps run() going)
  auto finish = [&] {
    if (++finished == 2) io.stop();
  };

  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        tcp::socket s = co_await next_proxy.async_accept(net::use_awaitable);
        divert::ppv2::ReceivedHeader got;
        divert::error_code ec =
            co_await divert::ppv2::read_proxy_header(s, got, {.timeout = std::chrono::seconds(5)});
        divert::ppv2::DivertTlvs tlvs;
        if (!ec && !divert::ppv2::read_divert_tlvs(got.header(), tlvs) && tlvs.upstream_text)
          upstream_seen = std::string(*tlvs.upstream_text);
        finish();
      },
      net::detached);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        divert::Task task{.client = {net::ip::make_address("192.0.2.1"), 40000},
                          .server = {net::ip::make_address("192.0.2.2"), 3128},
                          .upstream = divert::UpstreamAddr::parse("example.com:443")};
        divert::error_code ec;
        tcp::socket s = co_await connector.tcp_connect(task, ec);
        connected = !ec && s.is_open();
        if (ec) std::printf("tcp_connect: %s\n", ec.message().c_str());
        finish();
      },
      net::detached);
  io.run_for(std::chrono::seconds(10));
  std::printf("divert %s (Boost.Asio): connected %s, next proxy saw upstream '%s'\n",
              DIVERT_VERSION_STRING, connected ? "yes" : "no", upstream_seen.c_str());
  return connected && upstream_seen == "example.com:443" ? 0 : 1;
}

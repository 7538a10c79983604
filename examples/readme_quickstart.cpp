// README quick start: divert embedded in a host's own accept loop. Every
// client connection is diverted to example.com:443 through two next proxies.
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <divert/divert.hpp>

constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve(asio::ip::tcp::socket client,
                            const divert::DivertTcpConnector& connector) {
  divert::Task task{.client = client.remote_endpoint(),
                    .server = client.local_endpoint(),
                    .upstream = divert::UpstreamAddr::parse("example.com:443"),
                    .username = "alice"};  // task id (UUID v7) generated
  auto [ec, stream] = co_await connector.async_tcp_connect(task, no_throw);  // PROXY v2 header sent
  if (ec == divert::condition::next_proxy_failed) co_return;  // e.g. connection_refused, timed_out
  if (ec) co_return;                                          // upstream_failed, cancelled, ...
  co_await connector.async_relay(std::move(client), std::move(stream), no_throw);  // both ways
}

asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor,
                                  const divert::DivertTcpConnector& connector) {
  for (;;) {
    auto client = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), serve(std::move(client), connector), asio::detached);
  }
}

int main() {
  using namespace std::chrono_literals;
  auto connector =
      divert::DivertTcpConnector::builder()
          .proxy_addr({{"127.0.0.1:3128", 2.0}, {"[::1]:3128", 1.0}})
          .proxy_addr_pick_policy(divert::PickPolicy::ketama)
          .happy_eyeballs({.connection_attempt_delay = 250ms})
          .set("tcp_connect", "{max_retry: 1, each_timeout: 5s}")  // YAML-style keys too
          .build();  // throws divert::config_error naming the key
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::co_spawn(io, accept_loop(acceptor, connector), asio::detached);
  io.run_for(10ms);  // a real host runs until it is told to stop
}

// README quick start: divert embedded in a host's own accept loop. Every
// client connection is diverted to example.com:443 through two next proxies.
#include <asio.hpp>
#include <divert/divert.hpp>

asio::awaitable<void> serve(asio::ip::tcp::socket client, const divert::DivertTcpConnector& connector) {
  divert::Task task{.client = client.remote_endpoint(),
                    .server = client.local_endpoint(),
                    .upstream = divert::UpstreamAddr::parse("example.com:443"),
                    .username = "alice"};  // task id (UUID v7) generated
  divert::error_code ec;  // std::error_code; boost::system::error_code with Boost.Asio
  auto stream = co_await connector.tcp_connect(task, ec);  // PROXY v2 header already sent
  if (ec) co_return;                                       // e.g. connection_refused, timed_out
  co_await connector.relay(client, stream);                // both ways, half-close, speed limit
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
  auto connector = divert::DivertTcpConnector::builder()
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

// README: a callback host (no coroutines). The operation owns the Task and
// the streams; the handler gets the error, the stream and what was used.
#include <asio.hpp>
#include <cstdio>
#include <divert/divert.hpp>

void serve(asio::ip::tcp::socket client, const divert::DivertTcpConnector& connector) {
  divert::Task task{.client = client.remote_endpoint(),
                    .server = client.local_endpoint(),
                    .upstream = divert::UpstreamAddr::parse("example.com:443")};
  auto ex = client.get_executor();  // the stream's executor: a callback has none of its own
  connector.async_tcp_connect(
      ex, std::move(task), divert::with_info,
      [connector, client = std::move(client)](std::error_code ec, asio::ip::tcp::socket stream,
                                              divert::DivertInfo info) mutable {
        if (ec) {  // the task id for the access log, which hop failed for the client's reply
          std::printf("%s: %s%s\n", info.task_id.to_string().c_str(), ec.message().c_str(),
                      ec == divert::condition::next_proxy_failed ? " (next proxy)" : "");
          return;
        }
        connector.async_relay(std::move(client), std::move(stream),
                              [](std::error_code, divert::RelayResult r) {
                                std::printf("%llu bytes up, %llu down\n",
                                            static_cast<unsigned long long>(r.upload_bytes),
                                            static_cast<unsigned long long>(r.download_bytes));
                              });
      });
}

void accept(asio::ip::tcp::acceptor& acceptor, const divert::DivertTcpConnector& connector) {
  acceptor.async_accept([&](std::error_code ec, asio::ip::tcp::socket client) {
    if (ec) return;
    serve(std::move(client), connector);
    accept(acceptor, connector);
  });
}

int main() {
  auto connector = divert::DivertTcpConnector::builder().proxy_addr("127.0.0.1:3128").build();
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  accept(acceptor, connector);
  io.run_for(std::chrono::milliseconds(10));  // a real host runs until it is told to stop
}

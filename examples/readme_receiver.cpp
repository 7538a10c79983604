// README receiving side: a next proxy embedded in a host. Trusted peers send a
// PROXY v2 header naming the upstream (TLV 0xE0); the receiver checks it
// against its destination policy, connects, answers a status reply when asked
// (TLV 0xE7) and relays. One report per connection for the host's log.
#include <asio.hpp>
#include <divert/divert.hpp>
#include <iostream>

void accept_next(asio::ip::tcp::acceptor& acceptor, const divert::Receiver& receiver) {
  acceptor.async_accept([&](std::error_code ec, asio::ip::tcp::socket client) {
    if (ec) return;
    receiver.async_serve(std::move(client), [](divert::ServeReport r) {
      std::cout << divert::to_string(r.outcome) << " " << r.upstream
                << "\n";  // connected, denied..
    });
    accept_next(acceptor, receiver);
  });
}

int main() {
  divert::ReceiverOptions options;
  options.trust.add("10.0.0.0/8").add("::ffff:192.168.0.0/112");      // who may send headers
  options.destinations.deny(divert::net::Cidr::parse("10.0.0.0/8"));  // beside the default deny
  divert::Receiver receiver(std::move(options));  // idle timeout 300 s, header timeout 5 s

  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  receiver.guard_listen(acceptor.local_endpoint());  // loop guard: never connect to ourselves
  accept_next(acceptor, receiver);
  io.run_for(std::chrono::milliseconds(10));  // a real host runs until it is told to stop
}

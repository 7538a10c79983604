// Loopback peers for the health check's live tests: a listener that can be
// stopped and restarted on the same endpoint, serving each connection with a
// callback, on an io_context run by a background thread.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "divert/receiver.hpp"

namespace divert::test {

// An io_context run by one background thread until destruction.
class IoThread {
 public:
  IoThread() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  asio::io_context& io() { return io_; }
  // Runs `f` on the io thread and waits for it (bounded).
  template <class F>
  void run(F&& f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait_for(std::chrono::seconds(10));
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// Accepts on `endpoint` and hands every connection to `serve` (on the io
// thread) while started.
class Listener {
 public:
  using Serve = std::function<void(asio::ip::tcp::socket)>;
  Listener(IoThread& io, asio::ip::tcp::endpoint endpoint, Serve serve)
      : io_(io), endpoint_(endpoint), serve_(std::move(serve)) {}
  ~Listener() { stop(); }

  // Binds (port 0: any free port, kept for restarts) and accepts.
  void start() {
    io_.run([&] {
      acceptor_.emplace(io_.io(), endpoint_);  // SO_REUSEADDR: restarts bind at once
      endpoint_ = acceptor_->local_endpoint();
      accept(&*acceptor_);
    });
  }
  // Closes the listening socket: new connects are refused.
  void stop() {
    io_.run([&] { acceptor_.reset(); });
  }
  const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
  int accepted() const { return accepted_.load(); }

 private:
  void accept(asio::ip::tcp::acceptor* a) {
    a->async_accept([this, a](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;  // closed (the acceptor is gone: do not touch it)
      ++accepted_;
      serve_(std::move(s));
      accept(a);
    });
  }
  IoThread& io_;
  asio::ip::tcp::endpoint endpoint_;
  Serve serve_;
  std::optional<asio::ip::tcp::acceptor> acceptor_;
  std::atomic<int> accepted_{0};
};

// A divert Receiver (trusting loopback, loopback upstreams allowed) serving
// every connection accepted on `ip`, any port; its outcomes counted.
struct ReceiverPeer {
  IoThread io;
  std::shared_ptr<ReceiverMetrics> metrics = std::make_shared<ReceiverMetrics>();
  Receiver receiver{[this] {
    ReceiverOptions o;
    o.trust = TrustList::loopback();
    o.destinations.allow(net::Cidr::parse("127.0.0.0/8"));
    o.metrics = metrics;
    return o;
  }()};
  Listener listener;

  explicit ReceiverPeer(const char* ip)
      : listener(io, {asio::ip::make_address(ip), 0}, [this](asio::ip::tcp::socket s) {
          receiver.async_serve(std::move(s), [](ServeReport) {});
        }) {
    listener.start();
  }
  std::uint64_t count(ServeOutcome o) const { return metrics->connections(o); }
  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < kServeOutcomeCount; ++i)
      n += metrics->connections(static_cast<ServeOutcome>(i));
    return n;
  }
  std::string target() const {
    return listener.endpoint().address().to_string() + ":" +
           std::to_string(listener.endpoint().port());
  }
};

}  // namespace divert::test

// examples/common/server.hpp — the accept loop the example programs share:
// N threads, each with its own io_context and acceptor (all on one listening
// socket, or one SO_REUSEPORT socket each: AcceptMode), a coroutine per
// connection, and a clean stop on SIGINT/SIGTERM: stop accepting, let open
// connections drain up to a deadline, then stop the workers (what is still
// open closes when the Server is destroyed) and return from run(). SIGHUP
// calls ServerOptions::on_reload when one is set.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "divert/asio.hpp"
#include "divert/connector.hpp"
#include "divert/logger.hpp"

namespace divert::examples {

// One accepted connection. The peer comes from accept() itself and the local
// end from the listening address when that is a specific one, so a handler
// needs no getpeername()/getsockname() call (two system calls per connection).
struct Accepted {
  asio::ip::tcp::socket socket;
  asio::ip::tcp::endpoint peer;
  asio::ip::tcp::endpoint local;
};

using ConnectionHandler = std::function<asio::awaitable<void>(Accepted)>;

// How N worker threads share the incoming connections.
enum class AcceptMode {
  // One listening socket (one accept queue) in every worker's reactor: a new
  // connection wakes the workers waiting in epoll and the first one to call
  // accept() takes it; the others get EAGAIN. A worker busy with other
  // connections never holds a new one back while another is idle, which is
  // what keeps the latency tail short (chain_bench (c)). The cost is one
  // wake-up and one accept() per idle worker per connection: fine for a few
  // threads, wasteful for dozens.
  shared,
  // One SO_REUSEPORT socket per worker: the kernel spreads connections over
  // them by a hash of the addresses, evenly but blindly; a connection hashed to
  // a busy worker waits for it even when another is idle.
  reuseport,
};

struct ServerOptions {
  asio::ip::tcp::endpoint listen;
  unsigned threads = 1;
  // shared with one thread: one plain listening socket. reuseport sets
  // SO_REUSEPORT even with one thread (several processes may then share the
  // port, e.g. an old one draining while its replacement starts).
  AcceptMode accept = AcceptMode::shared;
  std::chrono::milliseconds drain_deadline{5000};
  std::string name = "divert";
  // TCP_NODELAY on the listening sockets: accepted sockets inherit it (Linux), so
  // no handler needs a setsockopt() per connection for it.
  bool no_delay = true;
  // Open connections at most (handlers running plus keep_open() holders, see
  // active(), which also counts the slot of each worker waiting in accept());
  // 0: no cap. At the cap the workers stop calling accept(), so new
  // connections wait in the kernel's listen backlog (no descriptor spent on
  // them) until one closes; past the backlog the kernel drops SYNs and
  // clients retry. Bounds the descriptors a flood can take: a handler uses a
  // few per connection (client, upstream, the relay's pipes).
  std::size_t max_connections = 10'000;
  // Called on each SIGHUP while run() runs, on the signal thread (one call at
  // a time, never concurrently with itself); an exception it throws is
  // printed and ignored. Empty: SIGHUP is left to its default action.
  std::function<void()> on_reload;
  // TCP Fast Open on the listening sockets (divert::net::enable_fast_open):
  // the pending Fast Open queue's length, 0: off. Takes effect only where
  // net.ipv4.tcp_fastopen has bit 1 (value 2) set.
  int fast_open_queue = 0;
};

class Server {
 public:
  Server(ServerOptions options, ConnectionHandler handler);
  ~Server();
  // Binds every acceptor (throws std::system_error naming the address on failure).
  void bind();
  // The bound endpoint (useful with port 0).
  asio::ip::tcp::endpoint local_endpoint() const;
  // Runs until SIGINT/SIGTERM (or stop()); returns after the drain.
  void run();
  void stop();
  std::size_t active() const noexcept { return active_.load(); }

  // Counts one connection as open (for the drain and max_connections) for as
  // long as it lives: a handler that hands its sockets to a detached operation
  // (async_relay) moves one into that operation's completion handler. (While
  // that handler still runs, the connection counts twice.)
  class OpenConnection {
   public:
    explicit OpenConnection(Server& s) : s_(&s) { ++s.active_; }
    OpenConnection(OpenConnection&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    OpenConnection& operator=(OpenConnection&&) = delete;
    ~OpenConnection() {
      if (s_) s_->connection_closed();
    }

   private:
    Server* s_;
  };
  OpenConnection keep_open() { return OpenConnection(*this); }

 private:
  struct Worker;
  asio::awaitable<void> accept_loop(Worker& w);
  // Counts one more connection unless at max_connections (then false). Any thread.
  bool claim_slot() noexcept;
  // One open connection less; wakes the workers paused at max_connections.
  // Any thread.
  void connection_closed() noexcept;
  ServerOptions opts_;
  ConnectionHandler handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<std::size_t> active_{0};
  std::atomic<bool> stopping_{false};
};

// Runs a connector's active health checks (key health_check; nothing when it
// is off, until a reload turns it on) on a thread of its own, from
// construction until destruction (which stops them).
class HealthCheckThread {
 public:
  explicit HealthCheckThread(const DivertTcpConnector& connector)
      : connector_(connector), work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {
    connector_.start_health_checks(io_.get_executor());
  }
  HealthCheckThread(const HealthCheckThread&) = delete;
  HealthCheckThread& operator=(const HealthCheckThread&) = delete;
  ~HealthCheckThread() {
    connector_.stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

 private:
  DivertTcpConnector connector_;  // a handle to the same connector
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// JSON string escaping for the one-line logs: divert::json_escape
// (divert/logger.hpp), valid UTF-8 whatever bytes a client sent.
using divert::json_escape;

}  // namespace divert::examples

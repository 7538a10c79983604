#include "common/server.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <iostream>
#include <thread>

#include "divert/net/socket_options.hpp"

namespace divert::examples {

struct Server::Worker {
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  asio::ip::tcp::endpoint bound;  // the listening address, port resolved
  // Never expires: accept_loop waits on it at max_connections, and
  // connection_closed() cancels it (through a post to this worker's io).
  asio::steady_timer resume{io};
};

Server::Server(ServerOptions options, ConnectionHandler handler)
    : opts_(std::move(options)), handler_(std::move(handler)) {
  if (opts_.threads == 0) opts_.threads = 1;
  for (unsigned i = 0; i < opts_.threads; ++i) workers_.push_back(std::make_unique<Worker>());
}

Server::~Server() = default;

void Server::bind() {
  auto ep = opts_.listen;
  const std::string where =
      opts_.listen.address().to_string() + ":" + std::to_string(opts_.listen.port());
  divert::error_code ec;
  auto check = [&](const char* what) {
    if (ec) throw std::system_error(ec, std::string(what) + " " + where);
  };
  // Hands a listening descriptor to an acceptor (closed if that fails).
  auto adopt = [&](asio::ip::tcp::acceptor& a, int fd) {
    if (fd < 0 && !ec) ec = std::error_code(errno, std::system_category());
    if (!ec) {
      a.assign(ep.protocol(), fd, ec);
      if (ec) ::close(fd);
    }
    check("cannot share the listener on");
  };
  const bool reuseport = opts_.accept == AcceptMode::reuseport;
  const bool shared = !reuseport && workers_.size() > 1;
  for (auto& w : workers_) {
    auto& a = w->acceptor;
    if (shared && w != workers_.front()) {
      // AcceptMode::shared: the first worker's listening socket, registered in
      // this worker's reactor under a descriptor of its own (each acceptor
      // closes its own; the socket stops listening when the last one does).
      adopt(a, ::fcntl(workers_.front()->acceptor.native_handle(), F_DUPFD_CLOEXEC, 0));
      w->bound = ep;
      continue;
    }
    a.open(ep.protocol(), ec);
    check("cannot open a socket to listen on");
    a.set_option(asio::socket_base::reuse_address(true), ec);
    check("cannot set SO_REUSEADDR to listen on");
    if (opts_.no_delay) a.set_option(asio::ip::tcp::no_delay(true), ec);  // inherited on accept
    check("cannot set TCP_NODELAY to listen on");
    if (reuseport) {
      int one = 1;
      if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = std::error_code(errno, std::system_category());
      check("cannot set SO_REUSEPORT to listen on");
    }
    a.bind(ep, ec);
    check("cannot listen on");
    a.listen(asio::socket_base::max_listen_connections, ec);
    check("cannot listen on");
    if (opts_.fast_open_queue > 0) ec = net::enable_fast_open(a, opts_.fast_open_queue);
    check("cannot enable TCP Fast Open on");
    // Asio skips EPOLL_CTL_DEL when it closes a descriptor it opened itself
    // (close() ends the registration), but in shared mode a duplicate keeps
    // this socket open: re-adopted with assign(), the acceptor is marked as
    // possibly duplicated and deregisters explicitly when it closes.
    if (shared) adopt(a, a.release(ec));
    ep = a.local_endpoint();  // port 0: every worker shares the first one's port
    w->bound = ep;
  }
}

asio::ip::tcp::endpoint Server::local_endpoint() const {
  return workers_.front()->acceptor.local_endpoint();
}

bool Server::claim_slot() noexcept {
  auto n = active_.load();
  do {
    if (opts_.max_connections > 0 && n >= opts_.max_connections) return false;
  } while (!active_.compare_exchange_weak(n, n + 1));
  return true;
}

asio::awaitable<void> Server::accept_loop(Worker& w) {
  for (;;) {
    // The connection's slot is taken before accept(): several workers woken
    // at once could otherwise each accept one, past the cap.
    while (!claim_slot()) {
      // At the cap: no accept() until a connection closes; new ones wait in
      // the listen backlog. The check and the wait start in one step on this
      // worker's only thread, and the wake-up is posted to it, so none is lost.
      w.resume.expires_at(asio::steady_timer::time_point::max());
      co_await w.resume.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      if (!w.acceptor.is_open()) co_return;
    }
    asio::ip::tcp::endpoint peer;
    auto [ec, sock] =
        co_await w.acceptor.async_accept(peer, asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !w.acceptor.is_open()) {
      connection_closed();  // the slot taken for it
      co_return;
    }
    if (ec) {
      connection_closed();
      // EMFILE and friends: back off a little instead of spinning.
      asio::steady_timer t(w.io, std::chrono::milliseconds(50));
      co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::ip::tcp::endpoint local = w.bound;
    if (local.address().is_unspecified()) {  // a wildcard listener: ask which address
      local = sock.local_endpoint(ec);
      if (ec) {  // already gone; the socket closes here
        connection_closed();
        continue;
      }
    }
    Accepted conn{std::move(sock), peer, local};
    asio::co_spawn(w.io, handler_(std::move(conn)), [this](std::exception_ptr e) {
      connection_closed();
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::cerr << opts_.name << ": connection failed: " << ex.what() << "\n";
        }
      }
    });
  }
}

void Server::connection_closed() noexcept {
  if (active_.fetch_sub(1) != opts_.max_connections) return;
  // Just went below the cap: wake every worker that may be paused.
  for (auto& w : workers_) asio::post(w->io, [&w = *w] { w.resume.cancel(); });
}

void Server::stop() {
  // Only the flag: run() closes the acceptors itself, so stop() touches nothing
  // that run()'s return could free, from whichever thread it is called.
  if (stopping_.exchange(true)) return;
  stopping_.notify_all();
}

void Server::run() {
  asio::io_context signals_io(1);
  asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  signals.async_wait([this](divert::error_code ec, int) {
    if (!ec) stop();
  });
  asio::signal_set reload_signal(signals_io);
  std::function<void()> wait_reload = [&] {
    reload_signal.async_wait([&](divert::error_code ec, int) {
      if (ec) return;
      try {
        opts_.on_reload();
      } catch (const std::exception& e) {
        std::cerr << opts_.name << ": reload failed: " << e.what() << "\n";
      }
      wait_reload();
    });
  };
  if (opts_.on_reload) {
    reload_signal.add(SIGHUP);
    wait_reload();
  }
  std::thread signal_thread([&] { signals_io.run(); });

  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& w : workers_) {
    guards.push_back(asio::make_work_guard(w->io));
    asio::co_spawn(w->io, accept_loop(*w), asio::detached);
    threads.emplace_back([&io = w->io] { io.run(); });
  }
  stopping_.wait(false);  // blocks (a futex) until stop(): no periodic wake-ups beside the workers
  // Stop accepting: each worker closes its own acceptor on its own thread, and
  // the drain starts once every one has.
  std::vector<std::future<void>> closed;
  for (auto& w : workers_) {
    auto done = std::make_shared<std::promise<void>>();
    closed.push_back(done->get_future());
    asio::post(w->io, [&w = *w, done] {
      divert::error_code ec;
      w.acceptor.close(ec);
      w.resume.cancel();  // a loop paused at max_connections ends too
      done->set_value();
    });
  }
  for (auto& f : closed) f.wait();
  // Drain: open connections finish on their own up to the deadline.
  auto deadline = std::chrono::steady_clock::now() + opts_.drain_deadline;
  while (active_.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (active_.load() > 0)
    std::cerr << opts_.name << ": " << active_.load()
              << " connection(s) still open after the drain deadline; closing\n";
  guards.clear();
  for (auto& w : workers_) w->io.stop();
  for (auto& t : threads) t.join();
  signals_io.stop();
  signal_thread.join();
}

}  // namespace divert::examples

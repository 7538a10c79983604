#include "divert/net/connect.hpp"

#include <cerrno>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include "divert/asio/associated_cancellation_slot.hpp"
#include "divert/asio/associated_executor.hpp"
#include "divert/asio/async_result.hpp"
#include "divert/asio/bind_cancellation_slot.hpp"
#include "divert/asio/bind_executor.hpp"
#include "divert/asio/cancellation_signal.hpp"
#include "divert/asio/dispatch.hpp"
#include "divert/asio/error.hpp"
#include "divert/asio/post.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/this_coro.hpp"
#include "divert/asio/use_awaitable.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "divert/error.hpp"
#include "divert/net/happy_eyeballs_planner.hpp"
#include "divert/net/socket_options.hpp"

namespace divert::net {
namespace {

using tcp = asio::ip::tcp;
using Kind = PlannerAction::Kind;

std::uint64_t next_seed() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen();
}

error_code socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return err ? error_code(err, asio::error::get_system_category()) : error_code();
}

// TCP Fast Open for the next connect(2) on `fd` (TCP_FASTOPEN_CONNECT:
// connect(2) then returns at once without sending anything, and the first
// write sends the SYN, with data when the kernel holds a cookie for the
// peer). False where the kernel refuses it (net.ipv4.tcp_fastopen without
// bit 0: EOPNOTSUPP; a platform without the option): a plain connect then.
bool fast_open_connect(int fd) {
#ifdef TCP_FASTOPEN_CONNECT
  int one = 1;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) == 0;
#else
  (void)fd;
  return false;
#endif
}

// The first write on a socket whose connect(2) Fast Open deferred: sends the
// SYN carrying as much of `syn` as the kernel puts in it (all of a PROXY
// header and a few client bytes: up to about one MSS), or a plain SYN with a
// cookie request when no cookie is cached (EINPROGRESS, 0 bytes taken). The
// handshake then goes on as for any non-blocking connect. Returns the bytes
// taken; a real failure (no route, ...) is set in `ec`.
std::size_t send_syn(int fd, const SynData& syn, error_code& ec) {
  iovec iov[2] = {{const_cast<void*>(syn.first.data()), syn.first.size()},
                  {const_cast<void*>(syn.second.data()), syn.second.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<std::size_t>(n);
  if (errno != EINPROGRESS && errno != EAGAIN && errno != EWOULDBLOCK)
    ec.assign(errno, asio::error::get_system_category());
  return 0;
}

// connect(2) on `s` made non-blocking, then a zero-timeout poll: a peer on
// this host (loopback, a local address) has finished the handshake by the
// time connect(2) returns. True when the attempt is over (`ec` says how),
// false while it is still in progress. POLLOUT alone means established (a
// socket in SYN_SENT is not writable); SO_ERROR is read only when poll
// reports an error or hangup. With `syn` (non-empty; ConnectOptions::
// tcp_fast_open) the SYN goes out with send_syn() and `syn_bytes` is what it
// took: the attempt still completes only once the handshake has, so connect
// errors and timeouts are reported as without Fast Open.
bool connect_at_once(tcp::socket& s, const tcp::endpoint& endpoint, error_code& ec,
                     const SynData* syn = nullptr, std::size_t* syn_bytes = nullptr) {
  s.native_non_blocking(true, ec);
  if (ec) return true;
  const int fd = s.native_handle();
  const bool fast_open = syn && syn->size() > 0 && fast_open_connect(fd);
  if (::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) == 0) {
    if (!fast_open) return true;
    *syn_bytes = send_syn(fd, *syn, ec);  // deferred by Fast Open: the SYN leaves here
    if (ec) return true;
  } else if (errno != EINPROGRESS && errno != EINTR) {
    ec.assign(errno, asio::error::get_system_category());
    return true;
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) ec = socket_error(fd);
  return true;
}

// Type-erased, move-only completion handler (Asio handlers such as
// use_awaitable's are move-only, so std::function cannot hold them).
struct Completion {
  virtual ~Completion() = default;
  virtual void complete(ConnectResult r, bool may_dispatch) = 0;
};

template <class Handler>
struct CompletionImpl final : Completion {
  CompletionImpl(Handler h, asio::any_io_executor fallback)
      : handler(std::move(h)), fallback(std::move(fallback)) {}
  void complete(ConnectResult r, bool may_dispatch) override {
    auto ex = asio::get_associated_executor(handler, fallback);
    auto f = [h = std::move(handler), r = std::move(r)]() mutable { std::move(h)(std::move(r)); };
    // Dispatched (inline when already on the caller's executor: saves a trip
    // through the scheduler) except while still inside the initiating call,
    // where a completion must never run inline.
    if (may_dispatch)
      asio::dispatch(ex, std::move(f));
    else
      asio::post(ex, std::move(f));
  }
  Handler handler;
  asio::any_io_executor fallback;
};

// One connect: owns the planner, the timer and every attempt's socket.
// Handlers run on the caller's executor (possibly several threads); every
// entry point takes `mutex_`, which serialises all state. (A mutex rather
// than a strand: it costs no allocation and no extra dispatch per event, and
// the race has only a handful of short events.) The completion handler is
// always invoked after the mutex is released. Handlers hold a shared_ptr.
class Race : public std::enable_shared_from_this<Race> {
 public:
  Race(asio::any_io_executor ex, std::string host, std::optional<asio::ip::address> literal,
       std::uint16_t port, ConnectOptions options, std::shared_ptr<Resolver> resolver, SynData syn,
       std::unique_ptr<Completion> completion)
      : ex_(ex),
        timer_(ex),
        host_(std::move(host)),
        literal_(literal),
        port_(port),
        options_(std::move(options)),
        resolver_(std::move(resolver)),
        syn_(options_.tcp_fast_open ? syn : SynData{}),
        planner_(options_, next_seed()),
        completion_(std::move(completion)) {}

  void set_slot(asio::cancellation_slot slot) { slot_ = slot; }

  // Called once from the initiating function.
  void start() {
    std::unique_lock lock(mutex_);
    do_start();
    // Never complete inline from the initiating function: post instead.
    if (pending_) {
      Pending p = std::move(*pending_);
      pending_.reset();
      lock.unlock();
      p.fire(false);
    }
  }

  // From the caller's cancellation slot (any thread, possibly while the
  // emitter holds its own locks): handled in a posted handler.
  void cancel() {
    asio::post(ex_, [self = shared_from_this()] {
      self->locked([&] {
        if (!self->done_) self->complete(asio::error::operation_aborted, PlannerAction::npos);
      });
    });
  }

 private:
  struct Pending {
    std::unique_ptr<Completion> completion;
    ConnectResult result;
    void fire(bool may_dispatch) { completion->complete(std::move(result), may_dispatch); }
  };

  // Runs f under the mutex, then delivers a completion it produced.
  template <class F>
  void locked(F&& f) {
    std::unique_lock lock(mutex_);
    f();
    if (pending_) {
      Pending p = std::move(*pending_);
      pending_.reset();
      lock.unlock();
      p.fire(true);
    }
  }

  void do_start() {
    error_code ec;
    asio::ip::address address;
    if (literal_) {
      address = *literal_;  // connect_with_retry: no text round trip
    } else {
      std::string_view literal = host_;
      if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']')
        literal = literal.substr(1, literal.size() - 2);
      address = asio::ip::make_address(literal, ec);
    }
    attempts_.reserve(ec ? 2 * (options_.tcp_connect.max_retry + 1) : 1);
    auto now = HappyEyeballsPlanner::Clock::now();
    apply(ec ? planner_.start(now) : planner_.start_with_address(address, now));
  }

  void apply(const HappyEyeballsPlanner::Actions& actions) {
    for (const auto& a : actions) {
      if (done_) return;
      switch (a.kind) {
        case Kind::resolve:
          resolve(a.family);
          break;
        case Kind::connect:
          connect(a);
          break;
        case Kind::cancel:
          close(a.attempt);
          break;
        case Kind::done:
          complete(a.error, a.attempt);
          return;
      }
    }
    rearm();
  }

  void resolve(AddressFamily f) {
    auto self = shared_from_this();
    auto deliver = [self, f](error_code ec, std::vector<asio::ip::address> addrs) {
      // A late answer after completion (a query cannot be cancelled) is
      // dropped here.
      self->locked([&] {
        if (self->done_) return;
        self->apply(self->planner_.on_resolved(f, ec, std::move(addrs),
                                               HappyEyeballsPlanner::Clock::now()));
      });
    };
    if (!resolver_) {
      asio::post(ex_, [deliver] { deliver(make_error_code(errc::resolve_failed), {}); });
      return;
    }
    // Contract: the resolver calls back through ex_, never inline.
    resolver_->async_resolve(host_, f, ex_, std::move(deliver));
  }

  void connect(const PlannerAction& a) {
    const std::size_t i = a.attempt;
    auto self = shared_from_this();
    if (attempts_.size() == attempts_.capacity()) {  // cannot happen (R6); never move sockets
      asio::post(ex_, [self, i] {
        self->on_connect(i, std::make_error_code(std::errc::too_many_files_open));
      });
      return;
    }
    auto& slot = attempts_.emplace_back(ex_, tcp::endpoint(a.address, port_));  // index == id
    auto r = open_configured_socket(slot.socket, a.family, options_);
    if (r) {
      slot.option = r.option;
      asio::post(ex_, [self, i, ec = r.error] { self->on_connect(i, ec); });
      return;
    }
    start_connect(i);
  }

  // connect(2) on the non-blocking socket, then a zero-timeout poll: a next
  // proxy on the same host (loopback, a local address) has finished the
  // handshake by the time connect(2) returns, so the attempt completes here —
  // without registering for writability, waiting for the reactor or arming
  // the attempt's timer (rearm() skips it while such a result is queued).
  // Otherwise the socket is watched for writability and SO_ERROR read then,
  // as async_connect would. Either way on_connect() runs from a posted
  // handler, never inside the planner's action loop.
  void start_connect(std::size_t i) {
    auto self = shared_from_this();
    auto& slot = attempts_[i];
    error_code ec;
    // Only the first attempt carries the SYN data (see ConnectOptions::tcp_fast_open).
    const SynData* syn = i == 0 ? &syn_ : nullptr;
    if (connect_at_once(slot.socket, slot.endpoint, ec, syn, &slot.syn_bytes)) {
      ++immediate_;
      asio::post(ex_, [self, i, ec] { self->on_connect(i, ec, Finish::immediate); });
      return;
    }
    slot.socket.async_wait(tcp::socket::wait_write,
                           [self, i](error_code ec) { self->on_connect(i, ec, Finish::writable); });
  }

  // How an attempt's result reached on_connect(): as given, from
  // start_connect() (one fewer queued immediate result), or as writability
  // (the result is then SO_ERROR, read here under the mutex).
  enum class Finish { given, immediate, writable };

  void on_connect(std::size_t i, error_code ec, Finish how = Finish::given) {
    locked([&] {
      if (how == Finish::immediate) --immediate_;
      if (how == Finish::writable && !ec) {
        const bool open = i < attempts_.size() && attempts_[i].socket.is_open();
        ec = open ? socket_error(attempts_[i].socket.native_handle())
                  : error_code(asio::error::operation_aborted);
      }
      if (done_) return;
      if (ec) close(i);  // a loser is closed at once
      apply(planner_.on_attempt_done(i, ec, HappyEyeballsPlanner::Clock::now()));
    });
  }

  void close(std::size_t i) {
    if (i >= attempts_.size()) return;
    error_code ignored;
    attempts_[i].socket.close(ignored);
  }

  void rearm() {
    if (immediate_ > 0) return;  // an attempt already finished; its handler is queued
    auto w = planner_.next_wakeup();
    if (w == armed_) return;
    armed_ = w;
    ++timer_generation_;
    if (!w) {
      timer_.cancel();
      return;
    }
    timer_.expires_at(*w);
    timer_.async_wait([self = shared_from_this(), g = timer_generation_](error_code) {
      self->locked([&] {
        if (self->done_ || g != self->timer_generation_) return;
        self->armed_.reset();
        self->apply(self->planner_.on_timer(HappyEyeballsPlanner::Clock::now()));
      });
    });
  }

  // Closes every socket but the winner's and prepares the completion; it is
  // delivered by locked()/start() once the mutex is released.
  void complete(error_code error, std::size_t attempt) {
    done_ = true;
    ConnectResult r{error, nullptr, std::nullopt, {}};
    if (attempt != PlannerAction::npos && attempt < attempts_.size()) {
      r.peer = attempts_[attempt].endpoint;
      if (!error) {
        r.socket.emplace(std::move(attempts_[attempt].socket));
        r.syn_bytes = attempts_[attempt].syn_bytes;
      } else
        r.option = attempts_[attempt].option;
    }
    for (std::size_t i = 0; i < attempts_.size(); ++i) close(i);  // every loser, now
    timer_.cancel();
    if (slot_.is_connected()) slot_.clear();
    pending_.emplace(Pending{std::move(completion_), std::move(r)});
  }

  asio::any_io_executor ex_;
  std::mutex mutex_;
  asio::steady_timer timer_;
  std::string host_;
  std::optional<asio::ip::address> literal_;
  std::uint16_t port_;
  ConnectOptions options_;
  std::shared_ptr<Resolver> resolver_;
  SynData syn_;  // empty unless options_.tcp_fast_open
  HappyEyeballsPlanner planner_;
  std::unique_ptr<Completion> completion_;
  std::optional<Pending> pending_;
  asio::cancellation_slot slot_;
  struct AttemptSlot {
    explicit AttemptSlot(const asio::any_io_executor& ex, tcp::endpoint ep)
        : socket(ex), endpoint(ep) {}
    tcp::socket socket;
    tcp::endpoint endpoint;
    const char* option = nullptr;  // socket option that failed, if any
    std::size_t syn_bytes = 0;     // of syn_, taken with this attempt's SYN
  };
  // Reserved up front for the most attempts the planner can start, so that a
  // socket never moves while it is connecting.
  std::vector<AttemptSlot> attempts_;
  std::optional<HappyEyeballsPlanner::TimePoint> armed_;
  std::uint64_t timer_generation_ = 0;
  int immediate_ = 0;  // attempts finished in start_connect() whose on_connect() is queued
  bool done_ = false;
};

// The race runs on the completion handler's executor: for
// use_awaitable, the awaiting coroutine's executor.
template <class Token>
auto async_race(std::string host, std::optional<asio::ip::address> literal, std::uint16_t port,
                ConnectOptions options, std::shared_ptr<Resolver> resolver, SynData syn,
                Token&& token) {
  return asio::async_initiate<Token, void(ConnectResult)>(
      [](auto handler, std::string host, std::optional<asio::ip::address> literal,
         std::uint16_t port, ConnectOptions options, std::shared_ptr<Resolver> resolver,
         SynData syn) {
        using H = std::decay_t<decltype(handler)>;
        asio::any_io_executor ex = asio::get_associated_executor(handler);
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto race = std::make_shared<Race>(
            ex, std::move(host), literal, port, std::move(options), std::move(resolver), syn,
            std::make_unique<CompletionImpl<H>>(std::move(handler), ex));
        if (slot.is_connected()) {
          race->set_slot(slot);
          slot.assign([w = std::weak_ptr<Race>(race)](asio::cancellation_type) {
            if (auto r = w.lock()) r->cancel();
          });
        }
        race->start();
      },
      token, std::move(host), literal, port, std::move(options), std::move(resolver), syn);
}

}  // namespace

asio::awaitable<ConnectResult> happy_eyeballs_connect(std::string host, std::uint16_t port,
                                                      ConnectOptions options,
                                                      std::shared_ptr<Resolver> resolver,
                                                      SynData syn) {
  // Not a coroutine itself: returns the operation's awaitable directly.
  return async_race(std::move(host), std::nullopt, port, std::move(options), std::move(resolver),
                    syn, asio::use_awaitable);
}

void start_happy_eyeballs(asio::any_io_executor ex, std::string host, std::uint16_t port,
                          ConnectOptions options, std::shared_ptr<Resolver> resolver,
                          detail::ErasedHandler<divert::error_code, tcp::socket> handler) {
  auto slot = handler.cancellation_slot();
  async_race(
      std::move(host), std::nullopt, port, std::move(options), std::move(resolver), SynData{},
      asio::bind_cancellation_slot(
          slot, asio::bind_executor(ex, [h = std::move(handler), ex](ConnectResult r) mutable {
            h(r.error, r.socket ? std::move(*r.socket) : tcp::socket(ex));
          })));
}

namespace {

// The first try at a loopback next proxy (one on this host, the sidecar
// layout): Linux completes a loopback handshake inside connect(2), so the try
// is made here, with no Race object, timer or posted handler, and its result
// is returned without the caller suspending. nullopt when the try is still in
// progress (a listener whose queue is full dropped the SYN): the socket
// closes here, unconnected, and the race makes that try instead.
std::optional<ConnectResult> try_loopback_now(const asio::any_io_executor& ex,
                                              const tcp::endpoint& endpoint,
                                              const ConnectOptions& options, const SynData& syn) {
  ConnectResult r;
  r.peer = endpoint;
  tcp::socket s(ex);
  const auto family = endpoint.address().is_v4() ? AddressFamily::ipv4 : AddressFamily::ipv6;
  if (!options.family_allowed(family)) {  // as the planner decides it
    r.error = std::make_error_code(std::errc::address_family_not_supported);
    return r;
  }
  if (auto o = open_configured_socket(s, family, options)) {
    r.error = o.error;
    r.option = o.option;
    return r;
  }
  const SynData* fast_open = options.tcp_fast_open ? &syn : nullptr;
  if (!connect_at_once(s, endpoint, r.error, fast_open, &r.syn_bytes)) return std::nullopt;
  if (r.error) return r;
  r.socket.emplace(std::move(s));
  return r;
}

// The retry rule of connect_with_retry(): no retry after success, cancellation,
// a refused family or a socket option the OS rejects (it would fail again the
// same way), nor after the last try.
bool final_try(const ConnectResult& r, std::size_t t, std::size_t tries) {
  return !r.error || r.option || t + 1 >= tries || r.error == asio::error::operation_aborted ||
         r.error == std::errc::address_family_not_supported;
}

}  // namespace

asio::awaitable<ConnectResult> connect_with_retry(tcp::endpoint endpoint, ConnectOptions options,
                                                  SynData syn) {
  auto cs = co_await asio::this_coro::cancellation_state;
  const asio::ip::address address = endpoint.address();
  const std::size_t tries = options.tcp_connect.max_retry + 1;
  std::size_t t = 0;
  if (address.is_loopback()) {
    if (auto r = try_loopback_now(co_await asio::this_coro::executor, endpoint, options, syn)) {
      if (final_try(*r, t, tries)) co_return std::move(*r);
      ++t;
    }
  }
  for (;; ++t) {
    // Only the first try carries the SYN data (see ConnectOptions::tcp_fast_open).
    ConnectResult r = co_await async_race(std::string(), address, endpoint.port(), options, nullptr,
                                          t == 0 ? syn : SynData{}, asio::use_awaitable);
    if (final_try(r, t, tries)) co_return r;
    if (cs.cancelled() != asio::cancellation_type::none) {
      r.error = asio::error::operation_aborted;
      co_return r;
    }
  }
}

}  // namespace divert::net

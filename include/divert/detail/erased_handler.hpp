// divert/detail/erased_handler.hpp — internal to divert's initiating functions
// (not an API): a move-only, type-erased Asio completion handler, so that
// compiled code can complete the handler of any completion token (Asio 1.22
// has no any_completion_handler), and the choice of the executor an
// operation's I/O objects use.
#pragma once

#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "divert/asio/any_io_executor.hpp"
#include "divert/asio/associated_cancellation_slot.hpp"
#include "divert/asio/associated_executor.hpp"
#include "divert/asio/cancellation_signal.hpp"
#include "divert/asio/dispatch.hpp"
#include "divert/asio/executor_work_guard.hpp"

#include "divert/asio.hpp"

namespace divert::detail {

// Marks "no executor given": the handler's associated executor is used.
struct NoExecutor {};

// True when Handler has an associated executor that can run I/O objects
// (a coroutine's, a strand's bound with asio::bind_executor, ...): not the
// system executor a plain callback falls back to, nor use_future's.
template <class Handler>
inline constexpr bool has_io_executor =
    !std::is_same_v<asio::associated_executor_t<Handler, NoExecutor>, NoExecutor> &&
    std::is_convertible_v<asio::associated_executor_t<Handler, NoExecutor>, asio::any_io_executor>;

// The executor of the I/O objects (sockets, timers) of an operation started
// for `handler`: `ex` when the caller gave one, else the handler's own.
template <class Handler, class Executor>
asio::any_io_executor io_executor_for(const Handler& handler, const Executor& ex) {
  if constexpr (std::is_same_v<Executor, NoExecutor>) {
    static_assert(
        has_io_executor<Handler>,
        "divert: this completion handler has no I/O executor (a plain callback, "
        "use_future): pass one first, e.g. connector.async_tcp_connect(io.get_executor(), "
        "task, token), or bind one with asio::bind_executor");
    return asio::get_associated_executor(handler);
  } else {
    return ex;
  }
}

// A completion handler taking Args..., erased. Called at most once, through
// the handler's associated executor (asio::dispatch), keeping that executor's
// work count up until then. With DropLast the handler takes all but the last
// argument (the forms without DivertInfo).
template <class... Args>
class ErasedHandler {
 public:
  ErasedHandler() = default;

  template <bool DropLast, class Handler>
  ErasedHandler(std::bool_constant<DropLast>, Handler handler, const asio::any_io_executor& io_ex)
      : slot_(asio::get_associated_cancellation_slot(handler)),
        impl_(std::make_unique<Impl<Handler, DropLast>>(std::move(handler), io_ex)) {}

  // The handler's associated cancellation slot (may be unconnected).
  asio::cancellation_slot cancellation_slot() const noexcept { return slot_; }

  explicit operator bool() const noexcept { return impl_ != nullptr; }

  void operator()(Args... args) {
    auto impl = std::move(impl_);
    impl->call(std::tuple<Args...>(std::move(args)...));
  }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call(std::tuple<Args...> args) = 0;
  };

  template <class Handler, bool DropLast>
  struct Impl final : Base {
    using Executor = asio::associated_executor_t<Handler, asio::any_io_executor>;
    Impl(Handler h, const asio::any_io_executor& io_ex)
        : handler(std::move(h)), work(asio::get_associated_executor(handler, io_ex)) {}

    void call(std::tuple<Args...> args) override {
      auto ex = work.get_executor();
      asio::dispatch(ex,
                     [h = std::move(handler), w = std::move(work), a = std::move(args)]() mutable {
                       constexpr std::size_t n = sizeof...(Args) - (DropLast ? 1 : 0);
                       invoke(std::move(h), std::move(a), std::make_index_sequence<n>());
                     });
    }

    template <std::size_t... I>
    static void invoke(Handler h, std::tuple<Args...> a, std::index_sequence<I...>) {
      std::move(h)(std::get<I>(std::move(a))...);
    }

    Handler handler;
    asio::executor_work_guard<Executor> work;
  };

  asio::cancellation_slot slot_;
  std::unique_ptr<Base> impl_;
};

// Adapts a handler taking (error_code, Result) to an operation completing with
// (Result) whose error is Result::error. Shows the operation the handler's
// cancellation slot, calls the handler through its associated executor
// whichever thread completes,
// and keeps `keep` (what must live as long as the operation, e.g. a
// connector handle) alive until the call.
template <class Handler, class Keep>
struct ErrorFirst {
  using Executor = asio::associated_executor_t<Handler, asio::any_io_executor>;
  ErrorFirst(Handler h, Keep k, const asio::any_io_executor& io_ex)
      : handler(std::move(h)),
        keep(std::move(k)),
        work(asio::get_associated_executor(handler, io_ex)) {}

  template <class Result>
  void operator()(Result r) {
    auto ex = work.get_executor();
    asio::dispatch(ex, [h = std::move(handler), k = std::move(keep), w = std::move(work),
                        r = std::move(r)]() mutable {
      auto ec = r.error;
      std::move(h)(ec, std::move(r));
    });
  }

  Handler handler;
  Keep keep;
  asio::executor_work_guard<Executor> work;
};

}  // namespace divert::detail

// ErrorFirst shows the operation its handler's cancellation slot, not its
// executor: it dispatches to that itself, so the operation runs on its I/O
// objects' executor (a handler's executor may be no I/O executor: use_future).
// (Spelt divert::asio:: at global scope: ::asio or ::boost::asio by flavour.)
template <class Handler, class Keep, class Slot>
struct divert::asio::associated_cancellation_slot<divert::detail::ErrorFirst<Handler, Keep>, Slot> {
  using type = divert::asio::associated_cancellation_slot_t<Handler, Slot>;
  static type get(const divert::detail::ErrorFirst<Handler, Keep>& h,
                  const Slot& s = Slot()) noexcept {
    return divert::asio::get_associated_cancellation_slot(h.handler, s);
  }
};

// divert/detail/spawn_for_handler.hpp — runs a coroutine that computes an
// operation's result and completes an Asio handler with it, the way an
// initiating function must: on the handler's associated executor (default: the
// coroutine's), with the handler's cancellation slot cancelling the coroutine.
#pragma once

#include <exception>
#include <tuple>
#include <utility>
#include "divert/asio/bind_cancellation_slot.hpp"
#include "divert/asio/bind_executor.hpp"
#include "divert/asio/co_spawn.hpp"

#include "divert/asio.hpp"

namespace divert::detail {

// `op` yields T; the handler is called with T, or with the elements of T when
// T is a std::pair/std::tuple (so that void(error_code, X) handlers work).
template <class T, class Handler>
void spawn_for_handler(const asio::any_io_executor& ex, asio::awaitable<T> op, Handler handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto handler_ex = asio::get_associated_executor(handler, ex);
  asio::co_spawn(
      ex, std::move(op),
      asio::bind_cancellation_slot(
          slot, asio::bind_executor(
                    handler_ex, [h = std::move(handler)](std::exception_ptr e, T result) mutable {
                      if (e)
                        std::rethrow_exception(e);  // bad_alloc only: the operations do not throw
                      if constexpr (requires { std::tuple_size<T>::value; })
                        std::apply(std::move(h), std::move(result));
                      else
                        std::move(h)(std::move(result));
                    })));
}

}  // namespace divert::detail

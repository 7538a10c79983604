// divert/asio/experimental/awaitable_operators.hpp — from the Asio divert is built with:
//   <asio/experimental/awaitable_operators.hpp>
//   or <boost/asio/experimental/awaitable_operators.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/experimental/awaitable_operators.hpp>
#else
#include <asio/experimental/awaitable_operators.hpp>
#endif

#include "divert/asio.hpp"

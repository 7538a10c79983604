// divert/asio/this_coro.hpp — from the Asio divert is built with:
//   <asio/this_coro.hpp>
//   or <boost/asio/this_coro.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/this_coro.hpp>
#else
#include <asio/this_coro.hpp>
#endif

#include "divert/asio.hpp"

// divert/asio/awaitable.hpp — from the Asio divert is built with:
//   <asio/awaitable.hpp>
//   or <boost/asio/awaitable.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/awaitable.hpp>
#else
#include <asio/awaitable.hpp>
#endif

#include "divert/asio.hpp"

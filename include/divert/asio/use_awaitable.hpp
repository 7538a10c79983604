// divert/asio/use_awaitable.hpp — from the Asio divert is built with:
//   <asio/use_awaitable.hpp>
//   or <boost/asio/use_awaitable.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/use_awaitable.hpp>
#else
#include <asio/use_awaitable.hpp>
#endif

#include "divert/asio.hpp"

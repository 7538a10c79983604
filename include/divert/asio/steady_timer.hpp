// divert/asio/steady_timer.hpp — from the Asio divert is built with:
//   <asio/steady_timer.hpp>
//   or <boost/asio/steady_timer.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/steady_timer.hpp>
#else
#include <asio/steady_timer.hpp>
#endif

#include "divert/asio.hpp"

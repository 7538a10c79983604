// divert/asio/co_spawn.hpp — from the Asio divert is built with:
//   <asio/co_spawn.hpp>
//   or <boost/asio/co_spawn.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/co_spawn.hpp>
#else
#include <asio/co_spawn.hpp>
#endif

#include "divert/asio.hpp"

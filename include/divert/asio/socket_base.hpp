// divert/asio/socket_base.hpp — from the Asio divert is built with:
//   <asio/socket_base.hpp>
//   or <boost/asio/socket_base.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/socket_base.hpp>
#else
#include <asio/socket_base.hpp>
#endif

#include "divert/asio.hpp"

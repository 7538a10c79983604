// divert/asio/ssl/error.hpp — from the Asio divert is built with:
//   <asio/ssl/error.hpp>
//   or <boost/asio/ssl/error.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ssl/error.hpp>
#else
#include <asio/ssl/error.hpp>
#endif

#include "divert/asio.hpp"

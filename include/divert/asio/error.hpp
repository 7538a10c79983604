// divert/asio/error.hpp — from the Asio divert is built with:
//   <asio/error.hpp>
//   or <boost/asio/error.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/error.hpp>
#else
#include <asio/error.hpp>
#endif

#include "divert/asio.hpp"

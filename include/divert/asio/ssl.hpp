// divert/asio/ssl.hpp — from the Asio divert is built with:
//   <asio/ssl.hpp>
//   or <boost/asio/ssl.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ssl.hpp>
#else
#include <asio/ssl.hpp>
#endif

#include "divert/asio.hpp"

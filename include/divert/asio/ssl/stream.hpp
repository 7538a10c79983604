// divert/asio/ssl/stream.hpp — from the Asio divert is built with:
//   <asio/ssl/stream.hpp>
//   or <boost/asio/ssl/stream.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ssl/stream.hpp>
#else
#include <asio/ssl/stream.hpp>
#endif

#include "divert/asio.hpp"

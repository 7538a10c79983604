// divert/asio/ssl/context.hpp — from the Asio divert is built with:
//   <asio/ssl/context.hpp>
//   or <boost/asio/ssl/context.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ssl/context.hpp>
#else
#include <asio/ssl/context.hpp>
#endif

#include "divert/asio.hpp"

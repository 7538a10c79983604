// divert/asio/redirect_error.hpp — from the Asio divert is built with:
//   <asio/redirect_error.hpp>
//   or <boost/asio/redirect_error.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/redirect_error.hpp>
#else
#include <asio/redirect_error.hpp>
#endif

#include "divert/asio.hpp"

// divert/asio/dispatch.hpp — from the Asio divert is built with:
//   <asio/dispatch.hpp>
//   or <boost/asio/dispatch.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/dispatch.hpp>
#else
#include <asio/dispatch.hpp>
#endif

#include "divert/asio.hpp"

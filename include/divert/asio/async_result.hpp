// divert/asio/async_result.hpp — from the Asio divert is built with:
//   <asio/async_result.hpp>
//   or <boost/asio/async_result.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/async_result.hpp>
#else
#include <asio/async_result.hpp>
#endif

#include "divert/asio.hpp"

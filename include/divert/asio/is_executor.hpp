// divert/asio/is_executor.hpp — from the Asio divert is built with:
//   <asio/is_executor.hpp>
//   or <boost/asio/is_executor.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/is_executor.hpp>
#else
#include <asio/is_executor.hpp>
#endif

#include "divert/asio.hpp"

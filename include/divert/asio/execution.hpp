// divert/asio/execution.hpp — from the Asio divert is built with:
//   <asio/execution.hpp>
//   or <boost/asio/execution.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/execution.hpp>
#else
#include <asio/execution.hpp>
#endif

#include "divert/asio.hpp"

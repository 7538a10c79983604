// divert/asio/execution_context.hpp — from the Asio divert is built with:
//   <asio/execution_context.hpp>
//   or <boost/asio/execution_context.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/execution_context.hpp>
#else
#include <asio/execution_context.hpp>
#endif

#include "divert/asio.hpp"

// divert/asio/execution/executor.hpp — from the Asio divert is built with:
//   <asio/execution/executor.hpp>
//   or <boost/asio/execution/executor.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/execution/executor.hpp>
#else
#include <asio/execution/executor.hpp>
#endif

#include "divert/asio.hpp"

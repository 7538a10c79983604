// divert/asio/execution/outstanding_work.hpp — from the Asio divert is built with:
//   <asio/execution/outstanding_work.hpp>
//   or <boost/asio/execution/outstanding_work.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/execution/outstanding_work.hpp>
#else
#include <asio/execution/outstanding_work.hpp>
#endif

#include "divert/asio.hpp"

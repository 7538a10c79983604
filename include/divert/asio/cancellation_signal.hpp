// divert/asio/cancellation_signal.hpp — from the Asio divert is built with:
//   <asio/cancellation_signal.hpp>
//   or <boost/asio/cancellation_signal.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/cancellation_signal.hpp>
#else
#include <asio/cancellation_signal.hpp>
#endif

#include "divert/asio.hpp"

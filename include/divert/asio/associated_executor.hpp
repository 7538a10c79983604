// divert/asio/associated_executor.hpp — from the Asio divert is built with:
//   <asio/associated_executor.hpp>
//   or <boost/asio/associated_executor.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/associated_executor.hpp>
#else
#include <asio/associated_executor.hpp>
#endif

#include "divert/asio.hpp"

// divert/asio/read.hpp — from the Asio divert is built with:
//   <asio/read.hpp>
//   or <boost/asio/read.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/read.hpp>
#else
#include <asio/read.hpp>
#endif

#include "divert/asio.hpp"

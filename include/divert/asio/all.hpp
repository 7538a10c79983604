// divert/asio/all.hpp — from the Asio divert is built with:
//   <asio.hpp>
//   or <boost/asio.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio.hpp>
#else
#include <asio.hpp>
#endif

#include "divert/asio.hpp"

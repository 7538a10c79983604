// divert/asio/prefer.hpp — from the Asio divert is built with:
//   <asio/prefer.hpp>
//   or <boost/asio/prefer.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/prefer.hpp>
#else
#include <asio/prefer.hpp>
#endif

#include "divert/asio.hpp"

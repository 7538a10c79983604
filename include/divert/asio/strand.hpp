// divert/asio/strand.hpp — from the Asio divert is built with:
//   <asio/strand.hpp>
//   or <boost/asio/strand.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/strand.hpp>
#else
#include <asio/strand.hpp>
#endif

#include "divert/asio.hpp"

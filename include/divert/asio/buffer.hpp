// divert/asio/buffer.hpp — from the Asio divert is built with:
//   <asio/buffer.hpp>
//   or <boost/asio/buffer.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/buffer.hpp>
#else
#include <asio/buffer.hpp>
#endif

#include "divert/asio.hpp"

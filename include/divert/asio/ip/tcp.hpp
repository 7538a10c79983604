// divert/asio/ip/tcp.hpp — from the Asio divert is built with:
//   <asio/ip/tcp.hpp>
//   or <boost/asio/ip/tcp.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ip/tcp.hpp>
#else
#include <asio/ip/tcp.hpp>
#endif

#include "divert/asio.hpp"

// divert/asio/ip/address.hpp — from the Asio divert is built with:
//   <asio/ip/address.hpp>
//   or <boost/asio/ip/address.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ip/address.hpp>
#else
#include <asio/ip/address.hpp>
#endif

#include "divert/asio.hpp"

// divert/asio/ip/address_v6.hpp — from the Asio divert is built with:
//   <asio/ip/address_v6.hpp>
//   or <boost/asio/ip/address_v6.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/ip/address_v6.hpp>
#else
#include <asio/ip/address_v6.hpp>
#endif

#include "divert/asio.hpp"

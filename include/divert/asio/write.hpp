// divert/asio/write.hpp — from the Asio divert is built with:
//   <asio/write.hpp>
//   or <boost/asio/write.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/write.hpp>
#else
#include <asio/write.hpp>
#endif

#include "divert/asio.hpp"

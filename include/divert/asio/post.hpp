// divert/asio/post.hpp — from the Asio divert is built with:
//   <asio/post.hpp>
//   or <boost/asio/post.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/post.hpp>
#else
#include <asio/post.hpp>
#endif

#include "divert/asio.hpp"

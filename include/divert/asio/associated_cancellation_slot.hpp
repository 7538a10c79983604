// divert/asio/associated_cancellation_slot.hpp — from the Asio divert is built with:
//   <asio/associated_cancellation_slot.hpp>
//   or <boost/asio/associated_cancellation_slot.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/associated_cancellation_slot.hpp>
#else
#include <asio/associated_cancellation_slot.hpp>
#endif

#include "divert/asio.hpp"

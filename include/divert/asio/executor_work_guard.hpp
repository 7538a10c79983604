// divert/asio/executor_work_guard.hpp — from the Asio divert is built with:
//   <asio/executor_work_guard.hpp>
//   or <boost/asio/executor_work_guard.hpp>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/executor_work_guard.hpp>
#else
#include <asio/executor_work_guard.hpp>
#endif

#include "divert/asio.hpp"

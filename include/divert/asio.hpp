// divert/asio.hpp — names the Asio divert is built with, once.
//
// divert's public types are Asio types (sockets, executors, completion
// tokens). Inside namespace divert, `asio::` and `divert::error_code` name
// them whichever Asio the library was built with, so the same sources build
// against standalone Asio and (with -DDIVERT_ASIO=boost) Boost.Asio:
//   standalone (DIVERT_ASIO_BOOST 0): divert::asio = ::asio,
//     divert::error_code = std::error_code;
//   Boost (DIVERT_ASIO_BOOST 1): divert::asio = ::boost::asio,
//     divert::error_code = boost::system::error_code (it converts to and from
//     std::error_code implicitly and compares equal to both Asio's and divert's
//     error enums).
// divert::system_error is the exception Asio throws (use_awaitable, the
// throwing overloads): std::system_error, or boost::system::system_error (not
// a std::system_error) with Boost.Asio; divert's throwing forms throw it too.
// divert::error_code is the error type of Asio completion handlers and of
// every divert result that may hold an Asio code; APIs that report only
// divert's own codes (the PROXY v2 codec, make_error_code(errc)) use
// std::error_code in both flavours.
// The Asio headers themselves come in through divert/asio/<same path as in
// Asio>.hpp (e.g. "divert/asio/ip/tcp.hpp"). This header adds no policy
// defines (ASIO_NO_DEPRECATED and friends stay the host's choice).
#pragma once

#include <system_error>

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

// declared so that the alias below is valid on its own
namespace boost::asio {}

namespace divert {
namespace asio = ::boost::asio;
using error_code = ::boost::system::error_code;
using system_error = ::boost::system::system_error;
}  // namespace divert
#else
// declared so that the alias below is valid on its own
namespace asio {}

namespace divert {
namespace asio = ::asio;
using error_code = std::error_code;
using system_error = std::system_error;
}  // namespace divert
#endif

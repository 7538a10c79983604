// divert/asio.hpp — names the Asio divert is built with, once.
//
// divert's public types are Asio types (sockets, executors, completion
// tokens). Inside namespace divert, `asio::` and `divert::error_code` name
// them whichever Asio the library was built with, so the same sources build
// against standalone Asio and (with -DDIVERT_ASIO=boost) Boost.Asio.
//   divert::error_code: the error type of Asio completion handlers
//   (std::error_code with standalone Asio).
// Include the Asio headers you need as well; this header adds no policy
// defines (ASIO_NO_DEPRECATED and friends stay the host's choice).
#pragma once

#include <system_error>

namespace asio {}  // declared so that the alias below is valid on its own

namespace divert {
namespace asio = ::asio;
using error_code = std::error_code;
}  // namespace divert

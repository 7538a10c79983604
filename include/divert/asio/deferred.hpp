// divert/asio/deferred.hpp — divert::detail::deferred (and deferred_t): Asio's deferred
// completion token adapter, wherever the Asio divert is built with keeps it:
// asio::experimental::deferred up to Asio 1.22, asio::deferred from Asio 1.24
// (Boost 1.80), where the experimental name is only a deprecated alias that
// ASIO_NO_DEPRECATED / BOOST_ASIO_NO_DEPRECATED, a host's choice, removes.
// divert's sources write divert::detail::deferred, never asio::experimental::deferred.
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/version.hpp>
#if BOOST_ASIO_VERSION >= 102400
#include <boost/asio/deferred.hpp>
#define DIVERT_ASIO_DEFERRED_NS ::boost::asio
#else
#include <boost/asio/experimental/deferred.hpp>
#define DIVERT_ASIO_DEFERRED_NS ::boost::asio::experimental
#endif
#else
#include <asio/version.hpp>
#if ASIO_VERSION >= 102400
#include <asio/deferred.hpp>
#define DIVERT_ASIO_DEFERRED_NS ::asio
#else
#include <asio/experimental/deferred.hpp>
#define DIVERT_ASIO_DEFERRED_NS ::asio::experimental
#endif
#endif

#include "divert/asio.hpp"

namespace divert::detail {
using DIVERT_ASIO_DEFERRED_NS::deferred;
using DIVERT_ASIO_DEFERRED_NS::deferred_t;
}  // namespace divert::detail

#undef DIVERT_ASIO_DEFERRED_NS

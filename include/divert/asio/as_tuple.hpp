// divert/asio/as_tuple.hpp — divert::detail::as_tuple (and as_tuple_t): Asio's as_tuple
// completion token adapter, wherever the Asio divert is built with keeps it:
// asio::experimental::as_tuple up to Asio 1.22, asio::as_tuple from Asio 1.24
// (Boost 1.80), where the experimental name is only a deprecated alias that
// ASIO_NO_DEPRECATED / BOOST_ASIO_NO_DEPRECATED, a host's choice, removes.
// divert's sources write divert::detail::as_tuple, never asio::experimental::as_tuple.
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <boost/asio/version.hpp>
#if BOOST_ASIO_VERSION >= 102400
#include <boost/asio/as_tuple.hpp>
#define DIVERT_ASIO_AS_TUPLE_NS ::boost::asio
#else
#include <boost/asio/experimental/as_tuple.hpp>
#define DIVERT_ASIO_AS_TUPLE_NS ::boost::asio::experimental
#endif
#else
#include <asio/version.hpp>
#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
#define DIVERT_ASIO_AS_TUPLE_NS ::asio
#else
#include <asio/experimental/as_tuple.hpp>
#define DIVERT_ASIO_AS_TUPLE_NS ::asio::experimental
#endif
#endif

#include "divert/asio.hpp"

namespace divert::detail {
using DIVERT_ASIO_AS_TUPLE_NS::as_tuple;
using DIVERT_ASIO_AS_TUPLE_NS::as_tuple_t;
}  // namespace divert::detail

#undef DIVERT_ASIO_AS_TUPLE_NS

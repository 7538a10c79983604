// divert/divert.hpp — everything a host proxy needs, in one include:
// the connector and its builder, tasks, the PROXY v2 codec (both sides),
// upstream addresses, selection, the net layer, relay, metrics and logging.
// Each header documents its own units, defaults, errors and thread-safety.
// Linking: divert::divert is a static library by default, shared with
// BUILD_SHARED_LIBS=ON (SONAME libdivert.so.<major>); in a shared build only the
// declarations marked DIVERT_EXPORT (divert/export.hpp, generated) are exported.
// Versions: divert/version.hpp (DIVERT_VERSION_MAJOR/MINOR/PATCH), semantic versioning.
// Asio: divert/config.hpp (DIVERT_ASIO_BOOST: 1 when built with Boost.Asio, then
// divert::asio is boost::asio and divert::error_code boost::system::error_code).
#pragma once

#include "divert/config.hpp"
#include "divert/config_value.hpp"
#include "divert/connector.hpp"
#include "divert/error.hpp"
#include "divert/host_port.hpp"
#include "divert/logger.hpp"
#include "divert/metrics.hpp"
#include "divert/net/connect.hpp"
#include "divert/net/destination_policy.hpp"
#include "divert/net/options.hpp"
#include "divert/net/resolver.hpp"
#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/ppv2/read_header.hpp"
#include "divert/receiver.hpp"
#include "divert/relay.hpp"
#include "divert/select/pick_key.hpp"
#include "divert/select/policy.hpp"
#include "divert/select/selector.hpp"
#include "divert/speed_limit.hpp"
#include "divert/task.hpp"
#include "divert/upstream.hpp"
#include "divert/version.hpp"

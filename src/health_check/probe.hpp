// health_check/probe.hpp — one health probe of one next proxy (internal).
//
// A probe, bounded as a whole by `timeout` from its start:
//   1. connect: an IP next proxy with one attempt (net::connect_with_retry,
//      max_retry 0); a domain next proxy with happy eyeballs through
//      `resolver`, resolved on every probe so the check follows new addresses;
//      each attempt bounded by `timeout` too. The connector's other
//      ConnectOptions (bind address and interface, socket options) apply.
//   2. write the 16-byte PROXY v2 LOCAL header (local_header()), the PROXY
//      spec's command for health checks; a probe never sends anything else.
//   3. watch until the deadline: the peer's clean close (EOF: the divert
//      Receiver closes after a LOCAL header) is success at once; bytes from
//      the peer are read and dropped (a next proxy may answer); reaching the
//      deadline with the connection still open, not reset, is success
//      ("accepted and not reset within timeout"). A peer that keeps the
//      connection (HAProxy accept-proxy passes it on to its backend) thus
//      takes the whole timeout to pass.
//   4. close (FIN). The FIN comes last on purpose, not right after the header:
//      a FIN arriving while HAProxy is still connecting its backend for the
//      LOCAL connection is logged as a client abort (termination state "CC").
// Failure: a connect error or timeout (nothing accepted the connection within
// `timeout`), a failed write, or the connection reset (RST, ECONNRESET or
// EPIPE) or any other read error before the deadline.
// Limits: a peer whose process hangs but whose kernel still accepts
// connections passes (nothing is asked of it beyond accepting the connection).
// The socket is closed before the probe completes, on every path
// (cancellation included: the caller's cancellation slot is honoured and
// completes with operation_aborted, reported as a failure).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "divert/asio/awaitable.hpp"
#include "divert/asio/ip/tcp.hpp"

#include "divert/asio.hpp"
#include "divert/export.hpp"
#include "divert/net/options.hpp"
#include "divert/net/resolver.hpp"
#include "divert/upstream.hpp"

namespace divert::health {

// The PROXY v2 LOCAL header: the 12-byte signature, 0x20 (version 2, LOCAL),
// family/transport 0x00 (UNSPEC), length 0.
DIVERT_EXPORT std::array<std::uint8_t, 16> local_header();

enum class ProbeStage : std::uint8_t { connect, write, watch };
DIVERT_EXPORT std::string_view to_string(ProbeStage s) noexcept;

struct ProbeResult {
  bool ok = false;
  ProbeStage stage = ProbeStage::connect;  // where it ended
  error_code error;                        // why it failed (empty when ok)
  asio::ip::tcp::endpoint peer;            // the address connected to (or last tried)
};

// The watch's verdict on one read's outcome (pure): success, failure, or
// nullopt to keep watching (bytes arrived). Reaching the deadline is decided
// by the caller (success).
DIVERT_EXPORT std::optional<bool> watch_verdict(const error_code& read_error) noexcept;

struct ProbeOptions {
  std::chrono::milliseconds timeout{2000};
  net::ConnectOptions connect;              // validated; tcp_connect is overridden as above
  std::shared_ptr<net::Resolver> resolver;  // required for a domain next proxy
};

// Runs one probe on the awaiting coroutine's executor (see above). Never
// throws for I/O errors.
DIVERT_EXPORT asio::awaitable<ProbeResult> probe(UpstreamAddr target, ProbeOptions options);

}  // namespace divert::health

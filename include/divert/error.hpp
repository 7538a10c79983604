// divert/error.hpp — how divert reports errors.
//
// * Configuration mistakes throw divert::config_error at build time; what()
//   names the key and quotes the bad value, key() and value() give them apart.
// * I/O and protocol failures travel as std::error_code. Each layer has its
//   own enum and category (ppv2::errc, divert::errc below); Asio's own codes
//   (connection_refused, timed_out, ...) are passed through unchanged.
// Thread-safety: all types here are values; categories are immutable singletons.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

#include "divert/export.hpp"

namespace divert {

// Thrown by builders and parsers of configuration values.
class DIVERT_EXPORT config_error : public std::invalid_argument {
 public:
  // `key` is the configuration key as the user wrote it (e.g. "tcp_connect.max_retry"),
  // `value` the offending value as text, `reason` what is wrong with it.
  config_error(std::string key, std::string value, const std::string& reason);

  const std::string& key() const noexcept { return key_; }
  const std::string& value() const noexcept { return value_; }

 private:
  std::string key_;
  std::string value_;
};

// Connector-level failures (layers above the codec).
enum class errc {
  no_next_proxy_available = 1,  // no candidate to try (reserved: the connector always has one,
                                // and when every candidate fails it returns the last one's error)
  resolve_failed,               // the resolver gave no usable address
  header_too_large,             // the PROXY header would exceed the configured cap
  tls_handshake_failed,         // reserved: https forward passes OpenSSL's own code through
  tls_handshake_timeout,        // https forward: no handshake within the timeout
  header_timeout,               // receiving side: no complete header in time
  untrusted_source,             // receiving side: peer not in the trusted CIDRs
  idle_timeout,                 // relay: no byte either way within the idle timeout
  config_conflict,              // reserved (contradicting options throw config_error)
  // The next proxy's upstream status reply (TLV 0xE7, divert/connector.hpp
  // "Upstream status reply"): what the next proxy said about the upstream, and a reply
  // that was not one.
  upstream_refused,         // status 1: the upstream refused the connection
  upstream_timed_out,       // status 2: connecting to the upstream timed out
  upstream_unreachable,     // status 3: network or host unreachable
  upstream_resolve_failed,  // status 4: the upstream's name did not resolve
  upstream_denied,          // status 5: the next proxy's destination policy denied it
  upstream_failed_other,    // status 255 or any status this version does not know
  bad_status_reply,         // no 8-byte DVT1 reply (wrong magic, early close)
};

// What went wrong, by hop, for hosts that answer their own client (a SOCKS
// or CONNECT reply): compare a code a connector call returned (tcp_connect,
// http_forward, https_forward and their async_ forms) against these, e.g.
//   if (ec == divert::condition::upstream_failed) reply 502 / SOCKS 0x04..
// The specific code (Asio's, OpenSSL's or divert::errc) stays in the error_code.
// The table classifies codes as a connector call returns them; the same
// Asio code from elsewhere (a relay's connection_reset) is not about a next proxy.
//   next_proxy_failed: no next proxy could be connected or written to:
//     Asio's connection_refused, timed_out, host_unreachable,
//     network_unreachable, network_down, connection_reset, connection_aborted,
//     broken_pipe, not_connected, address_not_available, eof (the next proxy
//     closed); the resolver's host_not_found, host_not_found_try_again,
//     no_data, no_recovery and errc::resolve_failed for a domain next proxy;
//     errc::no_next_proxy_available (reserved, see above);
//     errc::bad_status_reply (its status reply was not one). For
//     https_forward a reset or eof during the TLS handshake (after the
//     header went out) falls here too: the next proxy may have dropped it.
//   upstream_failed: the next proxy reported it could not reach the upstream
//     (errc::upstream_*; only with next_proxy_status_reply).
//   timeout: any timeout: Asio's timed_out (connecting to a next proxy),
//     errc::tls_handshake_timeout, errc::upstream_timed_out (reported by the
//     next proxy), and the receiving side's header_timeout and the relay's
//     idle_timeout; overlaps the two above.
// Not in any: operation_aborted (cancelled), errc::header_too_large and
// ppv2::errc::invalid_tlv_value (the Task was refused before connecting),
// asio::error::invalid_argument, OpenSSL's handshake and verification codes.
enum class condition {
  next_proxy_failed = 1,
  upstream_failed,
  timeout,
};

DIVERT_EXPORT const std::error_category& divert_category() noexcept;
DIVERT_EXPORT std::error_code make_error_code(errc e) noexcept;
DIVERT_EXPORT const std::error_category& condition_category() noexcept;
DIVERT_EXPORT std::error_condition make_error_condition(condition c) noexcept;

}  // namespace divert

template <>
struct std::is_error_code_enum<divert::errc> : std::true_type {};
template <>
struct std::is_error_condition_enum<divert::condition> : std::true_type {};

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
  no_next_proxy_available = 1,  // every candidate failed or is ejected
  resolve_failed,               // the resolver gave no usable address
  header_too_large,             // the PROXY header would exceed the configured cap
  tls_handshake_failed,         // https forward: TLS handshake with the upstream failed
  tls_handshake_timeout,        // https forward: no handshake within the timeout
  header_timeout,               // receiving side: no complete header in time
  untrusted_source,             // receiving side: peer not in the trusted CIDRs
  idle_timeout,                 // relay: no byte either way within the idle timeout
  config_conflict,              // options that contradict each other
};

DIVERT_EXPORT const std::error_category& divert_category() noexcept;
DIVERT_EXPORT std::error_code make_error_code(errc e) noexcept;

}  // namespace divert

template <>
struct std::is_error_code_enum<divert::errc> : std::true_type {};

#include "divert/error.hpp"

namespace divert {

config_error::config_error(std::string key, std::string value, const std::string& reason)
    : std::invalid_argument("divert config: " + key + " = \"" + value + "\": " + reason),
      key_(std::move(key)),
      value_(std::move(value)) {}

namespace {
class DivertCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "divert"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::no_next_proxy_available: return "no next proxy available (all failed or ejected)";
      case errc::resolve_failed: return "name resolution gave no usable address";
      case errc::header_too_large: return "PROXY v2 header exceeds the configured size cap";
      case errc::tls_handshake_failed: return "TLS handshake with the upstream failed";
      case errc::tls_handshake_timeout: return "TLS handshake timed out";
      case errc::header_timeout: return "no complete PROXY header within the header timeout";
      case errc::untrusted_source: return "connection from an untrusted source";
      case errc::idle_timeout: return "relay idle timeout";
      case errc::config_conflict: return "configuration options contradict each other";
      case errc::upstream_refused: return "the next proxy reports: upstream refused the connection";
      case errc::upstream_timed_out: return "the next proxy reports: connecting to the upstream timed out";
      case errc::upstream_unreachable: return "the next proxy reports: upstream unreachable";
      case errc::upstream_resolve_failed: return "the next proxy reports: upstream name did not resolve";
      case errc::upstream_denied: return "the next proxy reports: upstream denied by its destination policy";
      case errc::upstream_failed_other: return "the next proxy reports: upstream connect failed";
      case errc::bad_status_reply: return "the next proxy sent no valid upstream status reply";
    }
    return "unknown divert error";
  }
};
}  // namespace

const std::error_category& divert_category() noexcept {
  static const DivertCategory cat;
  return cat;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), divert_category()}; }

// The condition table lives in divert.condition's equivalent(); the api
// work fills in next_proxy_failed and timeout for Asio's and OpenSSL's codes.
namespace {
class ConditionCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "divert.condition"; }
  std::string message(int ev) const override {
    switch (static_cast<condition>(ev)) {
      case condition::next_proxy_failed: return "no next proxy could be reached";
      case condition::upstream_failed: return "the next proxy could not reach the upstream";
      case condition::timeout: return "timed out";
    }
    return "unknown divert condition";
  }
  bool equivalent(const std::error_code& ec, int cv) const noexcept override {
    const bool ours = ec.category() == divert_category();
    const auto e = static_cast<errc>(ec.value());
    switch (static_cast<condition>(cv)) {
      case condition::upstream_failed:
        return ours && e >= errc::upstream_refused && e <= errc::upstream_failed_other;
      case condition::next_proxy_failed:
        return ours && (e == errc::no_next_proxy_available || e == errc::bad_status_reply);
      case condition::timeout:
        return (ours && (e == errc::tls_handshake_timeout || e == errc::header_timeout ||
                         e == errc::idle_timeout || e == errc::upstream_timed_out)) ||
               ec == std::errc::timed_out;
    }
    return false;
  }
};
}  // namespace

const std::error_category& condition_category() noexcept {
  static const ConditionCategory cat;
  return cat;
}

std::error_condition make_error_condition(condition c) noexcept {
  return {static_cast<int>(c), condition_category()};
}

}  // namespace divert

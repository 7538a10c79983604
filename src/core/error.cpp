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

}  // namespace divert

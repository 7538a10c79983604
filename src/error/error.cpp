#include "divert/error.hpp"

#include <cerrno>
#include <initializer_list>

#include "divert/asio/error.hpp"

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
      case errc::no_next_proxy_available:
        return "no next proxy available (all failed or ejected)";
      case errc::resolve_failed:
        return "name resolution gave no usable address";
      case errc::header_too_large:
        return "PROXY v2 header exceeds the configured size cap";
      case errc::tls_handshake_failed:
        return "TLS handshake with the upstream failed";
      case errc::tls_handshake_timeout:
        return "TLS handshake timed out";
      case errc::header_timeout:
        return "no complete PROXY header within the header timeout";
      case errc::untrusted_source:
        return "connection from an untrusted source";
      case errc::idle_timeout:
        return "relay idle timeout";
      case errc::config_conflict:
        return "configuration options contradict each other";
      case errc::upstream_refused:
        return "the next proxy reports: upstream refused the connection";
      case errc::upstream_timed_out:
        return "the next proxy reports: connecting to the upstream timed out";
      case errc::upstream_unreachable:
        return "the next proxy reports: upstream unreachable";
      case errc::upstream_resolve_failed:
        return "the next proxy reports: upstream name did not resolve";
      case errc::upstream_denied:
        return "the next proxy reports: upstream denied by its destination policy";
      case errc::upstream_failed_other:
        return "the next proxy reports: upstream connect failed";
      case errc::bad_status_reply:
        return "the next proxy sent no valid upstream status reply";
    }
    return "unknown divert error";
  }
};
}  // namespace

const std::error_category& divert_category() noexcept {
  static const DivertCategory cat;
  return cat;
}

std::error_code make_error_code(errc e) noexcept {  // std: divert's own codes
  return {static_cast<int>(e), divert_category()};
}

// The condition table: divert::condition's equivalent() below. It classifies
// the codes a connector call (tcp_connect, http_forward, https_forward and
// their async_ forms) returns; see error.hpp.
namespace {

// std: these get what equivalent() gets, a std::error_code
bool is_ours(const std::error_code& ec, std::initializer_list<errc> codes) {
  if (ec.category() != divert_category()) return false;
  for (auto e : codes)
    if (ec.value() == static_cast<int>(e)) return true;
  return false;
}

// An errno value from Asio's system category (standalone Asio's own
// "asio.system", which does not map to std::generic_category), the standard
// system or generic category; -1 for any other category.
// std: see is_ours
int errno_value(const std::error_code& ec) {
  const auto& cat = ec.category();
  if (cat == asio::error::get_system_category() || cat == std::system_category() ||
      cat == std::generic_category())
    return ec.value();
  return -1;
}

// "This hop could not be reached, or went away before it took the header":
// errno values, Asio's misc eof, its netdb resolver codes.
// std: see is_ours
bool is_next_hop_failure(const std::error_code& ec) {
  switch (errno_value(ec)) {
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ENOTCONN:
    case EADDRNOTAVAIL:
      return true;
    default:
      break;
  }
  const error_code e(ec);  // Asio's own code type (Boost.Asio: unwraps its category)
  return e == asio::error::eof || e == asio::error::host_not_found ||
         e == asio::error::host_not_found_try_again || e == asio::error::no_data ||
         e == asio::error::no_recovery;
}

class ConditionCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "divert.condition"; }
  std::string message(int ev) const override {
    switch (static_cast<condition>(ev)) {
      case condition::next_proxy_failed:
        return "no next proxy could be reached";
      case condition::upstream_failed:
        return "the next proxy could not reach the upstream";
      case condition::timeout:
        return "timed out";
    }
    return "unknown divert condition";
  }
  // std: the std::error_category API (a Boost.Asio code arrives converted)
  bool equivalent(const std::error_code& ec, int cv) const noexcept override {
    switch (static_cast<condition>(cv)) {
      case condition::upstream_failed:
        return is_ours(ec, {errc::upstream_refused, errc::upstream_timed_out,
                            errc::upstream_unreachable, errc::upstream_resolve_failed,
                            errc::upstream_denied, errc::upstream_failed_other});
      case condition::next_proxy_failed:
        return is_ours(ec, {errc::no_next_proxy_available, errc::resolve_failed,
                            errc::bad_status_reply}) ||
               is_next_hop_failure(ec);
      case condition::timeout:
        return is_ours(ec, {errc::tls_handshake_timeout, errc::header_timeout, errc::idle_timeout,
                            errc::upstream_timed_out}) ||
               errno_value(ec) == ETIMEDOUT;
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

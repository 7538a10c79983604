#include "common/auth.hpp"

#include "common/http_request.hpp"

namespace divert::examples {

bool constant_time_equal(std::string_view given, std::string_view secret) noexcept {
  // No early exit and no branch on the bytes: every byte of `given` is
  // compared, against `secret` read cyclically (an empty secret as zeros).
  unsigned diff = given.size() != secret.size() ? 1u : 0u;
  for (std::size_t i = 0; i < given.size(); ++i) {
    const auto s = secret.empty() ? 0u : static_cast<unsigned char>(secret[i % secret.size()]);
    diff |= static_cast<unsigned char>(given[i]) ^ s;
  }
  return diff == 0;
}

void ProxyUsers::add(std::string name, std::string password) {
  for (auto& [n, p] : users_) {
    if (n == name) {
      p = std::move(password);
      return;
    }
  }
  users_.emplace_back(std::move(name), std::move(password));
}

std::optional<std::string> ProxyUsers::authenticate(
    std::optional<std::string_view> proxy_authorization) const {
  const auto basic = proxy_authorization ? parse_basic_auth(*proxy_authorization) : std::nullopt;
  const std::string_view name = basic ? std::string_view(basic->first) : std::string_view();
  const std::string_view password = basic ? std::string_view(basic->second) : std::string_view();
  const std::pair<std::string, std::string>* match = nullptr;
  for (const auto& user : users_) {
    // Both comparisons always run (no && short cut).
    const unsigned name_ok = constant_time_equal(name, user.first) ? 1u : 0u;
    const unsigned password_ok = constant_time_equal(password, user.second) ? 1u : 0u;
    if ((name_ok & password_ok) != 0) match = &user;
  }
  if (!basic || !match) return std::nullopt;
  return match->first;
}

}  // namespace divert::examples

// examples/common/auth.hpp — proxy users for Basic authentication, checked
// without a timing side channel on the passwords.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace divert::examples {

// True when `given` and `secret` are equal. The time taken depends only on the length
// of `given`, never on where the first difference is nor on the length of
// `secret` (it is read cyclically).
bool constant_time_equal(std::string_view given, std::string_view secret) noexcept;

class ProxyUsers {
 public:
  // Adds a user (a later add() of the same name replaces the password).
  void add(std::string name, std::string password);
  bool empty() const noexcept { return users_.empty(); }
  // The user name when `proxy_authorization` (the Proxy-Authorization header's
  // value, or nullopt when absent) carries a known user's Basic credentials.
  // Every user's name and password is compared in constant time, all of them
  // every time: the time taken does not tell which user exists, nor how much
  // of a password was right (only the number of users and the length of what
  // the client sent).
  std::optional<std::string> authenticate(
      std::optional<std::string_view> proxy_authorization) const;

 private:
  std::vector<std::pair<std::string, std::string>> users_;  // name, password
};

}  // namespace divert::examples

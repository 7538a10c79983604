// make_pick_key (format in divert/select/pick_key.hpp).
#include "divert/select/pick_key.hpp"

#include "divert/upstream.hpp"

namespace divert {

std::string make_pick_key(const asio::ip::address& client_ip,
                          std::optional<std::string_view> username,
                          std::string_view upstream_host) {
  std::string key = format_ip_address(client_ip);  // IPv6 without brackets
  key.reserve(key.size() + (username ? username->size() + 1 : 0) + 1 + upstream_host.size());
  if (username) {
    key += '-';
    key += *username;
  }
  key += '-';
  key += upstream_host;
  return key;
}

}  // namespace divert

// divert/select/pick_key.hpp — the key that the consistent-hash policies
// (ketama, rendezvous, jump_hash) hash to choose a next proxy for a task.
//
// Format: <client-ip>[-<username>]-<upstream-host>
//   client-ip      format_ip_address(client_ip) (divert/upstream.hpp): IPv4 dotted
//                  quad, IPv6 in RFC 5952 form WITHOUT brackets, IPv4-mapped IPv6
//                  folded to IPv4, no zone index.
//   username       only when given (client auth enabled), as is (UTF-8).
//   upstream-host  the upstream's host as given (UpstreamAddr::host(): lower-case
//                  domain or IP without brackets), without the port.
// Examples: "192.0.2.1-example.com", "2001:db8::7-alice-10.1.2.3".
// Errors: none besides std::bad_alloc. Thread-safety: pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "divert/asio/ip/address.hpp"

#include "divert/export.hpp"

namespace divert {

DIVERT_EXPORT std::string make_pick_key(const asio::ip::address& client_ip,
                                        std::optional<std::string_view> username,
                                        std::string_view upstream_host);

}  // namespace divert

#include "divert/net/destination_policy.hpp"
#include "divert/asio/as_tuple.hpp"
#include "divert/asio/steady_timer.hpp"
#include "divert/asio/this_coro.hpp"
#include "divert/asio/use_awaitable.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "divert/error.hpp"

namespace divert::net {

asio::ip::address unmap_v4(const asio::ip::address& address) noexcept {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address;
}

namespace {

// The first `prefix` bits of `a` and `b` (same length) are equal.
bool same_prefix(const unsigned char* a, const unsigned char* b, unsigned prefix) noexcept {
  const unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a, b, full) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

template <std::size_t N>
void clear_host_bits(std::array<unsigned char, N>& bytes, unsigned prefix) noexcept {
  for (unsigned i = 0; i < N; ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit >= prefix)
      bytes[i] = 0;
    else if (prefix - first_bit < 8)
      bytes[i] &= static_cast<unsigned char>(0xff << (8 - (prefix - first_bit)));
  }
}

}  // namespace

Cidr Cidr::parse(std::string_view text, std::string_view key) {
  auto fail = [&](const std::string& reason) -> Cidr {
    throw config_error(std::string(key), std::string(text), reason);
  };
  const auto slash = text.find('/');
  const std::string addr_text(text.substr(0, slash));
  if (addr_text.find('%') != std::string::npos)
    return fail("zone indexes are not allowed in a CIDR");
  error_code ec;
  auto addr = asio::ip::make_address(addr_text, ec);
  if (ec) return fail("'" + addr_text + "' is not an IP address");
  unsigned max = addr.is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto bits = text.substr(slash + 1);
    auto [end, perr] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
    if (bits.empty() || perr != std::errc{} || end != bits.data() + bits.size() || prefix > max)
      return fail("the prefix length must be a number from 0 to " + std::to_string(max));
  }
  if (addr.is_v6() && addr.to_v6().is_v4_mapped() && prefix >= 96) {
    addr = unmap_v4(addr);
    prefix -= 96;
  }
  Cidr c;
  c.prefix = prefix;
  if (addr.is_v4()) {
    auto bytes = addr.to_v4().to_bytes();
    clear_host_bits(bytes, prefix);
    c.network = asio::ip::address_v4(bytes);
  } else {
    auto bytes = addr.to_v6().to_bytes();
    clear_host_bits(bytes, prefix);
    c.network = asio::ip::address_v6(bytes);
  }
  return c;
}

bool Cidr::contains(const asio::ip::address& address) const noexcept {
  const auto a = unmap_v4(address);
  if (a.is_v4() != network.is_v4()) return false;
  if (a.is_v4()) {
    const auto x = a.to_v4().to_bytes(), y = network.to_v4().to_bytes();
    return same_prefix(x.data(), y.data(), prefix);
  }
  const auto x = a.to_v6().to_bytes(), y = network.to_v6().to_bytes();
  return same_prefix(x.data(), y.data(), prefix);
}

std::string Cidr::to_string() const {
  return format_ip_address(network) + "/" + std::to_string(prefix);
}

const std::vector<Cidr>& default_denied_networks() {
  static const std::vector<Cidr> nets = [] {
    std::vector<Cidr> v;
    for (const char* t : {"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/32",
                          "::/128", "224.0.0.0/4", "ff00::/8"})
      v.push_back(Cidr::parse(t));
    return v;
  }();
  return nets;
}

std::string_view to_string(DestinationVerdict v) noexcept {
  switch (v) {
    case DestinationVerdict::allowed_by_default:
      return "allowed by default";
    case DestinationVerdict::allowed_by_rule:
      return "allowed by an allow rule";
    case DestinationVerdict::denied_by_rule:
      return "denied by a deny rule";
    case DestinationVerdict::denied_by_default:
      return "denied by default (loopback, link-local, unspecified or multicast)";
    case DestinationVerdict::denied_loop_guard:
      return "denied: loop guard (own listen address or next proxy)";
  }
  return "unknown";
}

DestinationPolicy& DestinationPolicy::allow(Cidr network) {
  rules_.push_back({std::move(network), true});
  return *this;
}

DestinationPolicy& DestinationPolicy::deny(Cidr network) {
  rules_.push_back({std::move(network), false});
  return *this;
}

DestinationPolicy& DestinationPolicy::guard(const asio::ip::address& address, std::uint16_t port) {
  const auto a = unmap_v4(address);
  auto add = [&](const char* network) { guards_.push_back({Cidr::parse(network), port}); };
  // Connecting to an unspecified address reaches this host's own listeners.
  add("0.0.0.0/32");
  add("::/128");
  if (a.is_unspecified()) {
    // A wildcard listener also answers on every loopback address.
    add("127.0.0.0/8");
    add("::1/128");
  } else {
    guards_.push_back({Cidr{a, a.is_v4() ? 32u : 128u}, port});
  }
  return *this;
}

DestinationVerdict DestinationPolicy::check(const asio::ip::address& address,
                                            std::uint16_t port) const noexcept {
  for (const auto& g : guards_) {
    if (g.network.contains(address) && (g.port == 0 || g.port == port))
      return DestinationVerdict::denied_loop_guard;
  }
  const Rule* best = nullptr;
  for (const auto& r : rules_) {
    if (!r.network.contains(address)) continue;
    if (!best || r.network.prefix > best->network.prefix ||
        (r.network.prefix == best->network.prefix && !r.allow))
      best = &r;
  }
  if (best)
    return best->allow ? DestinationVerdict::allowed_by_rule : DestinationVerdict::denied_by_rule;
  for (const auto& d : default_denied_networks())
    if (d.contains(address)) return DestinationVerdict::denied_by_default;
  return DestinationVerdict::allowed_by_default;
}

std::optional<DestinationPolicy::Denial> DestinationPolicy::first_denied(
    std::span<const asio::ip::address> addresses, std::uint16_t port) const {
  for (const auto& a : addresses) {
    const auto v = check(a, port);
    if (!is_allowed(v)) return Denial{a, v};
  }
  return std::nullopt;
}

std::vector<asio::ip::address> interface_addresses() {
  std::vector<asio::ip::address> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (auto* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &sin->sin_addr, b.size());
      out.emplace_back(asio::ip::address_v4(b));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &sin6->sin6_addr, b.size());
      out.push_back(unmap_v4(asio::ip::address_v6(b)));
    }
  }
  ::freeifaddrs(list);
  return out;
}

namespace {

bool is_localhost_name(std::string_view host) noexcept {
  // UpstreamAddr lower-cases domains and drops one trailing dot.
  constexpr std::string_view suffix = ".localhost";
  return host == "localhost" ||
         (host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix);
}

// The two answers of one name, shared with the resolver's handlers so a late
// answer (after the timeout) lands in a live object and is ignored.
struct Lookup {
  explicit Lookup(const asio::any_io_executor& ex) : done(ex) {}
  asio::steady_timer done;
  int pending = 2;
  std::vector<asio::ip::address> addresses;
  error_code errors[2];
};

}  // namespace

asio::awaitable<DestinationCheck> check_destination(const DestinationPolicy& policy,
                                                    UpstreamAddr target,
                                                    std::shared_ptr<Resolver> resolver,
                                                    std::chrono::milliseconds timeout) {
  DestinationCheck out;
  if (target.is_ip()) {
    out.addresses = {target.ip()};
  } else if (is_localhost_name(target.host())) {
    out.addresses = {asio::ip::address_v4::loopback(), asio::ip::address_v6::loopback()};
  } else if (!resolver) {
    out.error = asio::error::host_not_found;
    co_return out;
  } else {
    auto ex = co_await asio::this_coro::executor;
    auto lookup = std::make_shared<Lookup>(ex);
    lookup->done.expires_after(timeout);
    int index = 0;
    for (auto family : {AddressFamily::ipv4, AddressFamily::ipv6}) {
      resolver->async_resolve(target.host(), family, ex,
                              [lookup, index](error_code ec, std::vector<asio::ip::address> a) {
                                lookup->errors[index] = ec;
                                lookup->addresses.insert(lookup->addresses.end(), a.begin(),
                                                         a.end());
                                if (--lookup->pending == 0) lookup->done.cancel();
                              });
      ++index;
    }
    co_await lookup->done.async_wait(divert::detail::as_tuple(asio::use_awaitable));
    if (lookup->pending > 0) {
      out.error = make_error_code(std::errc::timed_out);
      co_return out;
    }
    out.addresses = std::move(lookup->addresses);
    if (out.addresses.empty()) {
      out.error = lookup->errors[0]   ? lookup->errors[0]
                  : lookup->errors[1] ? lookup->errors[1]
                                      : make_error_code(asio::error::host_not_found);
      co_return out;
    }
  }
  out.denial = policy.first_denied(out.addresses, target.port());
  out.outcome = out.denial ? DestinationCheck::Outcome::denied : DestinationCheck::Outcome::allowed;
  co_return out;
}

}  // namespace divert::net

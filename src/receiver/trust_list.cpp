#include "divert/receiver.hpp"

namespace divert {

TrustList TrustList::loopback() {
  TrustList t;
  t.add("127.0.0.0/8").add("::1/128");
  return t;
}

TrustList& TrustList::add(std::string_view cidr, std::string_view key) {
  return add(net::Cidr::parse(cidr, key));
}

TrustList& TrustList::add(net::Cidr network) {
  networks_.push_back(std::move(network));
  return *this;
}

bool TrustList::trusts(const asio::ip::address& peer) const noexcept {
  for (const auto& n : networks_)
    if (n.contains(peer)) return true;
  return false;
}

}  // namespace divert

#include "divert/net/resolver.hpp"

#include <algorithm>
#include <cctype>

#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

namespace divert::net {
namespace {

int idx(AddressFamily f) {
  return f == AddressFamily::ipv6 ? 1 : 0;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

class SystemResolver final : public Resolver {
 public:
  void async_resolve(const std::string& host, AddressFamily family,
                     const asio::any_io_executor& executor, Handler handler) override {
    // The resolver object must live until its handler runs; the handler owns it.
    auto r = std::make_shared<asio::ip::tcp::resolver>(executor);
    auto proto = family == AddressFamily::ipv4 ? asio::ip::tcp::v4() : asio::ip::tcp::v6();
    r->async_resolve(proto, host, "0", asio::ip::resolver_base::numeric_service,
                     [r, family, h = std::move(handler)](
                         const std::error_code& ec, asio::ip::tcp::resolver::results_type results) {
                       std::vector<asio::ip::address> out;
                       if (!ec) {
                         for (const auto& e : results) {
                           auto a = e.endpoint().address();
                           if ((family == AddressFamily::ipv4) != a.is_v4()) continue;
                           if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
                         }
                       }
                       h(ec, std::move(out));
                     });
  }
};

}  // namespace

std::shared_ptr<Resolver> system_resolver() {
  return std::make_shared<SystemResolver>();
}

StubResolver& StubResolver::add(const std::string& host,
                                const std::vector<asio::ip::address>& addresses) {
  auto& e = entries_[lower(host)];
  for (const auto& a : addresses) e.addresses[a.is_v4() ? 0 : 1].push_back(a);
  return *this;
}

StubResolver& StubResolver::fail(const std::string& host, AddressFamily family,
                                 std::error_code error) {
  entries_[lower(host)].error[idx(family)] = error;
  return *this;
}

StubResolver& StubResolver::delay(AddressFamily family, std::chrono::milliseconds d) {
  delay_[idx(family)] = d;
  return *this;
}

std::size_t StubResolver::query_count(AddressFamily family) const noexcept {
  return queries_[idx(family)].load();
}

void StubResolver::async_resolve(const std::string& host, AddressFamily family,
                                 const asio::any_io_executor& executor, Handler handler) {
  const int i = idx(family);
  ++queries_[i];
  std::error_code ec;
  std::vector<asio::ip::address> out;
  auto it = entries_.find(lower(host));
  if (it == entries_.end()) {
    ec = asio::error::host_not_found;
  } else if (it->second.error[i]) {
    ec = it->second.error[i];
  } else {
    out = it->second.addresses[i];
  }
  if (delay_[i] <= std::chrono::milliseconds::zero()) {
    asio::post(executor, [h = std::move(handler), ec, out = std::move(out)]() mutable {
      h(ec, std::move(out));
    });
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(executor, delay_[i]);
  timer->async_wait([timer, h = std::move(handler), ec, out = std::move(out)](
                        const std::error_code&) mutable { h(ec, std::move(out)); });
}

}  // namespace divert::net

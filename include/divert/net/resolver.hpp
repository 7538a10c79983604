// divert/net/resolver.hpp — asynchronous name resolution, one address family
// per query, as happy eyeballs needs (AAAA and A asked at once, answers used
// as they arrive).
//
// Hosts plug in their own Resolver (a cache, c-ares, a static map) or use
// system_resolver() (getaddrinfo through asio::ip::tcp::resolver) or
// StubResolver (fixed answers; tests and static host maps).
//
// Contract for implementations: async_resolve() returns at once; `handler` is
// invoked exactly once, through `executor` (never inline from inside
// async_resolve), with either an error or the addresses of that family (an
// empty list with no error means "no such record"). A query cannot be
// cancelled: callers ignore answers they no longer need.
// Thread-safety: async_resolve may be called concurrently from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "divert/asio/any_io_executor.hpp"
#include "divert/asio/ip/address.hpp"

#include "divert/export.hpp"
#include "divert/net/options.hpp"

namespace divert::net {

class DIVERT_EXPORT Resolver {
 public:
  using Handler = std::function<void(error_code, std::vector<asio::ip::address>)>;
  virtual ~Resolver() = default;
  virtual void async_resolve(const std::string& host, AddressFamily family,
                             const asio::any_io_executor& executor, Handler handler) = 0;
};

// getaddrinfo per family, on lookup threads of divert's own (up to 32 per
// execution context, started on demand; the handler runs on `executor`).
// Not cancellable: the
// query runs to its end and its late answer is dropped by the caller.
// Errors: Asio's codes for getaddrinfo's failures (e.g. asio::error::host_not_found).
DIVERT_EXPORT std::shared_ptr<Resolver> system_resolver();

// Fixed answers per host name (exact, case-insensitive) and family, with an
// optional per-family delay. Unknown names answer asio::error::host_not_found;
// a name known only in the other family answers an empty list.
// Configure before use; queries are then thread-safe.
class DIVERT_EXPORT StubResolver final : public Resolver {
 public:
  // Adds addresses for `host`; each goes to the family it belongs to.
  StubResolver& add(const std::string& host, const std::vector<asio::ip::address>& addresses);
  // Makes queries of `family` for `host` fail with `error`.
  StubResolver& fail(const std::string& host, AddressFamily family, error_code error);
  // Delays every answer of `family` by `delay` (a steady_timer on the executor).
  StubResolver& delay(AddressFamily family, std::chrono::milliseconds delay);

  // Number of queries made so far for `family`.
  std::size_t query_count(AddressFamily family) const noexcept;

  void async_resolve(const std::string& host, AddressFamily family,
                     const asio::any_io_executor& executor, Handler handler) override;

 private:
  struct Entry {
    std::vector<asio::ip::address> addresses[2];
    error_code error[2];
  };
  std::map<std::string, Entry> entries_;
  std::chrono::milliseconds delay_[2]{};
  std::atomic<std::size_t> queries_[2]{};
};

}  // namespace divert::net

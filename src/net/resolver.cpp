#include "divert/net/resolver.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "divert/asio/error.hpp"
#include "divert/asio/execution.hpp"
#include "divert/asio/execution_context.hpp"
#include "divert/asio/io_context.hpp"
#include "divert/asio/ip/tcp.hpp"
#include "divert/asio/post.hpp"
#include "divert/asio/steady_timer.hpp"

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

// getaddrinfo() blocks, and Asio's own async_resolve runs the lookups of an
// io_context one after the other on a single background thread: an AAAA query
// stuck on a silent DNS server (5 s per try) held up the A answer happy
// eyeballs was waiting for, and every other lookup. Here the lookups of an
// io_context run on up to kMaxThreads threads of their own (started on
// demand, so a stuck lookup holds up others only when that many are stuck).
// As with Asio's resolver, a pending lookup counts as work for the
// io_context, and the io_context's destruction (this service's shutdown)
// drops the queued lookups and waits for the running ones, so none posts to a
// destroyed io_context.
class LookupThreads final : public asio::execution_context::service {
 public:
  static constexpr std::size_t kMaxThreads = 32;
  static asio::execution_context::id id;
  explicit LookupThreads(asio::execution_context& ctx) : service(ctx) {}

  void submit(std::function<void()> job) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
    if (idle_ == 0 && threads_ < kMaxThreads) {
      ++threads_;
      std::thread([this] { run(); }).detach();
    } else {
      work_.notify_one();
    }
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ++idle_;
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (stopping_) break;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();
      job = nullptr;
      lock.lock();
    }
    if (--threads_ == 0) done_.notify_all();  // last touch of this service
  }
  void shutdown() override {
    std::deque<std::function<void()>> dropped;
    std::unique_lock lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
    work_.notify_all();
    done_.wait(lock, [this] { return threads_ == 0; });
  }
  std::mutex mutex_;
  std::condition_variable work_, done_;
  std::deque<std::function<void()>> queue_;
  std::size_t threads_ = 0, idle_ = 0;
  bool stopping_ = false;
};
asio::execution_context::id LookupThreads::id;

class SystemResolver final : public Resolver {
 public:
  void async_resolve(const std::string& host, AddressFamily family,
                     const asio::any_io_executor& executor, Handler handler) override {
    auto& threads =
        asio::use_service<LookupThreads>(asio::query(executor, asio::execution::context));
    auto work = asio::prefer(executor, asio::execution::outstanding_work.tracked);
    threads.submit([host, family, work, h = std::move(handler)]() mutable {
      asio::io_context blocking_io(1);  // the synchronous resolve needs one; never run
      asio::ip::tcp::resolver r(blocking_io);
      auto proto = family == AddressFamily::ipv4 ? asio::ip::tcp::v4() : asio::ip::tcp::v6();
      error_code ec;
      auto results = r.resolve(proto, host, "0", asio::ip::resolver_base::numeric_service, ec);
      std::vector<asio::ip::address> out;
      if (!ec) {
        for (const auto& e : results) {
          auto a = e.endpoint().address();
          if ((family == AddressFamily::ipv4) != a.is_v4()) continue;
          if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
        }
      }
      asio::post(work,
                 [h = std::move(h), ec, out = std::move(out)]() mutable { h(ec, std::move(out)); });
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

StubResolver& StubResolver::fail(const std::string& host, AddressFamily family, error_code error) {
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
  error_code ec;
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
  timer->async_wait([timer, h = std::move(handler), ec,
                     out = std::move(out)](const error_code&) mutable { h(ec, std::move(out)); });
}

}  // namespace divert::net

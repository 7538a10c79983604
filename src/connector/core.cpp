#include "connector/core.hpp"

#include <algorithm>

#include <fmt/format.h>
#include "divert/asio/error.hpp"

#include "divert/select/pick_key.hpp"

namespace divert::connector {

using Kind = ConnectAction::Kind;

namespace {

std::int64_t ticks(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

ppv2::Endpoint to_ppv2(const asio::ip::tcp::endpoint& e) {
  auto a = e.address();
  if (a.is_v4()) return ppv2::Endpoint::v4(a.to_v4().to_bytes(), e.port());
  return ppv2::Endpoint::v6(a.to_v6().to_bytes(), e.port());
}

bool is_timeout(const error_code& ec) {
  return ec == asio::error::timed_out || ec == std::errc::timed_out;
}

// An empty username is no username: no 0xE2, not part of the pick key.
bool has_user(const Task& task) {
  return task.username && !task.username->empty();
}

}  // namespace

// ---- ProxyHealth

namespace {
std::vector<std::shared_ptr<ProxyState>> fresh_entries(std::size_t n) {
  std::vector<std::shared_ptr<ProxyState>> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) v.push_back(std::make_shared<ProxyState>());
  return v;
}
std::vector<std::string> keys_of(const std::vector<WeightedUpstreamAddr>& proxies) {
  std::vector<std::string> keys;
  keys.reserve(proxies.size());
  for (const auto& p : proxies) keys.push_back(p.addr.to_string());
  return keys;
}
}  // namespace

ProxyHealth::ProxyHealth(std::size_t proxies)
    : ProxyHealth(fresh_entries(proxies), {}, std::make_shared<std::atomic<std::uint64_t>>(0)) {}

ProxyHealth::ProxyHealth(const std::vector<WeightedUpstreamAddr>& proxies)
    : ProxyHealth(fresh_entries(proxies.size()), keys_of(proxies),
                  std::make_shared<std::atomic<std::uint64_t>>(0)) {}

ProxyHealth ProxyHealth::carried_to(const std::vector<WeightedUpstreamAddr>& proxies) const {
  auto keys = keys_of(proxies);
  auto entries = fresh_entries(proxies.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto kept = std::find(keys_.begin(), keys_.end(), keys[i]);
    if (kept != keys_.end()) entries[i] = entries_[static_cast<std::size_t>(kept - keys_.begin())];
  }
  return ProxyHealth(std::move(entries), std::move(keys), ejections_);
}

bool ProxyHealth::ejected(std::size_t i, TimePoint now) const noexcept {
  return entries_[i]->ejected_until_ns.load(std::memory_order_relaxed) > ticks(now);
}

ProxyMetricsSnapshot ProxyHealth::snapshot(std::size_t i, std::string label, TimePoint now) const {
  ProxyMetricsSnapshot p;
  p.next_proxy = std::move(label);
  for (std::size_t c = 0; c < kProxyCounterCount; ++c)
    p.counters[c] = entries_[i]->counters[c].load(std::memory_order_relaxed);
  p.up = !down(i);
  p.ejected = ejected(i, now);
  p.connects_in_flight = entries_[i]->in_flight.load(std::memory_order_relaxed);
  return p;
}

ProxyHealth::Failure ProxyHealth::record_failure(std::size_t i, std::uint32_t eject_after,
                                                 std::chrono::nanoseconds eject_for,
                                                 TimePoint now) noexcept {
  if (eject_after == 0) return {};
  ProxyState& e = *entries_[i];
  Failure f;
  f.consecutive = e.failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (f.consecutive >= eject_after) {
    const auto now_ns = ticks(now);
    const auto prev =
        e.ejected_until_ns.exchange(now_ns + eject_for.count(), std::memory_order_relaxed);
    e.failures.store(0, std::memory_order_relaxed);
    if (prev <= now_ns) {
      f.ejected = true;
      ejections_->fetch_add(1, std::memory_order_relaxed);
    }
  }
  return f;
}

void ProxyHealth::record_success(std::size_t i) noexcept {
  entries_[i]->failures.store(0, std::memory_order_relaxed);
  entries_[i]->ejected_until_ns.store(0, std::memory_order_relaxed);
}

// ---- ConnectCore

ConnectCore::ConnectCore(const ConnectorConfig& cfg, const UpstreamSelector& selector,
                         ProxyHealth& health)
    : cfg_(cfg), selector_(selector), health_(health) {}

ConnectCore::Actions& ConnectCore::fresh() {
  out_.clear();
  return out_;
}

void ConnectCore::metric(MetricsCounter c, std::uint64_t n, Actions& out) const {
  ConnectAction a;
  a.kind = Kind::metric;
  a.counter = c;
  a.amount = n;
  out.push_back(std::move(a));
}

// C7: an escaper.tcp.connect.* counter, and the same for the next proxy tried.
void ConnectCore::connect_metric(MetricsCounter c, Actions& out) const {
  metric(c, 1, out);
  ConnectAction a;
  a.kind = Kind::proxy_metric;
  a.proxy = proxy_;
  switch (c) {
    case MetricsCounter::tcp_connect_attempt:
      a.proxy_counter = ProxyCounter::attempt;
      break;
    case MetricsCounter::tcp_connect_establish:
      a.proxy_counter = ProxyCounter::establish;
      break;
    case MetricsCounter::tcp_connect_timeout:
      a.proxy_counter = ProxyCounter::timeout;
      break;
    default:
      a.proxy_counter = ProxyCounter::error;
  }
  out.push_back(std::move(a));
}

// A log line only when the logger takes that level (the text costs a format).
template <class... Args>
void ConnectCore::log(LogLevel level, Actions& out, fmt::format_string<Args...> format,
                      Args&&... args) const {
  if (!cfg_.shared_logger.enabled(level)) return;
  ConnectAction a;
  a.kind = Kind::log;
  a.level = level;
  a.text = fmt::format(format, std::forward<Args>(args)...);
  out.push_back(std::move(a));
}

const ConnectCore::Actions& ConnectCore::start(const ConnectRequest& request, TimePoint now) {
  Actions& out = fresh();
  if (phase_ != Phase::idle) return out;
  const Task& task = request.task;
  metric(MetricsCounter::task_total, 1, out);
  upstream_ = task.upstream.to_string();
  initial_data_size_ = task.initial_data.size();

  // C4: the header first; nothing is connected when it cannot be encoded.
  ppv2::HeaderSpec spec;
  spec.command = ppv2::Command::proxy;
  spec.src = to_ppv2(task.client);
  spec.dst = to_ppv2(task.server);
  spec.upstream = upstream_;
  if (request.tls_name) spec.tls_name = *request.tls_name;
  if (has_user(task)) spec.username = *task.username;
  spec.task_id = request.task_id;
  spec.status_reply = cfg_.next_proxy_status_reply;  // 0xE7 (C6)
  spec.crc32c = cfg_.header_crc32c;
  if (auto e = ppv2::encode(spec, header_, {.max_size = cfg_.max_header_size})) {
    log(LogLevel::warn, out, "cannot encode the PROXY header for {}: {}", upstream_, e.message());
    // A value the wire contract forbids (a username with a NUL or invalid
    // UTF-8) is reported as such; every other failure is a size cap.
    finish(e == ppv2::errc::invalid_tlv_value ? e : make_error_code(errc::header_too_large),
           ConnectAction::npos, out);
    return out;
  }
  choose_candidates(task, now);
  try_next(now, out);
  return out;
}

// C1
void ConnectCore::choose_candidates(const Task& task, TimePoint now) {
  // One next proxy: the order is that proxy, usable or not.
  if (cfg_.proxy_addr.size() == 1) {
    candidates_ = {0};
    return;
  }
  // Only the hashing policies read the key; the others skip formatting it.
  std::string key;
  const auto policy = cfg_.proxy_addr_pick_policy;
  if (policy == PickPolicy::ketama || policy == PickPolicy::rendezvous ||
      policy == PickPolicy::jump_hash) {
    std::optional<std::string_view> user;
    if (has_user(task)) user = *task.username;
    key = make_pick_key(task.client.address(), user, task.upstream.host());
  }
  candidates_ = selector_.candidate_indices(key);
  auto unusable = [&](std::size_t i) { return !health_.usable(i, now); };
  if (!std::all_of(candidates_.begin(), candidates_.end(), unusable))
    std::erase_if(candidates_, unusable);
  if (candidates_.size() > cfg_.proxy_failover + 1) candidates_.resize(cfg_.proxy_failover + 1);
}

void ConnectCore::try_next(TimePoint now, Actions& out) {
  if (next_ >= candidates_.size()) {
    finish(last_error_ ? last_error_ : error_code(make_error_code(errc::no_next_proxy_available)),
           ConnectAction::npos, out);
    return;
  }
  proxy_ = candidates_[next_++];
  phase_ = Phase::connecting;
  attempt_started_ = now;
  // C2: once per candidate (the retries inside one connect are not counted apart).
  metric(MetricsCounter::connection_attempt, 1, out);
  connect_metric(MetricsCounter::tcp_connect_attempt, out);
  ConnectAction a;
  a.kind = Kind::connect;
  a.proxy = proxy_;
  out.push_back(std::move(a));
}

// C3
void ConnectCore::next_proxy_failed(error_code ec, MetricsCounter counter, std::string_view what,
                                    TimePoint now, Actions& out) {
  record_failure(ec, counter, what, now, out);
  try_next(now, out);
}

void ConnectCore::record_failure(error_code ec, MetricsCounter counter, std::string_view what,
                                 TimePoint now, Actions& out) {
  last_error_ = ec;
  connect_metric(counter, out);
  const auto& name = cfg_.proxy_addr[proxy_].addr;
  log(LogLevel::warn, out, "next proxy {}: {}: {}", name.to_string(), what, ec.message());
  auto f = health_.record_failure(proxy_, cfg_.eject_after_failures, cfg_.eject_duration, now);
  if (f.ejected)
    log(LogLevel::warn, out, "next proxy {} ejected for {} ms after {} consecutive failures",
        name.to_string(), cfg_.eject_duration.count(), f.consecutive);
}

// C6
void ConnectCore::bad_status_reply(MetricsCounter counter, std::string_view what, TimePoint now,
                                   Actions& out) {
  const auto ec = make_error_code(errc::bad_status_reply);
  if (initial_data_size_ == 0) {
    next_proxy_failed(ec, counter, what, now, out);
    return;
  }
  record_failure(ec, counter, what, now, out);
  log(LogLevel::warn, out,
      "other next proxies not tried: the {} bytes of initial data went out with the header and may "
      "have reached the upstream",
      initial_data_size_);
  finish(ec, ConnectAction::npos, out);
}

void ConnectCore::succeed(Actions& out) {
  health_.record_success(proxy_);
  // Established once the header is out: a failed write is one error.
  connect_metric(MetricsCounter::tcp_connect_establish, out);
  metric(MetricsCounter::tcp_connect_success, 1, out);
  metric(MetricsCounter::connection_establish, 1, out);
  metric(MetricsCounter::traffic_out_bytes, initial_data_size_, out);
  log(LogLevel::debug, out, "diverted {} via next proxy {} ({})", upstream_,
      cfg_.proxy_addr[proxy_].addr.to_string(), peer_.to_string());
  finish({}, proxy_, out);
}

void ConnectCore::finish(error_code ec, std::size_t proxy, Actions& out) {
  phase_ = Phase::done;
  ConnectAction a;
  a.kind = Kind::done;
  a.proxy = proxy;
  a.error = ec;
  out.push_back(std::move(a));
}

// C5: cancellation ends the connect; it is no next proxy's failure.
bool ConnectCore::cancelled(error_code ec, Actions& out) {
  if (ec != asio::error::operation_aborted) return false;
  finish(ec, ConnectAction::npos, out);
  return true;
}

const ConnectCore::Actions& ConnectCore::on_connected(std::size_t proxy,
                                                      const asio::ip::address& peer,
                                                      TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::connecting)) return out;
  peer_ = peer;
  ConnectAction lat;
  lat.kind = Kind::connect_latency;
  lat.latency = now - attempt_started_;
  out.push_back(std::move(lat));
  phase_ = Phase::writing;
  ConnectAction a;
  a.kind = Kind::write_header;
  a.proxy = proxy_;
  out.push_back(std::move(a));
  return out;
}

const ConnectCore::Actions& ConnectCore::on_connect_failed(std::size_t proxy, error_code ec,
                                                           const char* option, TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::connecting)) return out;
  if (cancelled(ec, out)) return out;
  next_proxy_failed(
      ec, is_timeout(ec) ? MetricsCounter::tcp_connect_timeout : MetricsCounter::tcp_connect_error,
      option ? "connect failed (option " + std::string(option) + ")" : "connect failed", now, out);
  return out;
}

const ConnectCore::Actions& ConnectCore::on_header_written(std::size_t proxy, TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::writing)) return out;
  if (!cfg_.next_proxy_status_reply) {
    succeed(out);
    return out;
  }
  phase_ = Phase::reading_reply;  // C6
  ConnectAction a;
  a.kind = Kind::read_status_reply;
  a.proxy = proxy_;
  a.deadline = now + cfg_.connect.tcp_connect.each_timeout;
  out.push_back(std::move(a));
  return out;
}

const ConnectCore::Actions& ConnectCore::on_header_write_failed(std::size_t proxy, error_code ec,
                                                                TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::writing)) return out;
  if (cancelled(ec, out)) return out;
  next_proxy_failed(ec, MetricsCounter::tcp_connect_error, "sending the PROXY header failed", now,
                    out);
  return out;
}

// C6
const ConnectCore::Actions& ConnectCore::on_status_reply(
    std::size_t proxy, std::span<const std::uint8_t, ppv2::kStatusReplySize> bytes, TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::reading_reply)) return out;
  const auto reply = ppv2::parse_status_reply(bytes);
  if (!reply) {
    bad_status_reply(MetricsCounter::tcp_connect_error, "bad status reply (not DVT1)", now, out);
    return out;
  }
  if (reply->status == ppv2::UpstreamStatus::connected) {
    succeed(out);
    return out;
  }
  // The upstream's failure, not the next proxy's: it answered as it should.
  health_.record_success(proxy_);
  connect_metric(MetricsCounter::tcp_connect_establish, out);
  metric(MetricsCounter::tcp_connect_success, 1, out);
  const auto ec = ppv2::to_error_code(reply->status);
  log(LogLevel::warn, out, "next proxy {}: upstream {} failed after {} ms: {} (status {})",
      cfg_.proxy_addr[proxy_].addr.to_string(), upstream_, reply->connect_ms, ec.message(),
      static_cast<unsigned>(reply->status));
  finish(ec, proxy_, out);
  return out;
}

const ConnectCore::Actions& ConnectCore::on_status_reply_failed(std::size_t proxy, error_code ec,
                                                                TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::reading_reply)) return out;
  if (cancelled(ec, out)) return out;
  bad_status_reply(MetricsCounter::tcp_connect_error, "no status reply: " + ec.message(), now, out);
  return out;
}

const ConnectCore::Actions& ConnectCore::on_status_reply_timed_out(std::size_t proxy,
                                                                   TimePoint now) {
  Actions& out = fresh();
  if (!current(proxy, Phase::reading_reply)) return out;
  bad_status_reply(MetricsCounter::tcp_connect_timeout,
                   fmt::format("no status reply within {} ms (does it answer TLV 0xE7?)",
                               cfg_.connect.tcp_connect.each_timeout.count()),
                   now, out);
  return out;
}

}  // namespace divert::connector

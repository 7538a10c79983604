// RelaySession: what the copy path and the splice path share — byte counts,
// the relays_open gauge, the idle timeout, the first error and the result.
#include "divert/relay.hpp"

namespace divert::detail {

RelaySession::RelaySession(const asio::any_io_executor& ex, const RelayOptions& options,
                           RelayPath path)
    : flows_{{options.counters ? &options.counters->upload : nullptr,
              MetricsCounter::traffic_out_bytes,
              0,
              {}},
             {options.counters ? &options.counters->download : nullptr,
              MetricsCounter::traffic_in_bytes,
              0,
              {}}},
      metrics_(options.metrics),
      idle_timer_(ex),
      idle_timeout_(options.idle_timeout),
      last_activity_(RelayClock::now()),
      path_(path) {
  if (metrics_) {
    metrics_->relay_opened();
    counted_open_ = true;
  }
}

RelaySession::~RelaySession() {
  release_relays_open();
}

void RelaySession::release_relays_open() noexcept {
  if (!counted_open_) return;
  counted_open_ = false;
  metrics_->relay_closed();
}

void RelaySession::count(RelayDir d, std::size_t n) noexcept {
  if (n == 0) return;
  Flow& f = flows_[static_cast<int>(d)];
  f.bytes += n;
  if (f.live) f.live->fetch_add(n, std::memory_order_relaxed);
  if (metrics_) metrics_->add(f.metric, n);
}

// Re-armed at the deadline the last activity implies until the relay ends.
void RelaySession::start_idle_timer() {
  if (idle_timeout_.count() <= 0) return;
  idle_timer_.expires_at(last_activity_ + idle_timeout_);
  idle_timer_.async_wait([w = weak_from_this()](error_code ec) {
    auto self = w.lock();
    if (!self || ec || self->state_ != State::running) return;
    if (RelayClock::now() - self->last_activity_ >= self->idle_timeout_) {
      self->stop(make_error_code(errc::idle_timeout));
      return;
    }
    self->start_idle_timer();
  });
}

void RelaySession::end(error_code ec, Flow* blamed) {
  if (state_ != State::running) return;
  state_ = State::stopped;
  first_error_ = ec;
  if (blamed) blamed->error = ec;
  idle_timer_.cancel();
  close_streams();
}

void RelaySession::fail(RelayDir d, error_code ec) {
  end(ec, &flows_[static_cast<int>(d)]);
}

void RelaySession::stop(error_code ec) {
  end(ec, nullptr);
}

bool RelaySession::finish() noexcept {
  if (--running_ > 0) return false;
  if (state_ == State::running) state_ = State::finished;
  idle_timer_.cancel();
  release_relays_open();  // before the path reports its result
  return true;
}

RelayResult RelaySession::result() const {
  RelayResult r;
  r.upload_bytes = flows_[0].bytes;
  r.download_bytes = flows_[1].bytes;
  r.upload_error = flows_[0].error;
  r.download_error = flows_[1].error;
  r.error = first_error_;
  r.path = path_;
  return r;
}

RelayCompletion::~RelayCompletion() = default;

}  // namespace divert::detail

// The copy path's non-template part: the speed limit of one direction. The
// path itself (any Asio stream) is in divert/detail/relay.hpp.
#include <algorithm>

#include "divert/relay.hpp"

namespace divert::detail {

RelayPacer::RelayPacer(const asio::any_io_executor& ex, const SpeedLimitConfig& limit, RelayDir d)
    : timer(ex) {
  if (limit.enabled()) {
    bucket_.emplace(d == RelayDir::upload ? limit.upload : limit.download, limit.shift_millis,
                    RelayClock::now().time_since_epoch());
  }
}

// Waits until a whole read's worth (one buffer, or the bucket's capacity when
// that is smaller) is available, so a slow limit does not make tiny reads.
std::optional<RelayClock::time_point> RelayPacer::hold(std::size_t buffer_size, std::size_t& want) {
  want = buffer_size;
  if (!bucket_) return std::nullopt;
  const auto now = RelayClock::now().time_since_epoch();
  const std::uint64_t avail = bucket_->available(now);
  const std::uint64_t need = std::min<std::uint64_t>(buffer_size, bucket_->capacity());
  if (avail < need) {
    return RelayClock::time_point(
        std::chrono::duration_cast<RelayClock::duration>(bucket_->when_available(need, now)));
  }
  want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer_size, avail));
  return std::nullopt;
}

void RelayPacer::consumed(std::size_t n) noexcept {
  if (bucket_) bucket_->consume(n, RelayClock::now().time_since_epoch());
}

}  // namespace divert::detail

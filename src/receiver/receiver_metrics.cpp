#include <string>

#include "divert/receiver.hpp"

namespace divert {

namespace {

constexpr std::string_view kConnectErrorNames[] = {"refused", "timed_out", "unreachable",
                                                   "resolve_failed", "other"};

std::optional<ReceiverMetrics::ConnectError> connect_error_kind(ServeOutcome o) noexcept {
  using E = ReceiverMetrics::ConnectError;
  switch (o) {
    case ServeOutcome::refused:
      return E::refused;
    case ServeOutcome::timed_out:
      return E::timed_out;
    case ServeOutcome::unreachable:
      return E::unreachable;
    case ServeOutcome::resolve_failed:
      return E::resolve_failed;
    default:
      return std::nullopt;
  }
}

}  // namespace

void ReceiverMetrics::record(const ServeReport& r) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  outcomes_[static_cast<std::size_t>(r.outcome)].fetch_add(1, relaxed);
  auto kind = connect_error_kind(r.outcome);
  // `failed` before a connection was made is a connect error of another kind.
  if (!kind && r.outcome == ServeOutcome::failed && r.header_read &&
      r.upstream_endpoint == asio::ip::tcp::endpoint{})
    kind = ConnectError::other;
  if (kind) connect_errors_[static_cast<std::size_t>(*kind)].fetch_add(1, relaxed);
  bytes_up_.fetch_add(r.bytes_up, relaxed);
  bytes_down_.fetch_add(r.bytes_down, relaxed);
  if (r.status_reply_sent) status_replies_.fetch_add(1, relaxed);
}

std::uint64_t ReceiverMetrics::connections(ServeOutcome o) const noexcept {
  return outcomes_[static_cast<std::size_t>(o)].load(std::memory_order_relaxed);
}

std::uint64_t ReceiverMetrics::connect_errors(ConnectError kind) const noexcept {
  return connect_errors_[static_cast<std::size_t>(kind)].load(std::memory_order_relaxed);
}

std::string ReceiverMetrics::format_statsd(std::string_view prefix) const {
  std::string out;
  auto line = [&](std::string_view name, std::string_view leaf, std::uint64_t v) {
    if (!prefix.empty()) out.append(prefix).append(".");
    out.append(name).append(leaf).append(":").append(std::to_string(v)).append("|c\n");
  };
  for (std::size_t i = 0; i < kServeOutcomeCount; ++i)
    line("receiver.connection.", to_string(static_cast<ServeOutcome>(i)),
         connections(static_cast<ServeOutcome>(i)));
  for (std::size_t i = 0; i < kConnectErrorCount; ++i)
    line("receiver.upstream.connect_error.", kConnectErrorNames[i],
         connect_errors(static_cast<ConnectError>(i)));
  line("receiver.traffic.up.bytes", "", bytes_up());
  line("receiver.traffic.down.bytes", "", bytes_down());
  line("receiver.status_reply.sent", "", status_replies());
  return out;
}

}  // namespace divert

#include <string>

#include "divert/receiver.hpp"
#include "metrics/prometheus_text.hpp"

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

std::string format_prometheus(const ReceiverMetrics& m, std::string_view prefix) {
  prometheus::check_prefix(prefix);
  prometheus::Writer w;
  const auto name = [&](std::string_view dotted) {
    return prometheus::metric_name(prefix, dotted);
  };
  const std::string connections = name("receiver.connection_total");
  w.family(connections, "counter", "Connections served, by outcome.");
  for (std::size_t i = 0; i < kServeOutcomeCount; ++i) {
    const auto o = static_cast<ServeOutcome>(i);
    w.sample(connections, {{"outcome", std::string(to_string(o))}}, m.connections(o));
  }
  const std::string errors = name("receiver.upstream.connect_error_total");
  w.family(errors, "counter", "Upstream connects that failed, by kind.");
  for (std::size_t i = 0; i < ReceiverMetrics::kConnectErrorCount; ++i) {
    w.sample(errors, {{"kind", std::string(kConnectErrorNames[i])}},
             m.connect_errors(static_cast<ReceiverMetrics::ConnectError>(i)));
  }
  const auto counter = [&](std::string_view dotted, std::string_view help, std::uint64_t value) {
    const std::string n = name(dotted);
    w.family(n, "counter", help);
    w.sample(n, {}, value);
  };
  counter("receiver.traffic.up.bytes_total", "Bytes relayed toward upstreams.", m.bytes_up());
  counter("receiver.traffic.down.bytes_total", "Bytes relayed from upstreams.", m.bytes_down());
  counter("receiver.status_reply.sent_total", "Upstream status replies written.",
          m.status_replies());
  return w.take();
}

}  // namespace divert

// divert-next-proxy — the receiving side of divert as a program: divert::Receiver
// (trust list, PROXY header, destination policy with the loop guard, happy
// eyeballs, the upstream status reply, relay) behind the examples' accept
// loop. One JSON line per finished connection on stdout (health checks are
// counted, not logged; untrusted peers are logged at a bounded rate); the
// metrics as StatsD lines on stderr at exit.
#include <iostream>
#include <mutex>

#include "common/cli.hpp"
#include "common/log_rate_limit.hpp"
#include "common/metrics_http.hpp"
#include "common/server.hpp"
#include "divert/config_value.hpp"
#include "divert/receiver.hpp"

using namespace divert;
using namespace divert::examples;
using asio::ip::tcp;

namespace {

std::string quoted(const std::string& s) {
  // Appended, not `"\"" + ...`: GCC 12 gives a false -Wrestrict for that form.
  std::string out = "\"";
  out += json_escape(s);
  out += '"';
  return out;
}
template <class T>
std::string quoted_or_null(const std::optional<T>& v) {
  return v ? quoted(*v) : "null";
}

std::string endpoint_text(const tcp::endpoint& e) {
  const auto ip = e.address().to_string();
  return (e.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(e.port());
}

// "header: ...", "upstream: ...", "relay: ..." by the step that failed.
std::string error_text(const ServeReport& r) {
  switch (r.outcome) {
    case ServeOutcome::connected:
      return r.error ? "relay: " + r.error.message() : "";
    case ServeOutcome::health_check:
      return "";
    case ServeOutcome::untrusted:
      return "untrusted source";
    case ServeOutcome::bad_header:
      return "header: " + r.error.message();
    case ServeOutcome::denied:
      if (r.denial)
        return "upstream: denied: " + r.denial->address.to_string() + " " +
               std::string(net::to_string(r.denial->verdict));
      return "upstream: denied: not a valid host";
    default:
      return "upstream: " + r.error.message();
  }
}

class Log {
 public:
  explicit Log(std::uint64_t untrusted_per_second)
      : untrusted_(untrusted_per_second, std::chrono::seconds(1)) {}

  void write(const ServeReport& r) {
    if (r.outcome == ServeOutcome::health_check) return;  // counted in the metrics only
    std::lock_guard lock(mutex_);
    if (r.outcome == ServeOutcome::untrusted) {
      auto d = untrusted_.admit(LogRateLimit::Clock::now());
      if (d.suppressed) summary(d.suppressed);
      if (!d.log) return;
    }
    std::cout << line(r) << std::flush;
  }
  // At exit: the untrusted lines suppressed since the last one written.
  void flush() {
    std::lock_guard lock(mutex_);
    if (auto n = untrusted_.take_suppressed()) summary(n);
  }

 private:
  static std::string line(const ServeReport& r) {
    const std::string error = error_text(r);
    std::optional<std::string> task_id, status;
    if (r.task_id) task_id = r.task_id->to_string();
    return "{\"outcome\":" + quoted(std::string(to_string(r.outcome))) +
           ",\"peer\":" + quoted(endpoint_text(r.peer)) + ",\"src\":" + quoted(r.src) +
           ",\"dst\":" + quoted(r.dst) + ",\"upstream\":" + quoted(r.upstream) +
           ",\"tls_name\":" + quoted_or_null(r.tls_name) +
           ",\"username\":" + quoted_or_null(r.username) +
           ",\"task_id\":" + quoted_or_null(task_id) + ",\"status_reply\":" +
           (r.status_reply_sent ? std::to_string(static_cast<int>(*r.status_reply_sent)) : "null") +
           ",\"connect_ms\":" +
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(r.connect_time).count()) +
           ",\"bytes_up\":" + std::to_string(r.bytes_up) +
           ",\"bytes_down\":" + std::to_string(r.bytes_down) +
           ",\"error\":" + (error.empty() ? "null" : quoted(error)) + "}\n";
  }
  void summary(std::uint64_t n) {
    std::cout << "{\"outcome\":\"untrusted\",\"suppressed\":" << n
              << ",\"error\":\"untrusted source: log lines suppressed (rate limit)\"}\n"
              << std::flush;
  }

  std::mutex mutex_;
  LogRateLimit untrusted_;
};

// --resolve NAME=ADDR[,ADDR...]: a fixed table instead of DNS.
std::shared_ptr<net::Resolver> static_resolver(const std::vector<std::string>& entries) {
  auto stub = std::make_shared<net::StubResolver>();
  for (const auto& e : entries) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0)
      throw usage_error("--resolve needs NAME=ADDR[,ADDR...]");
    std::vector<asio::ip::address> addresses;
    std::string_view rest(e);
    rest.remove_prefix(eq + 1);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string one(rest.substr(0, comma));
      divert::error_code ec;
      addresses.push_back(asio::ip::make_address(one, ec));
      if (ec) throw usage_error("--resolve: '" + one + "' is not an IP address");
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    stub->add(e.substr(0, eq), addresses);
  }
  return stub;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli("divert-next-proxy",
          "The receiving side of divert: reads a PROXY v2 header (TLV 0xE0 = upstream) from a\n"
          "trusted peer, checks the upstream against the destination policy, connects and\n"
          "relays. One JSON line per connection; StatsD metrics on stderr at exit\n"
          "(and Prometheus metrics over HTTP with --metrics-listen).");
  cli.option("listen", "HOST:PORT", "address to listen on (default 127.0.0.1:3128)")
      .option("trust", "CIDR", "peers allowed to send headers (default 127.0.0.0/8 and ::1)", true)
      .option("allow-upstream", "CIDR",
              "upstream addresses allowed despite the default deny (loopback, link-local,\n"
              "unspecified, multicast); never this program's own listen address",
              true)
      .option("deny-upstream", "CIDR", "upstream addresses denied (the most specific rule wins)",
              true)
      .option("header-timeout", "DURATION",
              "time allowed for the whole header (default 5s, above 0)")
      .option("idle-timeout", "DURATION", "close a relay idle this long (default 300s; 0: never)")
      .option("connect-timeout", "DURATION", "per upstream connect attempt (default 10s)")
      .option("resolve-timeout", "DURATION", "for resolving an upstream name (default 5s)")
      .option("resolve", "NAME=ADDR[,ADDR]",
              "answer NAME from this table; when given, no DNS is used at all", true)
      .option("untrusted-log-rate", "N",
              "log lines per second for untrusted peers; the rest are counted (default 10)");
  server_cli_options(cli);
  metrics_cli_option(cli);
  try {
    if (!cli.parse(argc, argv)) return 0;
    ReceiverOptions o;
    for (auto& t : cli.all("trust")) o.trust.add(t, "--trust");
    if (o.trust.empty()) o.trust = TrustList::loopback();
    for (auto& t : cli.all("allow-upstream"))
      o.destinations.allow(net::Cidr::parse(t, "--allow-upstream"));
    for (auto& t : cli.all("deny-upstream"))
      o.destinations.deny(net::Cidr::parse(t, "--deny-upstream"));
    auto positive = [&](const char* name, std::chrono::milliseconds& out) {
      if (!cli.has(name)) return;
      out = parse_duration(std::string("--") + name, cli.get(name));
      if (out.count() <= 0) throw usage_error(std::string("--") + name + " must be above 0");
    };
    positive("header-timeout", o.header.timeout);
    positive("connect-timeout", o.connect.tcp_connect.each_timeout);
    positive("resolve-timeout", o.resolve_timeout);
    if (cli.has("idle-timeout"))
      o.relay.idle_timeout = parse_duration("--idle-timeout", cli.get("idle-timeout"));
    if (cli.has("resolve")) o.resolver = static_resolver(cli.all("resolve"));
    std::uint64_t untrusted_rate = 10;
    if (cli.has("untrusted-log-rate"))
      untrusted_rate = static_cast<std::uint64_t>(
          parse_int("--untrusted-log-rate", cli.get("untrusted-log-rate"), 0, 1'000'000));
    auto metrics = std::make_shared<ReceiverMetrics>();
    o.metrics = metrics;
    Receiver receiver(std::move(o));
    Log log(untrusted_rate);

    ServerOptions so;
    so.name = "divert-next-proxy";
    so.listen = parse_listen(cli.get("listen", "127.0.0.1:3128"));
    apply_server_options(cli, so);
    Server server(so, [&receiver, &log](Accepted a) -> asio::awaitable<void> {
      log.write(co_await receiver.async_serve(std::move(a.socket), a.peer, asio::use_awaitable));
    });
    server.bind();
    receiver.guard_listen(server.local_endpoint());  // the loop guard
    auto metrics_http = start_metrics_http(cli, [metrics] { return format_prometheus(*metrics); });
    if (metrics_http) receiver.guard_listen(metrics_http->local_endpoint());  // no upstream either
    std::cerr << "divert-next-proxy: listening on " << server.local_endpoint() << "\n";
    if (metrics_http) {
      std::cerr << "divert-next-proxy: metrics on http://" << metrics_http->local_endpoint()
                << "/metrics\n";
    }
    server.run();
    log.flush();
    std::cerr << metrics->format_statsd("divert");
    return 0;
  } catch (const usage_error& e) {
    std::cerr << "divert-next-proxy: " << e.what() << "\ntry --help\n";
    return 2;
  } catch (const config_error& e) {
    std::cerr << "divert-next-proxy: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "divert-next-proxy: " << e.what() << "\n";
    return 1;
  }
}

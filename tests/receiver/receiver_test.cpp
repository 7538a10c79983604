// divert::Receiver and TrustList (include/divert/receiver.hpp). The pure parts
// without sockets; serving on loopback with real sockets, a stub resolver and
// an origin that counts its accepts (so "denied" is proven to connect nowhere).
#include <sys/socket.h>
#include <sys/time.h>

#include <asio.hpp>
#include <atomic>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "divert/error.hpp"
#include "divert/ppv2/encoder.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/receiver.hpp"
#include "support/catch.hpp"

using namespace divert;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

asio::ip::address ip(const char* text) {
  return asio::ip::make_address(text);
}

}  // namespace

TEST_CASE("TrustList: CIDRs, IPv4-mapped peers match IPv4 entries, errors name the value",
          "[receiver][trust]") {
  TrustList t;
  CHECK_FALSE(t.trusts(ip("127.0.0.1")));  // empty: nobody
  t.add("10.0.0.0/8").add("2001:db8::/32").add("::ffff:192.168.1.0/120");
  CHECK(t.trusts(ip("10.1.2.3")));
  CHECK(t.trusts(ip("::ffff:10.1.2.3")));  // a dual-stack listener sees IPv4 peers mapped
  CHECK(t.trusts(ip("2001:db8::1")));
  CHECK(t.trusts(ip("192.168.1.77")));  // the ::ffff:a.b.c.d/120 form is 192.168.1.0/24
  CHECK(t.trusts(ip("::ffff:192.168.1.77")));
  CHECK_FALSE(t.trusts(ip("192.168.2.1")));
  CHECK_FALSE(t.trusts(ip("11.0.0.1")));
  CHECK_FALSE(t.trusts(ip("::1")));
  CHECK_FALSE(t.trusts(ip("2001:db9::1")));
  CHECK(TrustList::loopback().trusts(ip("127.9.9.9")));
  CHECK(TrustList::loopback().trusts(ip("::ffff:127.0.0.1")));
  CHECK(TrustList::loopback().trusts(ip("::1")));
  CHECK_FALSE(TrustList::loopback().trusts(ip("10.0.0.1")));
  for (const char* bad : {"10.0.0.0/33", "nope/8", "fe80::1%eth0", "10.0.0.0/", "::/129"}) {
    INFO(bad);
    try {
      TrustList().add(bad, "--trust");
      FAIL("accepted");
    } catch (const config_error& e) {
      CHECK(std::string(e.what()).find(bad) != std::string::npos);
      CHECK(std::string(e.what()).find("--trust") != std::string::npos);
    }
  }
}

TEST_CASE("ServeOutcome names and status reply bytes", "[receiver]") {
  CHECK(to_string(ServeOutcome::health_check) == "health_check");
  CHECK(to_string(ServeOutcome::resolve_failed) == "resolve_failed");
  using S = ppv2::UpstreamStatus;
  CHECK(upstream_status(ServeOutcome::connected) == S::connected);
  CHECK(upstream_status(ServeOutcome::refused) == S::refused);
  CHECK(upstream_status(ServeOutcome::timed_out) == S::timed_out);
  CHECK(upstream_status(ServeOutcome::unreachable) == S::unreachable);
  CHECK(upstream_status(ServeOutcome::resolve_failed) == S::resolve_failed);
  CHECK(upstream_status(ServeOutcome::denied) == S::denied);
  CHECK(upstream_status(ServeOutcome::failed) == S::other);
}

namespace {
// One connected connection (10 bytes up, 20 down, a status reply), one
// refused, two health checks.
void record_example(ReceiverMetrics& m) {
  ServeReport r;
  r.outcome = ServeOutcome::connected;
  r.bytes_up = 10;
  r.bytes_down = 20;
  r.status_reply_sent = ppv2::UpstreamStatus::connected;
  m.record(r);
  r = {};
  r.outcome = ServeOutcome::refused;
  m.record(r);
  r.outcome = ServeOutcome::health_check;
  m.record(r);
  m.record(r);
}
}  // namespace

TEST_CASE("ReceiverMetrics: outcomes, connect errors by kind, bytes, StatsD lines",
          "[receiver][metrics]") {
  ReceiverMetrics m;
  record_example(m);
  CHECK(m.connections(ServeOutcome::connected) == 1);
  CHECK(m.connections(ServeOutcome::health_check) == 2);
  CHECK(m.connect_errors(ReceiverMetrics::ConnectError::refused) == 1);
  CHECK(m.connect_errors(ReceiverMetrics::ConnectError::timed_out) == 0);
  const auto s = m.format_statsd("divert");
  CHECK(s.find("divert.receiver.connection.connected:1|c\n") != std::string::npos);
  CHECK(s.find("divert.receiver.connection.health_check:2|c\n") != std::string::npos);
  CHECK(s.find("divert.receiver.upstream.connect_error.refused:1|c\n") != std::string::npos);
  CHECK(s.find("divert.receiver.traffic.up.bytes:10|c\n") != std::string::npos);
  CHECK(s.find("divert.receiver.traffic.down.bytes:20|c\n") != std::string::npos);
  CHECK(s.find("divert.receiver.status_reply.sent:1|c\n") != std::string::npos);
}

TEST_CASE("ReceiverMetrics: Prometheus text exposition, exact", "[receiver][metrics]") {
  ReceiverMetrics m;
  record_example(m);
  CHECK(format_prometheus(m) ==
        "# HELP divert_receiver_connection_total Connections served, by outcome.\n"
        "# TYPE divert_receiver_connection_total counter\n"
        "divert_receiver_connection_total{outcome=\"connected\"} 1\n"
        "divert_receiver_connection_total{outcome=\"health_check\"} 2\n"
        "divert_receiver_connection_total{outcome=\"untrusted\"} 0\n"
        "divert_receiver_connection_total{outcome=\"bad_header\"} 0\n"
        "divert_receiver_connection_total{outcome=\"denied\"} 0\n"
        "divert_receiver_connection_total{outcome=\"refused\"} 1\n"
        "divert_receiver_connection_total{outcome=\"timed_out\"} 0\n"
        "divert_receiver_connection_total{outcome=\"unreachable\"} 0\n"
        "divert_receiver_connection_total{outcome=\"resolve_failed\"} 0\n"
        "divert_receiver_connection_total{outcome=\"failed\"} 0\n"
        "# HELP divert_receiver_upstream_connect_error_total Upstream connects that failed, by "
        "kind.\n"
        "# TYPE divert_receiver_upstream_connect_error_total counter\n"
        "divert_receiver_upstream_connect_error_total{kind=\"refused\"} 1\n"
        "divert_receiver_upstream_connect_error_total{kind=\"timed_out\"} 0\n"
        "divert_receiver_upstream_connect_error_total{kind=\"unreachable\"} 0\n"
        "divert_receiver_upstream_connect_error_total{kind=\"resolve_failed\"} 0\n"
        "divert_receiver_upstream_connect_error_total{kind=\"other\"} 0\n"
        "# HELP divert_receiver_traffic_up_bytes_total Bytes relayed toward upstreams.\n"
        "# TYPE divert_receiver_traffic_up_bytes_total counter\n"
        "divert_receiver_traffic_up_bytes_total 10\n"
        "# HELP divert_receiver_traffic_down_bytes_total Bytes relayed from upstreams.\n"
        "# TYPE divert_receiver_traffic_down_bytes_total counter\n"
        "divert_receiver_traffic_down_bytes_total 20\n"
        "# HELP divert_receiver_status_reply_sent_total Upstream status replies written.\n"
        "# TYPE divert_receiver_status_reply_sent_total counter\n"
        "divert_receiver_status_reply_sent_total 1\n");
  CHECK(format_prometheus(m, "").rfind("# HELP receiver_connection_total ", 0) == 0);
  CHECK_THROWS_AS(format_prometheus(m, "bad prefix"), std::invalid_argument);
}

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes header(const std::string& upstream, bool status_reply, const std::string& payload = "") {
  ppv2::HeaderSpec s;
  s.src = *ppv2::Endpoint::ip_literal("192.0.2.1", 40000);
  s.dst = *ppv2::Endpoint::ip_literal("192.0.2.2", 3128);
  s.upstream = upstream;
  s.status_reply = status_reply;
  Bytes out(ppv2::encoded_size(s).size);
  REQUIRE_FALSE(ppv2::encode(s, out).ec);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes local_header() {
  ppv2::HeaderSpec s;
  s.command = ppv2::Command::local;
  Bytes out(ppv2::encoded_size(s).size);
  REQUIRE_FALSE(ppv2::encode(s, out).ec);
  return out;
}

// An io_context on its own thread with the receiver's listening socket and an
// origin that counts accepts, greets with "hello" and echoes what it reads.
struct Env {
  asio::io_context io;
  tcp::acceptor front{io, {ip("127.0.0.1"), 0}};
  tcp::acceptor origin{io, {ip("127.0.0.1"), 0}};
  std::atomic<int> origin_accepts{0};
  std::string origin_got;  // io thread only until the report is in
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::thread thread;

  Env() {
    accept_origin();
    thread = std::thread([this] { io.run(); });
  }
  ~Env() {
    work.reset();
    io.stop();
    thread.join();
  }
  std::uint16_t origin_port() const { return origin.local_endpoint().port(); }

  void accept_origin() {
    origin.async_accept([this](divert::error_code ec, tcp::socket s) {
      if (ec) return;
      ++origin_accepts;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      auto buf = std::make_shared<std::array<char, 256>>();
      asio::async_write(
          *sock, asio::buffer("hello", 5),
          [sock, buf, this](divert::error_code, std::size_t) { read_origin(sock, buf); });
      accept_origin();
    });
  }
  void read_origin(std::shared_ptr<tcp::socket> sock, std::shared_ptr<std::array<char, 256>> buf) {
    sock->async_read_some(asio::buffer(*buf),
                          [this, sock, buf](divert::error_code ec, std::size_t n) {
                            if (ec) return;  // the socket closes with the last reference
                            origin_got.append(buf->data(), n);
                            read_origin(sock, buf);
                          });
  }

  // A blocking client connected to `front` (reads time out after 5 s), the
  // accepted end handed to the receiver (use_future), and `first` sent.
  struct Served {
    asio::io_context client_io;
    tcp::socket client{client_io};
    std::future<ServeReport> report;
    // The report once the serve has completed (at most 10 s).
    ServeReport result() {
      REQUIRE(report.wait_for(10s) == std::future_status::ready);
      return report.get();
    }
  };
  std::unique_ptr<Served> serve(const Receiver& receiver, const Bytes& first) {
    auto s = std::make_unique<Served>();
    s->client.connect(front.local_endpoint());
    timeval tv{5, 0};
    ::setsockopt(s->client.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    tcp::socket accepted = front.accept();
    s->report = receiver.async_serve(std::move(accepted), asio::use_future);
    if (!first.empty()) asio::write(s->client, asio::buffer(first));
    return s;
  }
};

// Reads exactly n bytes (or until EOF/timeout) from a blocking socket.
std::string read_n(tcp::socket& s, std::size_t n) {
  std::string out(n, '\0');
  divert::error_code ec;
  auto got = asio::read(s, asio::buffer(out), ec);
  out.resize(got);
  return out;
}
std::string read_to_eof(tcp::socket& s) {
  std::string out;
  divert::error_code ec;
  asio::read(s, asio::dynamic_buffer(out), ec);
  return out;
}

std::string reply_bytes(ppv2::UpstreamStatus status) {
  const auto b = ppv2::encode_status_reply({status, 0});
  return std::string(b.begin(), b.begin() + 6);  // the ms field varies
}

// The client's side to EOF is exactly one status reply with `status` (its
// milliseconds field aside); returns the report.
ServeReport result_after_reply(Env::Served& s, ppv2::UpstreamStatus status) {
  const auto got = read_to_eof(s.client);
  REQUIRE(got.size() == 8);
  CHECK(got.substr(0, 6) == reply_bytes(status));
  return s.result();
}

ReceiverOptions loopback_options() {
  ReceiverOptions o;
  o.trust = TrustList::loopback();
  o.destinations.allow(net::Cidr::parse("127.0.0.0/8")).allow(net::Cidr::parse("::1"));
  o.close_linger = 200ms;
  return o;
}

}  // namespace

TEST_CASE("Receiver: connected — status reply before any upstream byte, extra bytes forwarded",
          "[receiver][live]") {
  Env env;
  auto metrics = std::make_shared<ReceiverMetrics>();
  auto o = loopback_options();
  o.metrics = metrics;
  Receiver receiver(std::move(o));
  const std::string up = "127.0.0.1:" + std::to_string(env.origin_port());
  auto s = env.serve(receiver, header(up, true, "ping"));
  const std::string reply = read_n(s->client, 8);
  REQUIRE(reply.size() == 8);
  CHECK(reply.substr(0, 6) == reply_bytes(ppv2::UpstreamStatus::connected));  // "DVT1" 0 0
  CHECK(read_n(s->client, 5) == "hello");  // the origin's bytes only after the reply
  s->client.shutdown(tcp::socket::shutdown_send);
  CHECK(read_to_eof(s->client).empty());
  auto r = s->result();
  CHECK(r.outcome == ServeOutcome::connected);
  CHECK_FALSE(r.error);
  CHECK(r.status_reply_requested);
  CHECK(r.status_reply_sent == ppv2::UpstreamStatus::connected);
  CHECK(r.src == "192.0.2.1:40000");
  CHECK(r.upstream == up);
  CHECK(r.bytes_up == 4);
  CHECK(r.bytes_down == 5);
  CHECK(r.peer.address() == ip("127.0.0.1"));
  CHECK(env.origin_accepts == 1);
  CHECK(env.origin_got == "ping");
  CHECK(metrics->connections(ServeOutcome::connected) == 1);
}

TEST_CASE(
    "Receiver: a client that half-closes right after its header still gets the reply and the "
    "origin's bytes",
    "[receiver][live][hostile]") {
  Env env;
  Receiver receiver(loopback_options());
  auto s =
      env.serve(receiver, header("127.0.0.1:" + std::to_string(env.origin_port()), true, "ping"));
  s->client.shutdown(tcp::socket::shutdown_send);  // FIN before the upstream is even connected
  const auto got = read_to_eof(s->client);         // the origin closes once it sees the FIN
  REQUIRE(got.size() == 8 + 5);
  CHECK(got.substr(0, 6) == reply_bytes(ppv2::UpstreamStatus::connected));
  CHECK(got.substr(8) == "hello");
  auto r = s->result();
  CHECK(r.outcome == ServeOutcome::connected);
  CHECK(r.bytes_up == 4);
  CHECK(env.origin_got == "ping");
}

TEST_CASE("Receiver: without 0xE7 no reply is written (HAProxy-compatible)", "[receiver][live]") {
  Env env;
  Receiver receiver(loopback_options());
  auto s = env.serve(receiver, header("127.0.0.1:" + std::to_string(env.origin_port()), false));
  CHECK(read_n(s->client, 5) == "hello");  // the first bytes are the origin's
  s->client.shutdown(tcp::socket::shutdown_send);
  read_to_eof(s->client);
  auto r = s->result();
  CHECK(r.outcome == ServeOutcome::connected);
  CHECK_FALSE(r.status_reply_sent);
}

TEST_CASE("Receiver: refused upstream — status 1, closed after the reply", "[receiver][live]") {
  Env env;
  tcp::acceptor closed_port(env.io, {ip("127.0.0.1"), 0});
  const auto port = closed_port.local_endpoint().port();
  closed_port.close();  // nothing listens there now: RST
  Receiver receiver(loopback_options());
  auto s = env.serve(receiver, header("127.0.0.1:" + std::to_string(port), true, "held"));
  auto r = result_after_reply(*s, ppv2::UpstreamStatus::refused);
  CHECK(r.outcome == ServeOutcome::refused);
  CHECK(r.error == asio::error::connection_refused);
  CHECK(r.status_reply_sent == ppv2::UpstreamStatus::refused);
}

// Only loopback addresses here, even in the answers of the stub resolver, so
// that a regressed policy could not connect off this host (non-loopback
// targets such as 169.254.169.254 are tested against the program in a network
// namespace: tests/reliability/next_proxy_test.cpp).
TEST_CASE("Receiver: a name with one denied address is denied; no connect; status 5",
          "[receiver][live][policy]") {
  Env env;
  auto stub = std::make_shared<net::StubResolver>();
  // An allowed address first, a denied one second: denied because of the second.
  stub->add("partly.test", {ip("127.0.0.5"), ip("127.0.0.9")});
  stub->add("allowed.test", {ip("127.0.0.5")});
  stub->add("wholly.test", {ip("::1")});
  ReceiverOptions o;
  o.trust = TrustList::loopback();
  o.resolver = stub;
  o.close_linger = 200ms;
  Receiver defaults(o);  // the default deny only
  o.destinations.allow(net::Cidr::parse("127.0.0.0/8")).deny(net::Cidr::parse("127.0.0.9"));
  Receiver ruled(o);  // loopback allowed, but not 127.0.0.9
  const std::string port = std::to_string(env.origin_port());
  auto expect_denied = [&](const Receiver& receiver, const std::string& name) {
    INFO(name);
    auto s = env.serve(receiver, header(name + ":" + port, true, "x"));
    auto r = result_after_reply(*s, ppv2::UpstreamStatus::denied);
    CHECK(r.outcome == ServeOutcome::denied);
    CHECK(r.error == errc::upstream_denied);
  };
  for (std::string name : {"partly.test", "allowed.test", "wholly.test", "127.0.0.1", "localhost",
                           "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "127.1", "2130706433"})
    expect_denied(defaults, name);
  // Other spellings of loopback and of this host (hostile review): mapped and
  // long-form IPv6, hex, octal and zero-padded IPv4, names in other cases or
  // with a trailing dot, a zone index. (Loopback only, as above.)
  for (std::string name :
       {"[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "[0::1]", "[::]", "[::ffff:0.0.0.0]",
        "0x7f.0.0.1", "0x7f000001", "0177.0.0.1", "017700000001", "127.000.000.001", "LOCALHOST",
        "localhost.", "LocalHost.", "a.b.localhost", "x.localhost."})
    expect_denied(defaults, name);
  // A zone index is no valid 0xE0 at all: the header is refused, no reply.
  for (std::string name : {"[::1%25lo]", "[::1%lo]"}) {
    INFO(name);
    auto s = env.serve(defaults, header(name + ":" + port, true, "x"));
    CHECK(read_to_eof(s->client).empty());
    auto r = s->result();
    CHECK(r.outcome == ServeOutcome::bad_header);
    CHECK(r.error == ppv2::errc::bad_upstream);
  }
  expect_denied(ruled, "partly.test");
  expect_denied(ruled, "127.0.0.9");
  CHECK(env.origin_accepts == 0);
  // The same receiver connects to a name whose every address is allowed
  // (the origin listens on 127.0.0.1 only: 127.0.0.5 is refused, status 1).
  auto s = env.serve(ruled, header("allowed.test:" + port, true));
  CHECK(read_to_eof(s->client).substr(0, 6) == reply_bytes(ppv2::UpstreamStatus::refused));
}

TEST_CASE("Receiver: resolve failure — status 4", "[receiver][live]") {
  Env env;
  auto stub = std::make_shared<net::StubResolver>();  // knows no name
  auto o = loopback_options();
  o.resolver = stub;
  Receiver receiver(std::move(o));
  auto s = env.serve(receiver, header("nowhere.test:80", true));
  CHECK(result_after_reply(*s, ppv2::UpstreamStatus::resolve_failed).outcome ==
        ServeOutcome::resolve_failed);
}

TEST_CASE("Receiver: the loop guard holds even when an allow rule covers the listen address",
          "[receiver][live][policy]") {
  Env env;
  Receiver receiver(loopback_options());  // allows 127.0.0.0/8
  receiver.guard_listen(env.front.local_endpoint());
  const std::string self = "127.0.0.1:" + std::to_string(env.front.local_endpoint().port());
  auto s = env.serve(receiver, header(self, true));
  auto r = result_after_reply(*s, ppv2::UpstreamStatus::denied);
  CHECK(r.outcome == ServeOutcome::denied);
  REQUIRE(r.denial);
  CHECK(r.denial->verdict == net::DestinationVerdict::denied_loop_guard);
  // The unspecified address on that port reaches this host too.
  auto s2 = env.serve(
      receiver, header("0.0.0.0:" + std::to_string(env.front.local_endpoint().port()), false));
  CHECK(read_to_eof(s2->client).empty());
  CHECK(s2->result().outcome == ServeOutcome::denied);
}

TEST_CASE("Receiver: LOCAL is a health check, closed cleanly; untrusted peers are not read",
          "[receiver][live]") {
  Env env;
  auto metrics = std::make_shared<ReceiverMetrics>();
  auto o = loopback_options();
  o.metrics = metrics;
  Receiver receiver(o);
  auto s = env.serve(receiver, local_header());
  CHECK(read_to_eof(s->client).empty());  // FIN, not RST: read_to_eof sees a clean EOF
  auto r = s->result();
  CHECK(r.outcome == ServeOutcome::health_check);
  CHECK_FALSE(r.error);
  CHECK(metrics->connections(ServeOutcome::health_check) == 1);

  o.trust = TrustList().add("10.0.0.0/8");
  Receiver strict(o);
  auto u = env.serve(strict, header("127.0.0.1:" + std::to_string(env.origin_port()), true));
  CHECK(read_to_eof(u->client).empty());
  auto ur = u->result();
  CHECK(ur.outcome == ServeOutcome::untrusted);
  CHECK(ur.error == errc::untrusted_source);
  CHECK_FALSE(ur.header_read);
  CHECK(env.origin_accepts == 0);
}

TEST_CASE("Receiver: a bad header is reported as such and connects nowhere", "[receiver][live]") {
  Env env;
  auto o = loopback_options();
  o.header.timeout = 300ms;
  Receiver receiver(o);
  auto s = env.serve(receiver, Bytes{'G', 'E', 'T', ' ', '/'});
  CHECK(read_to_eof(s->client).empty());
  CHECK(s->result().outcome == ServeOutcome::bad_header);
  auto late = env.serve(receiver, {});  // sends nothing: header timeout
  auto r = late->result();
  CHECK(r.outcome == ServeOutcome::bad_header);
  CHECK(r.error == errc::header_timeout);
  CHECK(env.origin_accepts == 0);
}

TEST_CASE("Receiver: async_serve with a callback on a strand, and cancellation",
          "[receiver][live]") {
  Env env;
  auto o = loopback_options();
  o.header.timeout = 10s;
  Receiver receiver(o);
  asio::io_context client_io;
  tcp::socket client(client_io);
  client.connect(env.front.local_endpoint());
  tcp::socket accepted = env.front.accept();
  auto strand = asio::make_strand(env.io);
  asio::cancellation_signal cancel;
  std::promise<std::pair<ServeReport, bool>> done;
  receiver.async_serve(std::move(accepted),
                       asio::bind_cancellation_slot(
                           cancel.slot(), asio::bind_executor(strand, [&](ServeReport r) {
                             done.set_value({std::move(r), strand.running_in_this_thread()});
                           })));
  std::this_thread::sleep_for(100ms);  // the header read is pending (nothing sent)
  asio::post(strand, [&] { cancel.emit(asio::cancellation_type::terminal); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(5s) == std::future_status::ready);  // long before the 10 s header timeout
  auto [r, on_strand] = f.get();
  CHECK(on_strand);
  CHECK(r.outcome == ServeOutcome::failed);
  CHECK(r.error == asio::error::operation_aborted);
}

TEST_CASE("Receiver: cancelled while relaying — both sides closed, a report, no exception",
          "[receiver][live]") {
  Env env;
  Receiver receiver(loopback_options());
  asio::io_context client_io;
  tcp::socket client(client_io);
  client.connect(env.front.local_endpoint());
  timeval tv{5, 0};
  ::setsockopt(client.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  tcp::socket accepted = env.front.accept();
  asio::cancellation_signal cancel;
  std::promise<ServeReport> done;
  receiver.async_serve(std::move(accepted),
                       asio::bind_cancellation_slot(
                           cancel.slot(), [&](ServeReport r) { done.set_value(std::move(r)); }));
  asio::write(client,
              asio::buffer(header("127.0.0.1:" + std::to_string(env.origin_port()), false)));
  CHECK(read_n(client, 5) == "hello");  // relaying now
  asio::post(env.io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  auto r = f.get();
  CHECK(r.outcome == ServeOutcome::connected);
  CHECK(r.bytes_down == 5);
  CHECK(read_to_eof(client).empty());  // closed by the receiver
}

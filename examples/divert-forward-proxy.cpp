// divert-forward-proxy — an HTTP proxy that diverts every request through a
// next proxy with divert: CONNECT -> tcp connect, http:// -> http forward,
// https:// -> https forward (TLS to the origin on our side). Client
// connections are kept alive: each request is parsed (common/http_request,
// on http-parser) and routed by its own target; connect_upstream() is where a
// request gets its upstream connection, reused or new.
#include <poll.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <iostream>
#include <map>
#include <mutex>
#include <variant>

#include "common/auth.hpp"
#include "common/cli.hpp"
#include "common/config_file.hpp"
#include "common/destination_gate.hpp"
#include "common/http_request.hpp"
#include "common/metrics_http.hpp"
#include "common/server.hpp"
#include "divert/connector.hpp"
#include "divert/ppv2/encoder.hpp"

using namespace divert;
using namespace divert::examples;
using asio::ip::tcp;

namespace {

struct Config {
  std::optional<DivertTcpConnector> connector;
  ProxyUsers users;
  std::unique_ptr<asio::ssl::context> tls;
  std::chrono::milliseconds head_timeout{30000};
  std::chrono::milliseconds response_timeout{60000};
  // Refuses targets before connecting (403), and the logger its refusals go
  // to (the connector's shared_logger). Replaced whole when a reload changes
  // the next proxies (the gate's loop guard covers them): take it with gate().
  struct Admission {
    DestinationGate gate;
    Logger log;
  };
  std::shared_ptr<const Admission> admission;
  mutable std::mutex admission_mutex;
  std::shared_ptr<const Admission> gate() const {
    std::lock_guard lock(admission_mutex);
    return admission;
  }
  void set_gate(DestinationGate g, Logger log) {
    auto next = std::make_shared<const Admission>(Admission{std::move(g), std::move(log)});
    std::lock_guard lock(admission_mutex);
    admission = std::move(next);
  }
  // No byte this long: a kept-alive client between requests, a tunnel either
  // way, a response once it has started (0: never).
  std::chrono::milliseconds idle_timeout{300000};
};

asio::awaitable<void> reply(tcp::socket& s, int status, std::string_view reason,
                            std::string_view extra_headers = {}) {
  std::string body = std::to_string(status) + " " + std::string(reason) + "\n";
  std::string msg =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" + body;
  co_await asio::async_write(s, asio::buffer(msg),
                             asio::experimental::as_tuple(asio::use_awaitable));
  divert::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
}

const char* reason_for(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Error";
}

// The answer for a failed connect. With next_proxy_status_reply on, the next
// proxy's report on the upstream (errc::upstream_*) arrives here too: denied by
// its destination policy -> 403, timed out -> 504, anything else -> 502.
int status_for(const divert::error_code& ec) {
  if (ec == errc::upstream_denied) return 403;
  if (ec == asio::error::timed_out || ec == std::errc::timed_out ||
      ec == errc::tls_handshake_timeout || ec == errc::upstream_timed_out)
    return 504;
  return 502;
}

using Clock = std::chrono::steady_clock;
using TlsStream = DivertTcpConnector::TlsStream;
using LowestLayer = tcp::socket::lowest_layer_type;
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Cancels the pending operations on `socket` when `timeout` passes without
// progress (touch() restarts the wait from now); a zero timeout never fires
// (the options' "0: never"). The timer's handler may run
// after the owner is gone (a completion already queued when cancel() is
// called): it touches only the shared state, and the socket only while the
// guarded operation is still pending (one thread per connection, so no
// atomics are needed).
class Deadline {
 public:
  Deadline(LowestLayer& socket, std::chrono::milliseconds timeout)
      : state_(std::make_shared<State>(socket.get_executor(), timeout)) {
    if (timeout.count() > 0) arm(state_, &socket);
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline() { finish(); }
  // Progress: the timeout counts from now.
  void touch() { state_->last = Clock::now(); }
  // The guarded operation is over: the deadline no longer applies.
  void finish() {
    state_->done = true;
    state_->timer.cancel();
  }
  bool fired() const { return state_->fired; }

 private:
  struct State {
    State(const asio::any_io_executor& ex, std::chrono::milliseconds t) : timer(ex), timeout(t) {}
    asio::steady_timer timer;
    std::chrono::milliseconds timeout;
    Clock::time_point last = Clock::now();
    bool done = false;
    bool fired = false;
  };
  static void arm(const std::shared_ptr<State>& st, LowestLayer* socket) {
    st->timer.expires_at(st->last + st->timeout);
    st->timer.async_wait([st, socket](divert::error_code ec) {
      if (ec || st->done) return;
      if (Clock::now() < st->last + st->timeout) return arm(st, socket);  // touched meanwhile
      st->fired = true;
      socket->cancel(ec);
    });
  }
  std::shared_ptr<State> state_;
};

// Where a forwarded request goes. A client connection's upstream connection
// (with the PROXY header it was opened with) carries a later request only
// when that request has the same key, as g3proxy's http forward reuses them.
struct UpstreamKey {
  ProxyRequestKind kind = ProxyRequestKind::http_forward;
  std::string authority;                // host:port, TLV 0xE0
  std::optional<std::string> username;  // TLV 0xE2
  std::string tls_name;                 // TLV 0xE1 (https forward)
  bool operator==(const UpstreamKey&) const = default;
};

struct UpstreamConn {
  UpstreamKey key;
  std::variant<tcp::socket, TlsStream> stream;
  int requests = 0;  // requests sent on it so far
  LowestLayer& socket() {
    return std::visit([](auto& s) -> LowestLayer& { return s.lowest_layer(); }, stream);
  }
};

// One client connection: its unparsed bytes and its current upstream connection.
struct ClientConn {
  tcp::socket& socket;
  Config& cfg;
  tcp::endpoint peer, local;
  std::string in;                          // bytes read from the client, not parsed yet
  std::unique_ptr<UpstreamConn> upstream;  // kept between requests while reusable
};

// True when an idle upstream connection has something to read: the origin
// closed it (or sent bytes nobody asked for), so it must not carry a request.
bool readable_while_idle(UpstreamConn& up) {
  pollfd p{up.socket().native_handle(), POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) != 0;
}

enum class ReadHead { ok, closed };

// Reads the next request's head. The first request's head must arrive within
// head_timeout of the accept; on a kept-alive connection the next request's
// first byte may take idle_timeout, then its head head_timeout. Answers
// malformed requests (and returns closed); body bytes read with the head are
// appended, re-framed, to `body`.
asio::awaitable<ReadHead> read_head(ClientConn& c, RequestParser& rp, std::string& body,
                                    bool first) {
  bool started = first || !c.in.empty();
  std::optional<Deadline> deadline;
  deadline.emplace(c.socket, started ? c.cfg.head_timeout : c.cfg.idle_timeout);
  char chunk[16 * 1024];
  for (;;) {
    if (!c.in.empty()) {
      auto used = rp.feed(c.in, body);
      c.in.erase(0, used);
      if (rp.state() == RequestParser::State::error) {
        deadline->finish();
        co_await reply(c.socket, rp.error_status(), reason_for(rp.error_status()));
        co_return ReadHead::closed;
      }
      if (rp.state() != RequestParser::State::head) co_return ReadHead::ok;
    }
    auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(chunk), as_tuple);
    if (ec) co_return ReadHead::closed;  // closed, or the deadline passed
    if (!started) {
      started = true;
      deadline.emplace(c.socket, c.cfg.head_timeout);
    }
    c.in.append(chunk, n);
  }
}

// Checks the request's Basic proxy credentials when users are configured;
// answers 407 and returns false when they do not match.
asio::awaitable<bool> authenticate(ClientConn& c, const RequestHead& head,
                                   std::optional<std::string>& username) {
  if (c.cfg.users.empty()) co_return true;
  username = c.cfg.users.authenticate(head.header("Proxy-Authorization"));
  if (!username) {
    co_await reply(c.socket, 407, reason_for(407),
                   "Proxy-Authenticate: Basic realm=\"divert\"\r\n");
    co_return false;
  }
  co_return true;
}

// The destination policy and loop guard, checked whenever a new diverted
// connection is about to be made (a reused one was checked when it was made,
// so a keep-alive request to the same upstream resolves nothing again).
// Answers the client (403, or 502/504 for a name that does not resolve here)
// and returns false when the target is refused.
asio::awaitable<bool> admit(ClientConn& c, const Task& task) {
  const auto admission = c.cfg.gate();  // held while the check runs
  auto refused = co_await admission->gate.check(task.upstream);
  if (!refused) co_return true;
  admission->log.logf(LogLevel::info, "", "refused: {}", refused->reason);
  co_await reply(c.socket, refused->status, reason_for(refused->status));
  co_return false;
}

// CONNECT: the client's connection becomes a tunnel (bytes after the head go
// first). The client gets 200 once tcp_connect returns: by default as soon as
// the next proxy is connected (PROXY v2 has no reply); with the connector key
// next_proxy_status_reply, only once the next proxy reported the upstream
// connected, and its failure report is answered instead (status_for).
asio::awaitable<void> tunnel(ClientConn& c, Task task) {
  auto& connector = *c.cfg.connector;
  divert::error_code ec;
  c.upstream.reset();
  if (!co_await admit(c, task)) co_return;
  task.initial_data = std::move(c.in);
  auto stream = co_await connector.tcp_connect(task, ec);
  if (ec) {
    co_await reply(c.socket, status_for(ec), reason_for(status_for(ec)));
    co_return;
  }
  std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  auto [wec, n] = co_await asio::async_write(c.socket, asio::buffer(ok), as_tuple);
  if (wec) co_return;
  co_await connector.relay(c.socket, stream, RelayOptions{.idle_timeout = c.cfg.idle_timeout});
}

// The one place where a parsed forward request gets its upstream connection:
// the client connection's current one when the key matches and the origin has
// not closed it, else a new diverted connection (the old one is closed).
// Answers the client (502/504) and returns nullptr when none could be made.
asio::awaitable<UpstreamConn*> connect_upstream(ClientConn& c, const RequestHead& head,
                                                const Task& task) {
  UpstreamKey key{.kind = head.kind,
                  .authority = head.authority(),
                  .username = task.username,
                  .tls_name = head.kind == ProxyRequestKind::https_forward ? head.host : ""};
  if (c.upstream && c.upstream->key == key && !readable_while_idle(*c.upstream))
    co_return c.upstream.get();
  c.upstream.reset();
  if (!co_await admit(c, task)) co_return nullptr;
  auto& connector = *c.cfg.connector;
  divert::error_code ec;
  if (head.kind == ProxyRequestKind::http_forward) {
    auto s = co_await connector.http_forward(task, ec);
    if (!ec) c.upstream.reset(new UpstreamConn{key, std::move(s)});
  } else {
    auto s = co_await connector.https_forward(task, head.host, *c.cfg.tls, ec);
    if (!ec) c.upstream.reset(new UpstreamConn{key, std::move(s)});
  }
  if (ec) {
    co_await reply(c.socket, status_for(ec), reason_for(status_for(ec)));
    co_return nullptr;
  }
  co_return c.upstream.get();
}

// What one request/response exchange left behind.
struct Exchange {
  Deadline* first_byte = nullptr;  // the response's first-byte deadline, while it waits
  bool request_done = false;       // the whole request went upstream
  bool request_failed = false;     // the client side gave up (closed, timed out, bad body)
  int request_error_status = 0;    // a malformed body: the status to answer if still possible
  bool response_done = false;      // the whole response reached the client
  bool response_started = false;   // bytes of the response reached the client
  bool close_client = false;       // the response ends the client connection
  bool upstream_reusable = false;
  // A reused upstream connection closed without a response byte (the origin
  // closed it as the request went out): a request without a body may be
  // sent again on a new connection instead of answering 502.
  bool may_retry = false;
  bool retry = false;
};

// Sends the request upstream: the origin-form head and the body as it
// arrives from the client (re-framed by the parser, one read at a time).
template <class Stream>
asio::awaitable<void> send_request(ClientConn& c, Stream& upstream, RequestParser& rp,
                                   std::string out, Exchange& x) {
  auto& metrics = c.cfg.connector->metrics();
  char chunk[16 * 1024];
  for (;;) {
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(out), as_tuple);
      metrics.add(MetricsCounter::traffic_out_bytes, n);
      if (ec) break;
      if (x.first_byte) x.first_byte->touch();
      out.clear();
    }
    if (rp.state() == RequestParser::State::complete) {
      x.request_done = true;
      co_return;
    }
    Deadline idle(c.socket, c.cfg.idle_timeout);
    auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(chunk), as_tuple);
    idle.finish();
    if (ec) break;
    auto used = rp.feed(std::string_view(chunk, n), out);
    c.in.append(chunk + used, n - used);  // the next request's first bytes
    if (rp.state() == RequestParser::State::error) {
      x.request_error_status = rp.error_status();
      break;
    }
  }
  // The request cannot be finished: stop waiting for its response (unless
  // the response already ended the exchange).
  x.request_failed = true;
  divert::error_code ignored;
  if (!x.response_done) upstream.lowest_layer().cancel(ignored);
}

// Writes response bytes to the client. A client that takes in none of them
// for idle_timeout (it stopped reading) is given up on: the write fails.
asio::awaitable<divert::error_code> write_to_client(ClientConn& c, std::string_view data) {
  Deadline stalled(c.socket, c.cfg.idle_timeout);
  auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(data), as_tuple);
  co_return ec;
}

// Relays the response (interim 1xx ones, then the final one) to the client
// unchanged, finding its end with ResponseParser. Answers 502/504 itself
// while nothing of the response reached the client.
template <class Stream>
asio::awaitable<void> relay_response(ClientConn& c, Stream& upstream, const RequestHead& head,
                                     Exchange& x) {
  auto& metrics = c.cfg.connector->metrics();
  // However the response ends, a request still being read or written is
  // abandoned: neither connection can carry another request then.
  struct AbandonUnfinishedRequest {
    ClientConn& c;
    Stream& upstream;
    Exchange& x;
    ~AbandonUnfinishedRequest() {
      x.first_byte = nullptr;  // the deadline it points to is gone
      if (x.request_done) return;
      x.close_client = true;
      x.upstream_reusable = false;
      divert::error_code ignored;
      c.socket.cancel(ignored);
      upstream.lowest_layer().cancel(ignored);
    }
  } abandon{c, upstream, x};
  std::optional<ResponseParser> rsp;
  rsp.emplace(head.method == "HEAD");
  std::string pending;  // bytes of a head not complete yet
  char buf[16 * 1024];
  std::optional<Deadline> first_byte;
  first_byte.emplace(upstream.lowest_layer(), c.cfg.response_timeout);
  x.first_byte = &*first_byte;
  bool got_any = false;
  auto fail = [&](int status) -> asio::awaitable<void> {
    if (!x.response_started && !x.request_failed)
      co_await reply(c.socket, status, reason_for(status));
    x.close_client = true;
  };
  for (;;) {
    std::optional<Deadline> idle;
    if (got_any) idle.emplace(upstream.lowest_layer(), c.cfg.idle_timeout);
    auto [ec, n] = co_await upstream.async_read_some(asio::buffer(buf), as_tuple);
    if (idle) idle->finish();
    if (!got_any && n > 0) {
      got_any = true;
      x.first_byte = nullptr;
      first_byte.reset();
    }
    metrics.add(MetricsCounter::traffic_in_bytes, n);
    std::string_view data(buf, n);
    while (!data.empty()) {
      auto used = rsp->feed(data);
      pending.append(data.data(), used);
      data.remove_prefix(used);
      if (rsp->state() == ResponseParser::State::error) {
        co_await fail(502);
        co_return;
      }
      if (rsp->state() != ResponseParser::State::head && !pending.empty()) {
        if (co_await write_to_client(c, pending)) {
          x.close_client = true;
          co_return;
        }
        x.response_started = true;
        pending.clear();
      }
      if (rsp->is_interim()) {
        rsp.emplace(head.method == "HEAD");
      } else if (rsp->state() == ResponseParser::State::complete) {
        break;
      } else if (used == 0) {  // not expected: a parser that takes nothing and goes on
        co_await fail(502);
        co_return;
      }
    }
    if (rsp->state() == ResponseParser::State::complete) {
      x.upstream_reusable = rsp->keep_alive() && data.empty();
      break;
    }
    if (ec) {
      bool timed_out = first_byte && first_byte->fired();
      if (!got_any && !timed_out && x.may_retry) {
        x.retry = true;  // the request had no body: nothing of it is lost
        co_return;
      }
      if (x.request_failed) {
        x.close_client = true;
        co_return;
      }
      bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
      if (eof) rsp->feed_eof();
      if (eof && rsp->state() == ResponseParser::State::complete) {
        if (!pending.empty()) co_await write_to_client(c, pending);
        x.close_client = true;  // close-delimited: the client reads up to our close
        break;
      }
      co_await fail(timed_out ? 504 : 502);
      co_return;
    }
  }
  x.response_done = true;
}

// One forwarded request and its response, relayed concurrently (a large
// upload is streamed while the origin may already answer, e.g. 100 Continue).
template <class Stream>
asio::awaitable<Exchange> exchange(ClientConn& c, Stream& upstream, RequestParser& rp,
                                   std::string body, bool may_retry) {
  using namespace asio::experimental::awaitable_operators;
  Exchange x;
  x.may_retry = may_retry;
  co_await (send_request(c, upstream, rp, rp.head().origin_form_request() + body, x) &&
            relay_response(c, upstream, rp.head(), x));
  if (x.request_error_status && !x.response_started) {
    co_await reply(c.socket, x.request_error_status, reason_for(x.request_error_status));
    x.close_client = true;
  }
  if (!x.request_done || !x.response_done) {
    x.close_client = true;
    x.upstream_reusable = false;
  }
  co_return x;
}

asio::awaitable<void> handle(Accepted conn, Config& cfg) {
  ClientConn c{conn.socket, cfg, conn.peer, conn.local, {}, {}};
  for (bool first = true;; first = false) {
    RequestParser rp;
    std::string body;
    if (co_await read_head(c, rp, body, first) != ReadHead::ok) co_return;
    const RequestHead& head = rp.head();
    std::optional<std::string> username;
    if (!co_await authenticate(c, head, username)) co_return;
    auto up = UpstreamAddr::try_parse(head.authority(), 0);
    if (!up) {
      co_await reply(c.socket, 400, reason_for(400));
      co_return;
    }
    Task task{.client = c.peer, .server = c.local, .upstream = *up.addr, .username = username};
    if (head.kind == ProxyRequestKind::connect) {
      co_await tunnel(c, std::move(task));
      co_return;
    }
    if (head.kind == ProxyRequestKind::https_forward && !cfg.tls) {
      co_await reply(c.socket, 501, reason_for(501));
      co_return;
    }
    Exchange x;
    for (bool retried = false;; retried = true) {
      UpstreamConn* upstream = co_await connect_upstream(c, head, task);
      if (!upstream) co_return;
      bool no_body = !head.chunked && head.content_length.value_or(0) == 0;
      bool may_retry = !retried && upstream->requests++ > 0 && no_body;
      x = co_await std::visit(
          [&](auto& stream) { return exchange(c, stream, rp, body, may_retry); }, upstream->stream);
      if (!x.retry) break;
      c.upstream.reset();
    }
    if (!x.upstream_reusable) c.upstream.reset();
    if (x.close_client || !head.keep_alive) {
      divert::error_code ec;
      c.socket.shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli("divert-forward-proxy",
          "An HTTP forward proxy that diverts every request through a next proxy with a\n"
          "PROXY v2 header (divert). CONNECT -> tcp connect, http:// -> http forward,\n"
          "https:// -> https forward (TLS to the origin on this side).");
  cli.option("listen", "HOST:PORT", "address to listen on (default 127.0.0.1:8080)")
      .option("next-proxy", "ADDR[,WEIGHT]",
              "next proxy, repeatable, required (WEIGHT default 1, port default 3128)", true)
      .option("pick-policy", "NAME", "random, serial, round_robin, ketama, rendezvous, jump_hash")
      .option("user", "NAME:PASSWORD", "require Basic proxy auth with these users", true)
      .option("ca-file", "FILE", "CA certificates trusted for https forward (default: system)")
      .option("set", "KEY=VALUE",
              "any connector key (g3proxy divert_tcp's or divert's own, README 'Configuration "
              "keys') in divert_tcp's value syntax, e.g. tcp_connect.max_retry=1; "
              "next_proxy_status_reply=true: wait for the next proxy's upstream status "
              "(TLV 0xE7) and answer its failure: 403 denied by its policy, 504 timed out, "
              "502 otherwise (the next proxy must speak it, e.g. divert-next-proxy)",
              true)
      .option("response-timeout", "DURATION",
              "forwards: 504 when no response byte comes this long after the last request byte "
              "sent (default 60s, 0: never)")
      .option("head-timeout", "DURATION",
              "each request head within this long of its first byte (the first request's "
              "of the accept; default 30s, 0: never)")
      .option("log", "LEVEL",
              "log to stderr at this level: trace, debug, info, warn, error (default: none)")
      .option("idle-timeout", "DURATION",
              "close after this long without progress: a kept-alive client between requests, a "
              "tunnel with no byte either way, a request body or response that stalls, a client "
              "that stops reading (default 300s, 0: never)");
  server_cli_options(cli);
  destination_cli_options(cli);
  metrics_cli_option(cli);
  config_cli_options(cli);
  try {
    if (!cli.parse(argc, argv)) return 0;
    Config cfg;
    // Defaults, then the --config file, then the flags; again on each SIGHUP.
    ConnectorSettings settings(
        cli,
        [](DivertTcpConnector::Builder& b) {
          b.name("divert-forward-proxy").resolver(net::system_resolver());
        },
        [&cli](DivertTcpConnector::Builder& b) {
          if (cli.has("log")) b.set("shared_logger", "stderr:" + cli.get("log"));
        });
    auto source = settings.read();
    cfg.connector.emplace(source.builder.build());
    HealthCheckThread health_checks(*cfg.connector);  // key health_check
    if (cli.has("response-timeout"))
      cfg.response_timeout = parse_duration("--response-timeout", cli.get("response-timeout"));
    if (cli.has("head-timeout"))
      cfg.head_timeout = parse_duration("--head-timeout", cli.get("head-timeout"));
    if (cli.has("idle-timeout"))
      cfg.idle_timeout = parse_duration("--idle-timeout", cli.get("idle-timeout"));
    for (auto& u : cli.all("user")) {
      auto colon = u.find(':');
      if (colon == std::string::npos || colon == 0) throw usage_error("--user needs NAME:PASSWORD");
      std::string name = u.substr(0, colon);
      // The name goes to the next proxy in TLV 0xE2, which carries UTF-8 only.
      ppv2::HeaderSpec only_name;
      only_name.username = name;
      if (ppv2::encoded_size(only_name).ec)
        throw usage_error("--user: the name must be UTF-8 without NUL (it is sent in TLV 0xE2)");
      cfg.users.add(std::move(name), u.substr(colon + 1));
    }
    cfg.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (cli.has("ca-file"))
      cfg.tls->load_verify_file(cli.get("ca-file"));
    else
      cfg.tls->set_default_verify_paths();

    ServerOptions so;
    so.name = "divert-forward-proxy";
    so.listen = parse_listen(cli.get("listen", "127.0.0.1:8080"));
    apply_server_options(cli, so);
    tcp::endpoint bound;  // set once bound; a reload rebuilds the gate's loop guard with it
    ConnectorReloader reloader(settings, *cfg.connector, source, [&](const ConnectorConfig& c) {
      cfg.set_gate(make_destination_gate(cli, bound, c), c.shared_logger);
    });
    so.on_reload = [&] { std::cerr << "divert-forward-proxy: " << reloader.reload() << "\n"; };
    Server server(so, [&cfg](Accepted a) { return handle(std::move(a), cfg); });
    server.bind();
    bound = server.local_endpoint();
    const auto initial = cfg.connector->config();
    cfg.set_gate(make_destination_gate(cli, bound, initial), initial.shared_logger);
    auto metrics_http = start_metrics_http(
        cli, [&cfg] { return format_prometheus(cfg.connector->metrics_snapshot()); });
    std::cerr << "divert-forward-proxy: listening on " << server.local_endpoint() << "\n";
    if (metrics_http) {
      std::cerr << "divert-forward-proxy: metrics on http://" << metrics_http->local_endpoint()
                << "/metrics\n";
    }
    server.run();
    std::cerr << format_statsd(cfg.connector->metrics_snapshot(), "divert");
    return 0;
  } catch (const usage_error& e) {
    std::cerr << "divert-forward-proxy: " << e.what() << "\ntry --help\n";
    return 2;
  } catch (const config_error& e) {
    std::cerr << "divert-forward-proxy: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "divert-forward-proxy: " << e.what() << "\n";
    return 1;
  }
}

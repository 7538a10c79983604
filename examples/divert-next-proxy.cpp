// divert-next-proxy — the receiving side: reads one PROXY v2 header from a
// trusted peer, connects to the upstream named by TLV 0xE0 (happy eyeballs),
// and relays. Prints one JSON line per finished connection on stdout.
#include <iostream>
#include <mutex>

#include "common/cli.hpp"
#include "common/server.hpp"
#include "divert/config_value.hpp"
#include "divert/net/connect.hpp"
#include "divert/ppv2/read_header.hpp"
#include "divert/relay.hpp"

using namespace divert;
using namespace divert::examples;
using asio::ip::tcp;

namespace {

struct Config {
  std::vector<Cidr> trust;
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds idle_timeout{0};
  net::ConnectOptions connect;
  std::shared_ptr<net::Resolver> resolver = net::system_resolver();
};

std::mutex out_mutex;

struct Record {
  std::string src, dst, upstream, tls_name, username, task_id, error;
  std::uint64_t up = 0, down = 0;
  bool has_tls = false, has_user = false;
  void print() const {
    auto q = [](const std::string& s) { return "\"" + json_escape(s) + "\""; };
    std::string line = "{\"src\":" + q(src) + ",\"dst\":" + q(dst) + ",\"upstream\":" + q(upstream) +
                       ",\"tls_name\":" + (has_tls ? q(tls_name) : "null") +
                       ",\"username\":" + (has_user ? q(username) : "null") +
                       ",\"task_id\":" + (task_id.empty() ? "null" : q(task_id)) +
                       ",\"bytes_up\":" + std::to_string(up) + ",\"bytes_down\":" + std::to_string(down) +
                       ",\"error\":" + (error.empty() ? "null" : q(error)) + "}\n";
    std::lock_guard lock(out_mutex);
    std::cout << line << std::flush;
  }
};

std::string endpoint_text(const ppv2::Endpoint& e) {
  if (!e.is_ip()) return "";
  auto ip = e.ip_string();
  return (e.kind == ppv2::Endpoint::Kind::ipv6 ? "[" + ip + "]" : ip) + ":" + std::to_string(e.port);
}

asio::awaitable<void> handle(Accepted conn, const Config& cfg) {
  tcp::socket& client = conn.socket;
  const tcp::endpoint peer = conn.peer;
  Record rec;
  divert::error_code ec;
  bool trusted = false;
  for (auto& c : cfg.trust) trusted = trusted || c.contains(peer.address());
  if (!trusted) {
    // Closed before a byte is read: a stranger cannot steer us.
    client.close(ec);
    rec.src = peer.address().to_string();
    rec.error = "untrusted source";
    rec.print();
    co_return;
  }
  ppv2::ReceivedHeader hdr;
  ppv2::ReadHeaderOptions ropts;
  ropts.timeout = cfg.header_timeout;
  ec = co_await ppv2::read_proxy_header(client, hdr, ropts);
  if (ec) {
    rec.src = peer.address().to_string();
    rec.error = "header: " + ec.message();
    rec.print();
    co_return;
  }
  const auto& h = hdr.header();
  rec.src = endpoint_text(h.src);
  rec.dst = endpoint_text(h.dst);
  ppv2::DivertTlvs tlvs;
  if (auto tec = ppv2::read_divert_tlvs(h, tlvs)) {
    rec.error = "header: " + tec.message();
    rec.print();
    co_return;
  }
  if (tlvs.task_id) rec.task_id = tlvs.task_id->to_string();
  if (tlvs.tls_name) rec.tls_name = std::string(*tlvs.tls_name), rec.has_tls = true;
  if (tlvs.username) rec.username = std::string(*tlvs.username), rec.has_user = true;
  if (!tlvs.upstream) {
    rec.error = "header: no upstream TLV (0xE0)";
    rec.print();
    co_return;
  }
  rec.upstream = std::string(*tlvs.upstream_text);
  auto r = co_await net::happy_eyeballs_connect(std::string(tlvs.upstream->host), tlvs.upstream->port,
                                                cfg.connect, cfg.resolver);
  if (r.error) {
    rec.error = "upstream: " + r.error.message();
    rec.print();
    co_return;
  }
  tcp::socket upstream = std::move(*r.socket);
  auto extra = hdr.extra();
  if (!extra.empty()) {
    auto [wec, n] = co_await asio::async_write(upstream, asio::buffer(extra.data(), extra.size()),
                                               asio::experimental::as_tuple(asio::use_awaitable));
    rec.up += n;
    if (wec) {
      rec.error = "upstream: " + wec.message();
      rec.print();
      co_return;
    }
  }
  RelayOptions ro;
  ro.idle_timeout = cfg.idle_timeout;
  auto res = co_await relay(client, upstream, ro);
  rec.up += res.upload_bytes;
  rec.down = res.download_bytes;
  if (res.error) rec.error = "relay: " + res.error.message();
  rec.print();
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli("divert-next-proxy",
          "The receiving side of divert: reads a PROXY v2 header (TLV 0xE0 = upstream) from a\n"
          "trusted peer, connects to the upstream and relays. One JSON line per connection.");
  cli.option("listen", "HOST:PORT", "address to listen on (default 127.0.0.1:3128)")
      .option("trust", "CIDR", "peers allowed to send headers (default 127.0.0.0/8 and ::1)", true)
      .option("header-timeout", "DURATION", "time allowed for the whole header (default 5s, above 0)")
      .option("idle-timeout", "DURATION", "close a relay idle this long (default: never)");
  server_cli_options(cli);
  try {
    if (!cli.parse(argc, argv)) return 0;
    Config cfg;
    for (auto& t : cli.all("trust")) cfg.trust.push_back(Cidr::parse(t));
    if (cfg.trust.empty()) cfg.trust = {Cidr::parse("127.0.0.0/8"), Cidr::parse("::1/128")};
    if (cli.has("header-timeout")) {
      cfg.header_timeout = parse_duration("--header-timeout", cli.get("header-timeout"));
      if (cfg.header_timeout.count() <= 0) throw usage_error("--header-timeout must be above 0");
    }
    if (cli.has("idle-timeout")) cfg.idle_timeout = parse_duration("--idle-timeout", cli.get("idle-timeout"));
    cfg.connect.tcp_connect.each_timeout = std::chrono::seconds(10);
    ServerOptions so;
    so.name = "divert-next-proxy";
    so.listen = parse_listen(cli.get("listen", "127.0.0.1:3128"));
    apply_server_options(cli, so);
    Server server(so, [&cfg](Accepted a) { return handle(std::move(a), cfg); });
    server.bind();
    std::cerr << "divert-next-proxy: listening on " << server.local_endpoint() << "\n";
    server.run();
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

#include "common/cli.hpp"

#include "divert/host_port.hpp"

#include <charconv>
#include <iostream>

#include "common/server.hpp"

namespace divert::examples {

Cli::Cli(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

Cli& Cli::option(std::string name, std::string metavar, std::string help, bool repeatable) {
  opts_.push_back({std::move(name), Opt{std::move(metavar), std::move(help), repeatable, false}});
  return *this;
}

Cli& Cli::flag(std::string name, std::string help) {
  opts_.push_back({std::move(name), Opt{"", std::move(help), false, true}});
  return *this;
}

std::string Cli::usage() const {
  std::string u = "usage: " + program_ + " [options]\n\n" + summary_ + "\n\noptions:\n";
  for (auto& [name, o] : opts_) {
    std::string left = "  --" + name + (o.is_flag ? "" : " " + o.metavar);
    if (left.size() < 30)
      left.resize(30, ' ');
    else
      left += "\n" + std::string(30, ' ');
    u += left + o.help + (o.repeatable ? " (repeatable)" : "") + "\n";
  }
  u += "  --help                      show this help and exit\n";
  return u;
}

bool Cli::parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage();
      return false;
    }
    if (arg.rfind("--", 0) != 0) throw usage_error("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      inline_value = true;
    }
    const Opt* opt = nullptr;
    for (auto& [n, o] : opts_)
      if (n == name) opt = &o;
    if (!opt) throw usage_error("unknown option '--" + name + "'");
    if (opt->is_flag) {
      if (inline_value) throw usage_error("--" + name + " takes no value");
      value = "true";
    } else if (!inline_value) {
      if (i + 1 >= argc) throw usage_error("--" + name + " needs a value (" + opt->metavar + ")");
      value = argv[++i];
    }
    auto& v = values_[name];
    if (!v.empty() && !opt->repeatable) throw usage_error("--" + name + " given more than once");
    v.push_back(value);
  }
  return true;
}

bool Cli::has(const std::string& name) const {
  return values_.count(name) != 0;
}

std::string Cli::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::vector<std::string> Cli::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

asio::ip::tcp::endpoint parse_listen(const std::string& text) {
  const auto split = divert::split_host_port(text);
  if (!split) {
    throw usage_error("listen address '" + text +
                      "': " + std::string(divert::to_string(split.error)));
  }
  if (split.parts.bare_ipv6()) throw usage_error("listen address '" + text + "' is not [V6]:PORT");
  if (!split.parts.port) throw usage_error("listen address '" + text + "' is not HOST:PORT");
  std::string host(split.parts.host);
  if (host == "localhost") host = "127.0.0.1";
  divert::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw usage_error("listen host '" + host + "' is not an IP address");
  return {addr, *split.parts.port};  // port 0: any free port
}

Cidr Cidr::parse(const std::string& text) {
  Cidr c;
  auto slash = text.find('/');
  divert::error_code ec;
  c.network = asio::ip::make_address(text.substr(0, slash), ec);
  if (ec) throw usage_error("'" + text + "' is not a CIDR (ADDR/BITS)");
  if (c.network.is_v6() && c.network.to_v6().is_v4_mapped())
    c.network = asio::ip::make_address_v4(asio::ip::v4_mapped, c.network.to_v6());
  unsigned max = c.network.is_v4() ? 32 : 128;
  c.bits = max;
  if (slash != std::string::npos) {
    std::string b = text.substr(slash + 1);
    auto [end, perr] = std::from_chars(b.data(), b.data() + b.size(), c.bits);
    if (perr != std::errc{} || end != b.data() + b.size() || c.bits > max)
      throw usage_error("'" + text + "': prefix length must be 0-" + std::to_string(max));
  }
  return c;
}

bool Cidr::contains(const asio::ip::address& in) const {
  asio::ip::address a = in;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4() != network.is_v4()) return false;
  auto cmp = [&](const unsigned char* x, const unsigned char* y) {
    unsigned full = bits / 8, rest = bits % 8;
    for (unsigned i = 0; i < full; ++i)
      if (x[i] != y[i]) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (x[full] & mask) == (y[full] & mask);
  };
  if (a.is_v4()) {
    auto x = a.to_v4().to_bytes();
    auto y = network.to_v4().to_bytes();
    return cmp(x.data(), y.data());
  }
  auto x = a.to_v6().to_bytes();
  auto y = network.to_v6().to_bytes();
  return cmp(x.data(), y.data());
}

Cli& server_cli_options(Cli& cli) {
  return cli.option("threads", "N", "worker threads, each with its own event loop (default 1)")
      .option("accept", "MODE",
              "shared (default: one listening socket) or reuseport (one per thread)")
      .option(
          "max-connections", "N",
          "open connections at most; more wait in the listen backlog (default 10000, 0: no cap)")
      .flag("tfo",
            "TCP Fast Open on the listener (needs net.ipv4.tcp_fastopen with bit 1, e.g. 3)");
}

void apply_server_options(const Cli& cli, ServerOptions& so) {
  so.threads = static_cast<unsigned>(parse_int("--threads", cli.get("threads", "1"), 1, 256));
  if (cli.has("max-connections"))
    so.max_connections = static_cast<std::size_t>(
        parse_int("--max-connections", cli.get("max-connections"), 0, 10'000'000));
  const auto mode = cli.get("accept", "shared");
  if (mode == "shared")
    so.accept = AcceptMode::shared;
  else if (mode == "reuseport")
    so.accept = AcceptMode::reuseport;
  else
    throw usage_error("--accept must be shared or reuseport, not \"" + mode + "\"");
  if (cli.has("tfo")) so.fast_open_queue = 4096;  // as the listen backlog (SOMAXCONN)
}

void apply_connector_options(const Cli& cli, DivertTcpConnector::Builder& b,
                             bool require_next_proxy) {
  std::vector<WeightedUpstreamAddr> proxies;
  for (auto& np : cli.all("next-proxy")) {
    auto comma = np.rfind(',');
    double w = 1.0;
    std::string addr = np;
    if (comma != std::string::npos && np.find(']', comma) == std::string::npos) {
      w = parse_number("--next-proxy", np.substr(comma + 1));
      addr = np.substr(0, comma);
    }
    proxies.emplace_back(UpstreamAddr::parse(addr, kDefaultProxyPort, "--next-proxy"), w);
  }
  if (proxies.empty() && require_next_proxy)
    throw usage_error("at least one --next-proxy is required (or --config FILE)");
  if (!proxies.empty()) b.proxy_addr(std::move(proxies));
  if (cli.has("pick-policy"))
    b.proxy_addr_pick_policy(parse_pick_policy(cli.get("pick-policy"), "--pick-policy"));
  for (auto& kv : cli.all("set")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) throw usage_error("--set needs KEY=VALUE, got '" + kv + "'");
    b.set(kv.substr(0, eq), kv.substr(eq + 1));
  }
}

}  // namespace divert::examples

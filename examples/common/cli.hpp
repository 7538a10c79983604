// examples/common/cli.hpp — small command-line helpers shared by the example
// programs: option parsing with --help, listen endpoints, CIDR lists.
#pragma once

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "divert/connector.hpp"

namespace divert::examples {

// A usage mistake: the program prints the message and "try --help", exit 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Options are "--name VALUE" or "--name=VALUE"; flags are "--name".
class Cli {
 public:
  Cli(std::string program, std::string summary);
  // Declares an option; `repeatable` allows several occurrences.
  Cli& option(std::string name, std::string metavar, std::string help, bool repeatable = false);
  Cli& flag(std::string name, std::string help);
  // Parses argv; returns false when --help was printed (the caller exits 0).
  bool parse(int argc, char** argv);
  std::string usage() const;

  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& name) const;

 private:
  struct Opt {
    std::string metavar, help;
    bool repeatable = false, is_flag = false;
  };
  std::string program_, summary_;
  std::vector<std::pair<std::string, Opt>> opts_;
  std::map<std::string, std::vector<std::string>> values_;
};

// "HOST:PORT" or "[V6]:PORT" with HOST an IP literal (or "localhost").
asio::ip::tcp::endpoint parse_listen(const std::string& text);

// An IPv4 or IPv6 network "ADDR/BITS" (a bare address is a /32 or /128).
struct Cidr {
  asio::ip::address network;
  unsigned bits = 0;
  static Cidr parse(const std::string& text);
  bool contains(const asio::ip::address& a) const;
};

struct ServerOptions;  // common/server.hpp

// Declares --threads N, --accept shared|reuseport and --max-connections N, and
// applies them to a ServerOptions (usage_error on a bad value).
Cli& server_cli_options(Cli& cli);
void apply_server_options(const Cli& cli, ServerOptions& options);

// Applies the options the diverting programs share to a connector builder:
// --next-proxy ADDR[,WEIGHT] (repeatable, default port 3128, at least one),
// --pick-policy NAME and --set KEY=VALUE (repeatable, g3proxy's divert_tcp syntax).
// `require_next_proxy` false (a --config file gives proxy_addr): --next-proxy
// is optional and, when given, replaces proxy_addr.
void apply_connector_options(const Cli& cli, DivertTcpConnector::Builder& builder,
                             bool require_next_proxy = true);

}  // namespace divert::examples

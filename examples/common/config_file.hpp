// examples/common/config_file.hpp — `--config FILE` for the diverting
// programs: a g3proxy-style divert_tcp escaper block in YAML (yaml-cpp),
// applied key by key through DivertTcpConnector::Builder::set(key, ConfigValue)
// with g3proxy's divert_tcp keys and value syntax; and the SIGHUP reload that
// re-reads it and calls connector.reconfigure().
//
// The file is one of:
//   * one escaper map, as in a g3 escaper file:
//       name: divert
//       type: divert_tcp
//       proxy_addr: [127.0.0.1:13128, {addr: 127.0.0.2:13128, weight: 2}]
//   * a list of escaper maps (a g3 escaper.d file), or a g3 main configuration
//     whose `escaper:` key is such a list (other top-level keys, e.g. server:
//     or resolver:, are not read). The divert_tcp escaper is used; with several,
//     `--escaper NAME` chooses (an error otherwise); escapers of other types
//     are skipped.
// `type`, when present, must be divert_tcp. `name` sets the metrics' escaper
// tag. `resolver: NAME` (g3 names a resolver block) uses the system resolver
// under that name. Every other key goes to Builder::set: an unknown key or a
// bad value is a config_error naming the file, the line and the column.
//
// Precedence (lowest first): the program's defaults, the file, the flags
// (--next-proxy replaces proxy_addr, --pick-policy proxy_addr_pick_policy,
// --set KEY=VALUE the key). A reload applies the same flags again.
// Thread-safety: values, except ConnectorReloader (below).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "divert/config_value.hpp"
#include "divert/connector.hpp"
#include "divert/error.hpp"

namespace divert::examples {

class Cli;

// A place in the file, 1-based (0: unknown).
struct FileLocation {
  int line = 0;
  int column = 0;
};

// A config_error from a key of a file: what() is "FILE:LINE:COLUMN: " and the
// config_error's message (the key, the value and what is wrong); key() and
// value() are the config_error's.
class config_file_error : public config_error {
 public:
  config_file_error(std::string file, FileLocation where, const config_error& e);
  // For errors of the file's shape (YAML syntax, no escaper, several):
  // what() is "FILE:LINE:COLUMN: " and `reason`.
  config_file_error(std::string file, FileLocation where, std::string key, std::string value,
                    const std::string& reason);
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& file() const noexcept { return file_; }
  FileLocation location() const noexcept { return where_; }

 private:
  std::string file_;
  FileLocation where_;
  std::string message_;
};

// One YAML document as a ConfigValue: scalars as their text (quotes removed),
// sequences as lists, maps as maps in written order; a null is the empty
// scalar. Throws config_file_error for a YAML syntax error, a key that is not a
// scalar, a duplicate key or nesting deeper than 64 levels.
ConfigValue yaml_to_config_value(std::string_view yaml, const std::string& file = "<yaml>");

// The divert_tcp escaper read from a file.
struct EscaperConfig {
  std::string file;  // as given, for messages
  std::string name;  // the escaper's name ("" when the block has none)
  FileLocation where;
  // Every key of the block in written order but `type` (name included), with
  // where its value starts.
  struct Entry {
    std::string key;
    ConfigValue value;
    FileLocation where;
  };
  std::vector<Entry> entries;
  // Where each nested value starts, by normalised path ("tcp_connect.max_retry",
  // "proxy_addr[1].weight"), to point errors at the innermost place known.
  std::map<std::string, FileLocation> locations;

  // The location of the longest known prefix of `key` (a config_error's key).
  FileLocation locate(std::string_view key) const;
  // Applies every entry through builder.set(key, value) (and registers the
  // named resolver, see above). Throws config_file_error.
  void apply(DivertTcpConnector::Builder& builder) const;
};

// Reads the escaper (see the top of this file) from YAML text; `escaper`
// chooses one by name ("" : the only divert_tcp one). Throws config_file_error.
EscaperConfig parse_escaper_config(std::string_view yaml, const std::string& file,
                                   std::string_view escaper = {});
// The same from a file (config_file_error when it cannot be read).
EscaperConfig load_escaper_config(const std::string& path, std::string_view escaper = {});

// Declares --config FILE and --escaper NAME.
Cli& config_cli_options(Cli& cli);

// What a connector is built from: the Builder and the file it read.
struct ConnectorSource {
  DivertTcpConnector::Builder builder;
  std::optional<EscaperConfig> file;  // nullopt without --config
};

// How a program makes its connector's Builder, again on each reload:
// `defaults` (name, resolver, ...), then the --config file read anew, then the
// flags (apply_connector_options), then `flags` (the program's own flags that
// set connector keys, e.g. --log). Without --config, --next-proxy is required.
class ConnectorSettings {
 public:
  using Apply = std::function<void(DivertTcpConnector::Builder&)>;
  // `cli` must outlive this object.
  ConnectorSettings(const Cli& cli, Apply defaults, Apply flags = {});
  // Throws config_error (config_file_error for the file's keys) or usage_error.
  ConnectorSource read() const;
  bool has_file() const { return !file_.empty(); }
  const std::string& file() const { return file_; }

 private:
  const Cli& cli_;
  Apply defaults_, flags_;
  std::string file_, escaper_;
};

// One line saying how `after` differs from `before`: next proxies added,
// removed and reweighted (by canonical address), the pick policy, and the
// file's other keys changed, added or removed (by their written value);
// "no change" when none.
std::string describe_changes(const ConnectorConfig& before, const EscaperConfig* before_file,
                             const ConnectorConfig& after, const EscaperConfig* after_file);

// The SIGHUP reload of one connector. Not thread-safe: call reload() from one
// thread at a time (the programs: their signal thread).
class ConnectorReloader {
 public:
  // `initial`: what `connector` was built from. `after` (optional) runs after
  // each reconfigure that succeeded, with the new configuration.
  ConnectorReloader(const ConnectorSettings& settings, DivertTcpConnector connector,
                    const ConnectorSource& initial,
                    std::function<void(const ConnectorConfig&)> after = {});
  // Reads the settings again and calls connector.reconfigure(). Returns the
  // line to log: "reloaded FILE: <describe_changes>", or "reload of FILE
  // refused, the previous configuration stays: <why>". Never throws for a bad
  // file or configuration.
  std::string reload();

 private:
  const ConnectorSettings& settings_;
  DivertTcpConnector connector_;
  ConnectorConfig applied_;
  std::optional<EscaperConfig> applied_file_;
  std::function<void(const ConnectorConfig&)> after_;
};

}  // namespace divert::examples

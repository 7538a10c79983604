#include "common/config_file.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/cli.hpp"

namespace divert::examples {

namespace {

constexpr int kMaxDepth = 64;

FileLocation location_of(const YAML::Mark& m) {
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

std::string prefix(const std::string& file, FileLocation where) {
  std::string p = file;
  if (where.line > 0) p += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
  return p + ": ";
}

// Converts `node`, recording where each value starts under its normalised path.
ConfigValue convert(const YAML::Node& node, const std::string& file, const std::string& path,
                    int depth, std::map<std::string, FileLocation>* locations) {
  const auto where = location_of(node.Mark());
  if (locations && !path.empty()) locations->emplace(path, where);
  if (depth > kMaxDepth)
    throw config_file_error(file, where, path, "", "nested deeper than 64 levels");
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return ConfigValue(std::string());
    case YAML::NodeType::Scalar:
      return ConfigValue(node.Scalar());
    case YAML::NodeType::Sequence: {
      ConfigValue::List list;
      for (std::size_t i = 0; i < node.size(); ++i)
        list.push_back(
            convert(node[i], file, path + "[" + std::to_string(i) + "]", depth + 1, locations));
      return ConfigValue(std::move(list));
    }
    case YAML::NodeType::Map: {
      ConfigValue::Map map;
      std::set<std::string> seen;
      for (auto it = node.begin(); it != node.end(); ++it) {
        const auto key_where = location_of(it->first.Mark());
        if (!it->first.IsScalar())
          throw config_file_error(file, key_where, path, "", "a map key must be a plain name");
        const std::string key = it->first.Scalar();
        const std::string norm = normalize_key(key);
        const std::string sub = path.empty() ? norm : path + "." + norm;
        if (locations) locations->emplace(sub, key_where);  // errors point at the key
        if (!seen.insert(norm).second)
          throw config_file_error(file, key_where, sub, key, "duplicate key '" + key + "'");
        map.emplace_back(key, convert(it->second, file, sub, depth + 1, locations));
      }
      return ConfigValue(std::move(map));
    }
  }
  return ConfigValue(std::string());
}

// The one document of `yaml` (empty text: a null node).
YAML::Node load_document(std::string_view yaml, const std::string& file) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw config_file_error(file, location_of(e.mark), "yaml", "", "YAML: " + e.msg);
  }
  if (docs.size() > 1)
    throw config_file_error(file, location_of(docs[1].Mark()), "yaml", "",
                            "more than one YAML document (one escaper block, or one g3 "
                            "configuration, per file)");
  return docs.empty() ? YAML::Node() : docs.front();
}

std::string scalar_field(const YAML::Node& escaper, const char* key) {
  for (auto it = escaper.begin(); it != escaper.end(); ++it)
    if (it->first.IsScalar() && normalize_key(it->first.Scalar()) == key && it->second.IsScalar())
      return it->second.Scalar();
  return {};
}

// The escaper maps of `root` (a map, a list of maps, or a g3 main
// configuration with `escaper:`), or config_file_error.
std::vector<YAML::Node> escaper_candidates(const YAML::Node& root, const std::string& file) {
  const auto where = location_of(root.Mark());
  auto list_of_maps = [&](const YAML::Node& seq) {
    std::vector<YAML::Node> out;
    for (std::size_t i = 0; i < seq.size(); ++i) {
      if (!seq[i].IsMap())
        throw config_file_error(file, location_of(seq[i].Mark()),
                                "escaper[" + std::to_string(i) + "]", "",
                                "an escaper must be a map of keys (name: ..., type: ...)");
      out.push_back(seq[i]);
    }
    return out;
  };
  if (root.IsSequence()) return list_of_maps(root);
  if (!root.IsMap())
    throw config_file_error(file, where, "yaml", "",
                            "expected a divert_tcp escaper (a map of keys) or a g3 configuration "
                            "with an `escaper:` list");
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!it->first.IsScalar() || normalize_key(it->first.Scalar()) != "escaper") continue;
    const YAML::Node v = it->second;  // a copy: `it->` yields a temporary
    if (v.IsSequence()) return list_of_maps(v);
    if (v.IsMap()) return {v};
    throw config_file_error(file, location_of(v.Mark()), "escaper", v.IsScalar() ? v.Scalar() : "",
                            "expected a list of escapers here (g3's include of another file "
                            "is not read: paste the divert_tcp escaper block instead)");
  }
  return {root};
}

}  // namespace

config_file_error::config_file_error(std::string file, FileLocation where, const config_error& e)
    : config_error(e),
      file_(std::move(file)),
      where_(where),
      message_(prefix(file_, where_) + e.what()) {}

config_file_error::config_file_error(std::string file, FileLocation where, std::string key,
                                     std::string value, const std::string& reason)
    : config_error(std::move(key), std::move(value), reason),
      file_(std::move(file)),
      where_(where),
      message_(prefix(file_, where_) + reason) {}

ConfigValue yaml_to_config_value(std::string_view yaml, const std::string& file) {
  return convert(load_document(yaml, file), file, "", 0, nullptr);
}

FileLocation EscaperConfig::locate(std::string_view key) const {
  std::string k = normalize_key(key);
  for (;;) {
    if (auto it = locations.find(k); it != locations.end()) return it->second;
    auto cut = k.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return where;
    k.resize(cut);
  }
}

void EscaperConfig::apply(DivertTcpConnector::Builder& b) const {
  for (const auto& e : entries) {
    try {
      const auto key = normalize_key(e.key);
      if (key == "resolver" && e.value.is_scalar() && normalize_key(e.value.scalar()) != "system")
        b.register_resolver(e.value.scalar(), net::system_resolver());
      b.set(e.key, e.value);
    } catch (const config_file_error&) {
      throw;
    } catch (const config_error& err) {
      throw config_file_error(file, locate(err.key()), err);
    }
  }
}

EscaperConfig parse_escaper_config(std::string_view yaml, const std::string& file,
                                   std::string_view escaper) {
  const YAML::Node root = load_document(yaml, file);
  const auto candidates = escaper_candidates(root, file);
  std::vector<YAML::Node> chosen;
  std::string seen;  // for the error messages: "name (type), ..."
  for (const auto& c : candidates) {
    const auto name = scalar_field(c, "name");
    const auto type = scalar_field(c, "type");
    seen += (seen.empty() ? "" : ", ") + (name.empty() ? "(no name)" : name) + " (" +
            (type.empty() ? "no type" : type) + ")";
    // A lone escaper is taken whatever its type: a wrong type is refused below, at its line.
    if (!escaper.empty() ? name == escaper
                         : candidates.size() == 1 || normalize_key(type) == "divert_tcp")
      chosen.push_back(c);
  }
  const auto where = location_of(root.Mark());
  if (chosen.empty() && !escaper.empty())
    throw config_file_error(
        file, where, "escaper", std::string(escaper),
        "no escaper named '" + std::string(escaper) + "' here (found: " + seen + ")");
  if (chosen.empty())
    throw config_file_error(file, where, "type", "",
                            "no divert_tcp escaper here (found: " + seen + ")");
  if (chosen.size() > 1)
    throw config_file_error(file, where, "escaper", "",
                            "several escapers fit (" + seen + "): choose one with --escaper NAME");

  EscaperConfig out;
  out.file = file;
  out.where = location_of(chosen.front().Mark());
  const ConfigValue block = convert(chosen.front(), file, "", 0, &out.locations);
  for (const auto& [key, value] : block.map()) {
    const auto norm = normalize_key(key);
    const auto here = out.locate(norm);
    if (norm == "type") {
      if (!value.is_scalar() || normalize_key(value.scalar()) != "divert_tcp")
        throw config_file_error(
            file, here,
            config_error(key, value.to_string(),
                         "this program runs a divert_tcp escaper (type: divert_tcp)"));
      continue;
    }
    if (norm == "name") out.name = value.is_scalar() ? value.scalar() : "";
    out.entries.push_back({key, value, here});
  }
  return out;
}

EscaperConfig load_escaper_config(const std::string& path, std::string_view escaper) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw config_file_error(path, {}, "config", path,
                            "is a directory (give one YAML file, e.g. one of g3's escaper.d)");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw config_file_error(path, {}, "config", path,
                            std::string("cannot open the file: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw config_file_error(path, {}, "config", path, "cannot read the file");
  return parse_escaper_config(text.str(), path, escaper);
}

Cli& config_cli_options(Cli& cli) {
  return cli
      .option("config", "FILE",
              "a g3proxy divert_tcp escaper block in YAML (or a g3 configuration with an "
              "escaper: list); the flags override its keys; SIGHUP reads it again")
      .option("escaper", "NAME", "with --config: the escaper of this name (several in the file)");
}

ConnectorSettings::ConnectorSettings(const Cli& cli, Apply defaults, Apply flags)
    : cli_(cli),
      defaults_(std::move(defaults)),
      flags_(std::move(flags)),
      file_(cli.get("config")),
      escaper_(cli.get("escaper")) {
  if (!escaper_.empty() && file_.empty()) throw usage_error("--escaper needs --config FILE");
}

ConnectorSource ConnectorSettings::read() const {
  ConnectorSource s;
  if (defaults_) defaults_(s.builder);
  if (has_file()) {
    s.file = load_escaper_config(file_, escaper_);
    s.file->apply(s.builder);
  }
  apply_connector_options(cli_, s.builder, /*require_next_proxy=*/!has_file());
  if (flags_) flags_(s.builder);
  return s;
}

std::string describe_changes(const ConnectorConfig& before, const EscaperConfig* before_file,
                             const ConnectorConfig& after, const EscaperConfig* after_file) {
  std::vector<std::string> parts;
  auto weight_text = [](double w) {
    std::ostringstream o;
    o << w;
    return o.str();
  };
  auto find = [](const std::vector<WeightedUpstreamAddr>& v, const UpstreamAddr& a) {
    for (auto& w : v)
      if (w.addr == a) return &w;
    return static_cast<const WeightedUpstreamAddr*>(nullptr);
  };
  for (auto& w : after.proxy_addr) {
    const auto* old = find(before.proxy_addr, w.addr);
    if (!old)
      parts.push_back("+" + w.addr.to_string() + " (weight " + weight_text(w.weight) + ")");
    else if (old->weight != w.weight)
      parts.push_back(w.addr.to_string() + " weight " + weight_text(old->weight) + " -> " +
                      weight_text(w.weight));
  }
  for (auto& w : before.proxy_addr)
    if (!find(after.proxy_addr, w.addr)) parts.push_back("-" + w.addr.to_string());
  std::string line;
  if (!parts.empty()) {
    line = "next proxies";
    for (std::size_t i = 0; i < parts.size(); ++i) line += (i ? ", " : " ") + parts[i];
  }
  parts.clear();
  if (before.proxy_addr_pick_policy != after.proxy_addr_pick_policy)
    parts.push_back("proxy_addr_pick_policy " +
                    std::string(to_string(before.proxy_addr_pick_policy)) + " -> " +
                    std::string(to_string(after.proxy_addr_pick_policy)));
  // The file's other keys, by their written value (proxy_addr is shown above).
  std::map<std::string, std::string> old_keys, new_keys;
  auto keys_of = [](const EscaperConfig* f, std::map<std::string, std::string>& out) {
    if (!f) return;
    for (auto& e : f->entries) {
      auto k = normalize_key(e.key);
      if (k != "proxy_addr" && k != "proxy_addr_pick_policy") out[k] = e.value.to_string();
    }
  };
  keys_of(before_file, old_keys);
  keys_of(after_file, new_keys);
  for (auto& [k, v] : new_keys) {
    auto it = old_keys.find(k);
    if (it == old_keys.end())
      parts.push_back("+" + k + " " + v);
    else if (it->second != v)
      parts.push_back(k + " " + it->second + " -> " + v);
  }
  for (auto& [k, v] : old_keys)
    if (!new_keys.count(k)) parts.push_back("-" + k);
  if (!parts.empty()) {
    line += line.empty() ? "keys" : "; keys";
    for (std::size_t i = 0; i < parts.size(); ++i) line += (i ? ", " : " ") + parts[i];
  }
  return line.empty() ? "no change" : line;
}

ConnectorReloader::ConnectorReloader(const ConnectorSettings& settings,
                                     DivertTcpConnector connector, const ConnectorSource& initial,
                                     std::function<void(const ConnectorConfig&)> after)
    : settings_(settings),
      connector_(std::move(connector)),
      applied_(initial.builder.config()),
      applied_file_(initial.file),
      after_(std::move(after)) {}

std::string ConnectorReloader::reload() {
  const std::string what = settings_.has_file() ? settings_.file() : "the flags";
  try {
    auto next = settings_.read();
    connector_.reconfigure(next.builder);
    std::string line = "reloaded " + what + ": " +
                       describe_changes(applied_, applied_file_ ? &*applied_file_ : nullptr,
                                        next.builder.config(), next.file ? &*next.file : nullptr);
    applied_ = next.builder.config();
    applied_file_ = std::move(next.file);
    if (after_) after_(applied_);
    return line;
  } catch (const std::exception& e) {
    return "reload of " + what + " refused, the previous configuration stays: " + e.what();
  }
}

}  // namespace divert::examples

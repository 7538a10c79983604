// divert/config_value.hpp — g3proxy divert_tcp's value syntax, for hosts that load
// their configuration from YAML, TOML or JSON and pass it through by key.
//
// A ConfigValue is a small tree: a scalar (text as written), a list, or a map.
// Hosts build one from their own parser's nodes, or let ConfigValue::parse read
// the flow syntax below from one string:
//
//   scalar   10.0.0.1:3128   250ms   true   "quoted, with commas"
//   list     [a, b, {addr: c, weight: 2}]
//   map      {max_retry: 2, each_timeout: 30s}
//
// Scalars are kept as text and interpreted by the key that receives them, with
// the helpers below (durations, sizes, booleans, integers, numbers). Every
// helper throws divert::config_error naming the key and quoting the value.
//
// Durations (g3's humanised form): a lone number of seconds ("30", "1.5"), or
//   numbers each followed by a unit ns, us, ms, s, m, h or d, in any order, with
//   spaces allowed between the parts and before a unit ("250ms", "1h30m",
//   "1d 12h", "5 s"). Units are case-sensitive, as in g3; "5sec", "5 min", "2S"
//   are refused. divert's addition: a fraction with a unit ("1.5s"). The result
//   is in milliseconds, a sub-millisecond rest rounded up ("500us" is 1 ms), at
//   most 10^12 ms. Negative values are refused.
// Sizes: a number of bytes, or with K/M/G (x1000) or Ki/Mi/Gi (x1024); a
//   trailing "B" is accepted ("10M", "64KiB", "1G").
// Booleans: true/false, yes/no, on/off, 1/0 (case-insensitive).
// Thread-safety: values; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "divert/export.hpp"

namespace divert {

class DIVERT_EXPORT ConfigValue {
 public:
  using List = std::vector<ConfigValue>;
  using Map = std::vector<std::pair<std::string, ConfigValue>>;  // keeps the written order

  ConfigValue() = default;
  ConfigValue(std::string scalar) : v_(std::move(scalar)) {}  // NOLINT: implicit on purpose
  ConfigValue(const char* scalar) : v_(std::string(scalar)) {}
  ConfigValue(List list) : v_(std::move(list)) {}
  ConfigValue(Map map) : v_(std::move(map)) {}

  // Parses the flow syntax above. `key` only names the value in errors.
  // Throws config_error(key, text, reason) on a syntax error (e.g. an unclosed bracket).
  static ConfigValue parse(std::string_view text, std::string_view key = "value");

  bool is_scalar() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<List>(v_); }
  bool is_map() const { return std::holds_alternative<Map>(v_); }
  // Accessors: std::bad_variant_access when the value is of another kind
  // (use expect_scalar() for a config_error instead).
  const std::string& scalar() const { return std::get<std::string>(v_); }
  const List& list() const { return std::get<List>(v_); }
  const Map& map() const { return std::get<Map>(v_); }

  // The value written back in flow syntax (for error messages and logs).
  std::string to_string() const;

 private:
  std::variant<std::string, List, Map> v_;
};

// Normalises a key as the builder compares keys: lower case, '-' -> '_'.
DIVERT_EXPORT std::string normalize_key(std::string_view key);

// Scalar interpretations; each throws config_error(key, text, reason).
DIVERT_EXPORT std::chrono::milliseconds parse_duration(std::string_view key, std::string_view text);
DIVERT_EXPORT std::uint64_t parse_size(std::string_view key, std::string_view text);
DIVERT_EXPORT bool parse_bool(std::string_view key, std::string_view text);
// An integer in [min, max].
DIVERT_EXPORT std::int64_t parse_int(std::string_view key, std::string_view text, std::int64_t min,
                                     std::int64_t max);
// A finite number.
DIVERT_EXPORT double parse_number(std::string_view key, std::string_view text);

// The scalar of `v`, or config_error(key, v.to_string(), "expected a single value").
DIVERT_EXPORT const std::string& expect_scalar(std::string_view key, const ConfigValue& v);

}  // namespace divert

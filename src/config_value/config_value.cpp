#include "divert/config_value.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "divert/asio/ip/address_v6.hpp"

#include "divert/error.hpp"

namespace divert {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Recursive-descent reader of the flow syntax. Depth is bounded so hostile
// input cannot exhaust the stack.
class FlowParser {
 public:
  FlowParser(std::string_view text, std::string_view key) : text_(text), key_(key) {}

  ConfigValue parse_all() {
    ConfigValue v = parse_value(0);
    skip_ws();
    if (pos_ != text_.size())
      fail("unexpected '" + std::string(1, text_[pos_]) + "' after the value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 16;

  [[noreturn]] void fail(const std::string& why) const {
    throw config_error(std::string(key_), std::string(text_),
                       why + " at offset " + std::to_string(pos_));
  }
  void skip_ws() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool at(char c) {
    skip_ws();
    return pos_ < text_.size() && text_[pos_] == c;
  }

  ConfigValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    skip_ws();
    if (at('[') && !bracketed_ipv6_ahead()) return parse_list(depth);
    if (at('{')) return parse_map(depth);
    return ConfigValue(parse_scalar(",]}"));
  }

  std::string parse_scalar(std::string_view stops) {
    skip_ws();
    if (pos_ < text_.size() && (text_[pos_] == '"' || text_[pos_] == '\'')) {
      char q = text_[pos_++];
      std::string out;
      while (pos_ < text_.size() && text_[pos_] != q) {
        char c = text_[pos_++];
        if (c == '\\' && q == '"' && pos_ < text_.size()) c = text_[pos_++];
        out.push_back(c);
      }
      if (pos_ >= text_.size()) fail("unterminated quoted string");
      ++pos_;
      return out;
    }
    std::size_t start = pos_;
    // Brackets inside a scalar are part of it ("[::1]:3128") when balanced.
    int brackets = 0;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '[') ++brackets;
      if (c == ']' && brackets > 0) {
        --brackets;
        ++pos_;
        continue;
      }
      if (brackets == 0 && stops.find(c) != std::string_view::npos) break;
      ++pos_;
    }
    return std::string(trim(text_.substr(start, pos_ - start)));
  }

  // "[2001:db8::1]:443" and "[::1]" are scalars, not lists: a '[' whose ']'
  // is followed by ':' (an address with a port; a bad one is left to the
  // address parser's message), or whose inside is an IPv6 address (with a
  // zone, which the address parser refuses by name). "[127.0.0.1:3128]" and
  // "[np1:3128]" are one-element lists.
  bool bracketed_ipv6_ahead() const {
    std::size_t i = pos_ + 1;
    bool colon = false;
    while (i < text_.size() && text_[i] != ']') {
      const char c = text_[i];
      if (c == ':') colon = true;
      if (c == ',' || c == '[' || c == '{' || c == '}' ||
          std::isspace(static_cast<unsigned char>(c)))
        return false;
      ++i;
    }
    if (i >= text_.size() || !colon) return false;
    if (i + 1 < text_.size() && text_[i + 1] == ':') return true;
    std::string inner(text_.substr(pos_ + 1, i - pos_ - 1));
    inner = inner.substr(0, inner.find('%'));
    error_code ec;
    asio::ip::make_address_v6(inner, ec);
    return !ec;
  }

  ConfigValue parse_list(int depth) {
    ++pos_;  // '['
    ConfigValue::List items;
    if (at(']')) {
      ++pos_;
      return ConfigValue(std::move(items));
    }
    for (;;) {
      items.push_back(parse_value(depth + 1));
      if (at(',')) {
        ++pos_;
        continue;
      }
      if (at(']')) {
        ++pos_;
        return ConfigValue(std::move(items));
      }
      fail("expected ',' or ']' in a list");
    }
  }

  ConfigValue parse_map(int depth) {
    ++pos_;  // '{'
    ConfigValue::Map fields;
    if (at('}')) {
      ++pos_;
      return ConfigValue(std::move(fields));
    }
    for (;;) {
      std::string name = parse_scalar(":,}");
      if (name.empty()) fail("expected a field name in a map");
      if (!at(':')) fail("expected ':' after field '" + name + "'");
      ++pos_;
      fields.emplace_back(std::move(name), parse_value(depth + 1));
      if (at(',')) {
        ++pos_;
        continue;
      }
      if (at('}')) {
        ++pos_;
        return ConfigValue(std::move(fields));
      }
      fail("expected ',' or '}' in a map");
    }
  }

  std::string_view text_;
  std::string_view key_;
  std::size_t pos_ = 0;
};

bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  for (char c : s)
    if (c == ',' || c == '{' || c == '}' || c == '"' || c == '\'' ||
        std::isspace(static_cast<unsigned char>(c)))
      return true;
  return false;
}

// Splits "250ms" into 250 and "ms"; the number may have a fraction.
bool split_number(std::string_view s, double& number, std::string_view& unit) {
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return false;
  std::string num(s.substr(0, i));
  if (std::count(num.begin(), num.end(), '.') > 1) return false;
  if (num.front() == '.' || num.back() == '.') return false;
  number = std::strtod(num.c_str(), nullptr);
  unit = trim(s.substr(i));
  return std::isfinite(number);
}

}  // namespace

ConfigValue ConfigValue::parse(std::string_view text, std::string_view key) {
  return FlowParser(text, key).parse_all();
}

std::string ConfigValue::to_string() const {
  if (is_scalar()) {
    const auto& s = scalar();
    if (!needs_quotes(s)) return s;
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out + "\"";
  }
  std::string out;
  if (is_list()) {
    out = "[";
    for (std::size_t i = 0; i < list().size(); ++i) out += (i ? ", " : "") + list()[i].to_string();
    return out + "]";
  }
  out = "{";
  for (std::size_t i = 0; i < map().size(); ++i)
    out += (i ? ", " : "") + map()[i].first + ": " + map()[i].second.to_string();
  return out + "}";
}

std::string normalize_key(std::string_view key) {
  std::string out = lower(trim(key));
  for (auto& c : out)
    if (c == '-') c = '_';
  return out;
}

const std::string& expect_scalar(std::string_view key, const ConfigValue& v) {
  if (!v.is_scalar())
    throw config_error(std::string(key), v.to_string(), "expected a single value");
  return v.scalar();
}

namespace {

// Nanoseconds per duration unit, as g3 names them (humanize_rs: case-sensitive).
std::optional<std::uint64_t> unit_nanos(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us") return 1'000;
  if (unit == "ms") return 1'000'000;
  if (unit == "s") return 1'000'000'000;
  if (unit == "m") return 60'000'000'000;
  if (unit == "h") return 3'600'000'000'000;
  if (unit == "d") return 86'400'000'000'000;
  return std::nullopt;
}

// The longest duration accepted: 10^12 ms (about 31 years).
constexpr std::uint64_t kMaxDurationNanos = 1'000'000'000'000'000'000;

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view key, std::string_view text) {
  auto fail = [&](const std::string& why) -> std::chrono::milliseconds {
    throw config_error(std::string(key), std::string(text), why);
  };
  const std::string not_a_duration =
      "not a duration (a number of seconds, or numbers with units ns, us, ms, s, m, h, d such "
      "as 1h30m)";
  const auto t = trim(text);
  if (t.empty()) return fail(not_a_duration);
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  // g3's humanised form: parts "<number><unit>", the unit being every character
  // up to the next digit, spaces trimmed ("1h 30m", "5 s"). divert also takes
  // a decimal fraction in a number ("1.5s"); g3 takes one only without a unit.
  std::uint64_t total = 0;  // nanoseconds, at most kMaxDurationNanos
  std::size_t pos = 0;
  bool first = true;
  while (pos < t.size()) {
    const std::size_t start = pos;
    std::uint64_t whole = 0;
    while (pos < t.size() && is_digit(t[pos])) {
      whole = whole * 10 + static_cast<unsigned>(t[pos] - '0');
      if (whole > kMaxDurationNanos) return fail("duration too large");
      ++pos;
    }
    if (pos == start) return fail(not_a_duration);
    std::string_view fraction;
    if (pos < t.size() && t[pos] == '.') {
      const std::size_t f = ++pos;
      while (pos < t.size() && is_digit(t[pos])) ++pos;
      fraction = t.substr(f, pos - f);
      if (fraction.empty()) return fail(not_a_duration);
    }
    const std::string_view number = t.substr(start, pos - start);
    const std::size_t unit_start = pos;
    while (pos < t.size() && !is_digit(t[pos])) ++pos;
    const std::string_view unit = trim(t.substr(unit_start, pos - unit_start));
    std::uint64_t nanos = 0;
    if (unit.empty()) {
      // A lone number is seconds (g3 reads a bare integer or real so).
      if (!first || pos < t.size()) {
        return fail(std::string(number) + " has no unit (only a lone number means seconds)");
      }
      nanos = 1'000'000'000;
    } else if (auto n = unit_nanos(unit)) {
      nanos = *n;
    } else {
      return fail("unknown duration unit '" + std::string(unit) +
                  "' (use ns, us, ms, s, m, h or d)");
    }
    if (whole > (kMaxDurationNanos - total) / nanos) return fail("duration too large");
    total += whole * nanos;
    // The fraction, to the nearest nanosecond (at least 1 when not zero).
    if (fraction.find_first_not_of('0') != std::string_view::npos) {
      const long double part =
          std::strtold(("0." + std::string(fraction)).c_str(), nullptr) * nanos;
      total += std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(part)));
    }
    if (total > kMaxDurationNanos) return fail("duration too large");
    first = false;
  }
  // Milliseconds; a sub-millisecond rest rounds up, so non-zero stays non-zero.
  const auto ms = static_cast<std::int64_t>((total + 999'999) / 1'000'000);
  return std::chrono::milliseconds(ms);
}

std::uint64_t parse_size(std::string_view key, std::string_view text) {
  auto t = trim(text);
  double n = 0;
  std::string_view unit;
  if (!split_number(t, n, unit))
    throw config_error(std::string(key), std::string(text),
                       "not a size (bytes, or with K, M, G, Ki, Mi, Gi)");
  std::string u(unit);
  if (u.size() > 1 && (u.back() == 'B' || u.back() == 'b')) u.pop_back();
  if (u == "B" || u == "b") u.clear();
  double mult;
  if (u.empty())
    mult = 1;
  else if (u == "K" || u == "k")
    mult = 1e3;
  else if (u == "M" || u == "m")
    mult = 1e6;
  else if (u == "G" || u == "g")
    mult = 1e9;
  else if (u == "Ki" || u == "KI" || u == "ki")
    mult = 1024.0;
  else if (u == "Mi" || u == "MI" || u == "mi")
    mult = 1024.0 * 1024;
  else if (u == "Gi" || u == "GI" || u == "gi")
    mult = 1024.0 * 1024 * 1024;
  else
    throw config_error(std::string(key), std::string(text),
                       "unknown size unit '" + std::string(unit) + "' (use K, M, G, Ki, Mi, Gi)");
  double bytes = n * mult;
  if (bytes > 9.0e18) throw config_error(std::string(key), std::string(text), "size too large");
  if (bytes != std::floor(bytes))
    throw config_error(std::string(key), std::string(text), "size is not a whole number of bytes");
  return static_cast<std::uint64_t>(bytes);
}

bool parse_bool(std::string_view key, std::string_view text) {
  std::string v = lower(trim(text));
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  throw config_error(std::string(key), std::string(text),
                     "not a boolean (true/false, yes/no, on/off, 1/0)");
}

std::int64_t parse_int(std::string_view key, std::string_view text, std::int64_t min,
                       std::int64_t max) {
  auto t = trim(text);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc{} || p != t.data() + t.size() || t.empty())
    throw config_error(std::string(key), std::string(text), "not an integer");
  if (v < min || v > max)
    throw config_error(std::string(key), std::string(text),
                       "out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return v;
}

double parse_number(std::string_view key, std::string_view text) {
  auto t = trim(text);
  std::string s(t);
  char* end = nullptr;
  double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    throw config_error(std::string(key), std::string(text), "not a finite number");
  return v;
}

}  // namespace divert

// Internal: building blocks of the Prometheus text exposition format 0.0.4,
// shared by format_prometheus(MetricsSnapshot) and the receiver's overload.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "divert/metrics.hpp"

namespace divert::prometheus {

// Label pairs in output order: names already valid label names, values raw
// (escaped when written).
using Labels = std::vector<std::pair<std::string, std::string>>;

// Throws std::invalid_argument unless `prefix` is empty or a valid metric
// name ([A-Za-z_:][A-Za-z0-9_:]*).
void check_prefix(std::string_view prefix);

// prefix + "_" + dotted with '.' -> '_' (no "_" when prefix is empty).
std::string metric_name(std::string_view prefix, std::string_view dotted);

// Label value escaped as the format asks: \ -> \\, " -> \", newline -> \n.
std::string escape_label_value(std::string_view value);

// The tags as labels (names made valid and distinct, see metrics.hpp), with
// `reserved` names ("le", "next_proxy") kept free.
Labels labels_from_tags(const MetricTags& tags);

class Writer {
 public:
  // "# HELP name help\n# TYPE name type\n"; `type` is counter, gauge or histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // "name{labels} value\n" (no braces when labels is empty).
  void sample(std::string_view name, const Labels& labels, std::uint64_t value);
  void sample(std::string_view name, const Labels& labels, std::string_view value);

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace divert::prometheus

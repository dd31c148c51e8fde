// The pieces of Prometheus' text format (0.0.4) the agent writes itself: label values and help
// text escaped, numbers written as Prometheus parses them. Shared by the results store, which
// writes each check's label set once, and the exposition, which writes every sample.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connectivity {

// A label value between its quotes: backslash, double quote and newline escaped.
void append_label_value(std::string& out, std::string_view value);
// HELP text: backslash and newline escaped.
void append_help_text(std::string& out, std::string_view help);
// name="value", the value escaped.
void append_label(std::string& out, std::string_view name, std::string_view value);
// name="value",name="value" (no braces).
void append_label_pairs(std::string& out, const std::vector<std::pair<std::string, std::string>>& labels);
// A sample value: integers without a fraction, others in the shortest form that reads back
// the same; NaN, +Inf, -Inf as Prometheus writes them.
void append_number(std::string& out, double value);
void append_number(std::string& out, std::uint64_t value);

}  // namespace connectivity

#include "agent/exposition_text.h"

#include <charconv>
#include <cmath>

namespace connectivity {

namespace {
void append_escaped(std::string& out, std::string_view text, bool quotes) {
  std::size_t plain = 0;  // runs of characters needing no escape are appended whole
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '\\' && c != '\n' && (c != '"' || !quotes)) continue;
    out.append(text.substr(plain, i - plain));
    out += '\\';
    out += c == '\n' ? 'n' : c;
    plain = i + 1;
  }
  out.append(text.substr(plain));
}
}  // namespace

void append_label_value(std::string& out, std::string_view value) { append_escaped(out, value, true); }

void append_help_text(std::string& out, std::string_view help) { append_escaped(out, help, false); }

void append_label(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += "=\"";
  append_label_value(out, value);
  out += '"';
}

void append_label_pairs(std::string& out, const std::vector<std::pair<std::string, std::string>>& labels) {
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    append_label(out, name, value);
  }
}

void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char text[32];
  // Whole numbers (counts, and most gauges) as integers: shorter, and what a reader expects.
  constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
  std::to_chars_result written{};
  if (value == std::trunc(value) && std::fabs(value) < kExactIntegers)
    written = std::to_chars(text, text + sizeof(text), static_cast<std::int64_t>(value));
  else
    written = std::to_chars(text, text + sizeof(text), value);
  out.append(text, written.ptr);
}

void append_number(std::string& out, std::uint64_t value) {
  char text[24];
  const auto written = std::to_chars(text, text + sizeof(text), value);
  out.append(text, written.ptr);
}

}  // namespace connectivity

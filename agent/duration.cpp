#include "agent/duration.h"

#include <array>
#include <cstdint>
#include <limits>

namespace connectivity {

namespace {
struct Unit {
  std::string_view suffix;
  std::int64_t ms;
};
// Longest suffix first where one is a prefix of another ("ms" before "m").
constexpr std::array<Unit, 5> kUnits{{{"d", 86'400'000}, {"h", 3'600'000}, {"ms", 1}, {"m", 60'000}, {"s", 1'000}}};
constexpr std::array<std::int64_t, 5> kRank{5, 4, 1, 3, 2};  // larger = coarser unit
}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::int64_t last_rank = std::numeric_limits<std::int64_t>::max();
  while (!text.empty()) {
    std::int64_t number = 0;
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      if (number > (std::numeric_limits<std::int64_t>::max() - 9) / 10) return std::nullopt;
      number = number * 10 + (text[digits] - '0');
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    text.remove_prefix(digits);
    std::size_t matched = kUnits.size();
    for (std::size_t i = 0; i < kUnits.size(); ++i) {
      if (text.starts_with(kUnits[i].suffix)) {
        matched = i;
        break;
      }
    }
    if (matched == kUnits.size() || kRank[matched] >= last_rank) return std::nullopt;
    last_rank = kRank[matched];
    if (number > std::numeric_limits<std::int64_t>::max() / kUnits[matched].ms) return std::nullopt;
    const std::int64_t part = number * kUnits[matched].ms;
    if (total > std::numeric_limits<std::int64_t>::max() - part) return std::nullopt;
    total += part;
    text.remove_prefix(kUnits[matched].suffix.size());
  }
  return std::chrono::milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  return std::to_string(ms / 1000) + "s";
}

}  // namespace connectivity

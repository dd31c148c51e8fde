// Durations as written in configs: "500ms", "30s", "1m30s", "2h", "1d".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace connectivity {

// nullopt unless the whole text is one or more <integer><unit> parts (ms, s, m, h, d),
// units in decreasing order, as Prometheus writes durations.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);

}  // namespace connectivity

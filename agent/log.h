// Structured logs: one logfmt line per event on stderr.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace connectivity::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

std::optional<Level> parse_level(std::string_view name);
void set_level(Level level);
bool enabled(Level level);

using Field = std::pair<std::string_view, std::string_view>;
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

// logfmt value quoting: bare when safe, else in double quotes with \" \\ \n escaped.
std::string quote(std::string_view value);

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::debug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::error, m, f); }

}  // namespace connectivity::log

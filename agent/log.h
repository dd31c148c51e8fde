// Structured logs: one logfmt line per event on stderr, and the same line to each added sink
// (a --log-file, the Windows Event Log).
#pragma once

#include <functional>
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

// Receives each logged line (without its newline) at or above the level, after stderr has it;
// called with the writers' lock held, so lines arrive whole and in order.
using Sink = std::function<void(Level level, std::string_view line)>;
void add_sink(Sink sink);
void clear_sinks();  // for tests

// Appends every line to the file at `path` as well (created if missing; flushed per line, so
// `type` or `tail` shows what was logged). Returns the reason when it cannot be opened.
std::optional<std::string> add_file_sink(const std::string& path);

// logfmt value quoting: bare when safe, else in double quotes with \" \\ \n escaped.
std::string quote(std::string_view value);

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::debug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::error, m, f); }

}  // namespace connectivity::log

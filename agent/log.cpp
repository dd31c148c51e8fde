#include "agent/log.h"

#include "probes/utc_time.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

namespace connectivity::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_write_mutex;
std::vector<Sink> g_sinks;  // guarded by g_write_mutex
constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error"};

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::tm utc = utc_calendar(secs);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms));
  return buf;
}
}  // namespace

std::optional<Level> parse_level(std::string_view name) {
  for (int i = 0; i < 4; ++i)
    if (kLevelNames[i] == name) return static_cast<Level>(i);
  return std::nullopt;
}

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

std::string quote(std::string_view value) {
  bool bare = !value.empty();
  for (char c : value)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) bare = false;
  if (bare) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < ' ') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line = "ts=" + timestamp() + " level=" + std::string(kLevelNames[static_cast<int>(level)]) +
                     " msg=" + quote(message);
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += key;
    line += '=';
    line += quote(value);
  }
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  const std::string_view without_newline(line.data(), line.size() - 1);
  for (const auto& sink : g_sinks) sink(level, without_newline);
}

void add_sink(Sink sink) {
  std::lock_guard lock(g_write_mutex);
  g_sinks.push_back(std::move(sink));
}

void clear_sinks() {
  std::lock_guard lock(g_write_mutex);
  g_sinks.clear();
}

std::optional<std::string> add_file_sink(const std::string& path) {
  // Binary mode: the lines are the same bytes on Windows as on Linux (no \r added).
  std::shared_ptr<std::FILE> file(std::fopen(path.c_str(), "ab"), [](std::FILE* f) {
    if (f) std::fclose(f);
  });
  if (!file) {
    return "cannot open \"" + path + "\" for appending: " + std::error_code(errno, std::generic_category()).message();
  }
  add_sink([file](Level, std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), file.get());
    std::fputc('\n', file.get());
    std::fflush(file.get());
  });
  return std::nullopt;
}

}  // namespace connectivity::log

// Reading a check's probe-specific sub-table, with errors that point into the config file.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

namespace connectivity {

// A config problem, already formatted as "file:line:col: message".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "file:line:col: message"; where the region is unknown, just "file: message".
[[noreturn]] void throw_config_error(const toml::source_region& where, const std::string& message);

// The probe's own keys, e.g. `[check.tcp]` under a `[[check]]` with probe = "tcp". Every
// key must be read by the probe's factory; finish() rejects the rest, so a misspelt option
// is an error rather than silently ignored.
class ProbeOptions {
 public:
  // `table` may be null (no sub-table given); `context` prefixes messages, e.g. check "x".
  ProbeOptions(const toml::table* table, toml::source_region fallback, std::string context);

  std::optional<std::string> string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key);
  // One of `allowed`, or nullopt when absent.
  std::optional<std::string> choice(std::string_view key,
                                    std::initializer_list<std::string_view> allowed);

  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  void finish() const;

 private:
  const toml::node* find(std::string_view key);

  const toml::table* table_;
  toml::source_region fallback_;
  std::string context_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace connectivity

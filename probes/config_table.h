// Reading one TOML table of the config with errors that point into the file: the [agent]
// table, each [[check]], and each check's probe options sub-table.
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

// A config problem, already formatted as "file:line:col: message".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "file:line:col: message"; where the region is unknown, just "file: message".
[[noreturn]] void throw_config_error(const toml::source_region& where, const std::string& message);

// Something the config may do but probably should not (a password sent in clear): the config
// loads, and the agent logs it (and `check` and `validate` show it) each time it is loaded.
struct ConfigWarning {
  std::string where;    // "file:line:col" of the key
  std::string context;  // e.g. `check "campus-ldap"`
  std::string message;  // e.g. `key "password_file": ...`
  std::string text() const { return where + ": " + context + ": " + message; }
};

// The most a config or profile file may hold: far beyond any real one, and small enough that
// a path such as /dev/zero fails at once instead of filling memory.
inline constexpr std::size_t kMaxConfigFileBytes = std::size_t{16} << 20;

// The content of the file at `path`, reading no more than `max_bytes` + 1 bytes of it; nullopt
// with `problem` set ("is a directory", "larger than 16 MiB, ...", "cannot read the file: ...")
// when it is not a file of at most `max_bytes`.
std::optional<std::string> read_file_capped(const std::string& path, std::size_t max_bytes, std::string& problem);

// Every key must be read; finish() rejects the rest, so a misspelt key is an error rather than
// a check silently not done.
class ConfigTable {
 public:
  // `table` may be null (e.g. no options sub-table given); `where` is reported for keys that
  // are missing; `context` prefixes messages, e.g. `check "oclc"`.
  ConfigTable(const toml::table* table, toml::source_region where, std::string context);

  const std::string& context() const { return context_; }
  void set_context(std::string context) { context_ = std::move(context); }
  const toml::source_region& where() const { return where_; }

  // The node, or null; either way the key counts as known.
  const toml::node* get(std::string_view key);
  std::optional<std::string> string(std::string_view key);
  std::string required_string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> positive_integer(std::string_view key);
  // An integer from `lowest` to `highest`, or nullopt when absent.
  std::optional<std::int64_t> integer_in_range(std::string_view key, std::int64_t lowest, std::int64_t highest);
  // A file name: relative names are taken from the folder of the file the key is written in
  // (not the working directory, which for a Windows service is System32), as an included
  // profile's path is. Keys in an embedded profile or on the command line are left as given.
  std::optional<std::string> file_path(std::string_view key);
  // The content of the file `key` names (a password, say), trailing newlines dropped; nullopt
  // when the key is absent. An unreadable or empty file, or one over 4 KiB, is an error at the key.
  std::optional<std::string> secret_file(std::string_view key);
  // One of `allowed`, or nullopt when absent.
  std::optional<std::string> choice(std::string_view key, std::initializer_list<std::string_view> allowed);

  // Reports a problem with `key`, at its position (or the table's when it is absent).
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // Records a warning about `key`, at its position: the config still loads.
  void warn(std::string_view key, const std::string& message);
  const std::vector<ConfigWarning>& warnings() const { return warnings_; }
  void finish() const;

 private:
  const toml::table* table_;
  toml::source_region where_;
  std::string context_;
  std::set<std::string, std::less<>> known_;
  std::vector<ConfigWarning> warnings_;
};

}  // namespace connectivity

#include "probes/config_table.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fcntl.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

namespace connectivity {

namespace {

// "file:line:col", or just "file" where the region has no position.
std::string position_of(const toml::source_region& where) {
  std::string out = where.path ? std::string(*where.path) : std::string("<config>");
  if (where.begin.line != 0)
    out += ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
  return out;
}

std::string size_text(std::size_t bytes) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  return bytes % kMiB == 0 ? std::to_string(bytes / kMiB) + " MiB" : std::to_string(bytes) + " bytes";
}

// The file API differs by platform only in these three calls.
// POSIX: opened without blocking, because a named pipe with no writer would otherwise hold the
// open (and a reload, and the shutdown that waits for it) forever; reads block again once it is
// open, and a pipe with no writer then reads as empty. Windows has no FIFO at a file path; the
// file is read in binary mode there, so the cap counts bytes and no CR is dropped.
int open_for_reading(const std::string& path) {
#ifdef _WIN32
  return ::_open(path.c_str(), _O_RDONLY | _O_BINARY | _O_NOINHERIT);
#else
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  return fd;
#endif
}

long long read_some(int fd, char* into, std::size_t size) {
#ifdef _WIN32
  return ::_read(fd, into, static_cast<unsigned>(size));
#else
  return ::read(fd, into, size);
#endif
}

void close_file(int fd) {
#ifdef _WIN32
  ::_close(fd);
#else
  ::close(fd);
#endif
}

}  // namespace

void throw_config_error(const toml::source_region& where, const std::string& message) {
  throw ConfigError(position_of(where) + ": " + message);
}

std::optional<std::string> read_file_capped(const std::string& path, std::size_t max_bytes, std::string& problem) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    problem = "is a directory";
    return std::nullopt;
  }
  const int fd = open_for_reading(path);
  if (fd < 0) {
    problem = "cannot read the file: " + std::error_code(errno, std::generic_category()).message();
    return std::nullopt;
  }
  // In chunks, stopping one byte past the cap: a device or FIFO that never ends (/dev/zero)
  // costs at most the cap, never everything it would give.
  constexpr std::size_t kChunk = std::size_t{64} << 10;
  std::string text;
  std::string chunk(kChunk, '\0');
  int read_error = 0;
  while (text.size() <= max_bytes) {
    const long long got = read_some(fd, chunk.data(), std::min(kChunk, max_bytes + 1 - text.size()));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) read_error = errno;
    if (got <= 0) break;
    text.append(chunk.data(), static_cast<std::size_t>(got));
  }
  close_file(fd);
  if (text.size() > max_bytes) {
    problem = "larger than " + size_text(max_bytes) + ", the most a config or profile file may be";
    return std::nullopt;
  }
  if (read_error != 0) {
    problem = "cannot read the file: " + std::error_code(read_error, std::generic_category()).message();
    return std::nullopt;
  }
  return text;
}

ConfigTable::ConfigTable(const toml::table* table, toml::source_region where, std::string context)
    : table_(table), where_(std::move(where)), context_(std::move(context)) {}

const toml::node* ConfigTable::get(std::string_view key) {
  known_.emplace(key);
  return table_ ? table_->get(key) : nullptr;
}

void ConfigTable::fail(std::string_view key, const std::string& message) const {
  const toml::node* node = table_ ? table_->get(key) : nullptr;
  throw_config_error(node ? node->source() : where_, context_ + ": key \"" + std::string(key) + "\": " + message);
}

std::optional<std::string> ConfigTable::string(std::string_view key) {
  const toml::node* node = get(key);
  if (!node) return std::nullopt;
  if (!node->is_string()) fail(key, "must be a string");
  return node->value<std::string>();
}

std::string ConfigTable::required_string(std::string_view key) {
  auto value = string(key);
  if (!value) throw_config_error(where_, context_ + ": missing required key \"" + std::string(key) + "\"");
  if (value->empty()) fail(key, "must not be empty");
  return *value;
}

std::optional<bool> ConfigTable::boolean(std::string_view key) {
  const toml::node* node = get(key);
  if (!node) return std::nullopt;
  if (!node->is_boolean()) fail(key, "must be true or false");
  return node->value<bool>();
}

std::optional<std::int64_t> ConfigTable::positive_integer(std::string_view key) {
  const toml::node* node = get(key);
  if (!node) return std::nullopt;
  if (!node->is_integer() || *node->value<std::int64_t>() <= 0) fail(key, "must be a positive integer");
  return node->value<std::int64_t>();
}

std::optional<std::int64_t> ConfigTable::integer_in_range(std::string_view key, std::int64_t lowest, std::int64_t highest) {
  const toml::node* node = get(key);
  if (!node) return std::nullopt;
  const auto value = node->value_exact<std::int64_t>();
  if (!value || *value < lowest || *value > highest)
    fail(key, "must be an integer from " + std::to_string(lowest) + " to " + std::to_string(highest));
  return value;
}

void ConfigTable::warn(std::string_view key, const std::string& message) {
  const toml::node* node = table_ ? table_->get(key) : nullptr;
  warnings_.push_back({position_of(node ? node->source() : where_), context_, "key \"" + std::string(key) + "\": " + message});
}

std::optional<std::string> ConfigTable::file_path(std::string_view key) {
  auto value = string(key);
  if (!value) return std::nullopt;
  if (value->empty()) fail(key, "must not be empty");
  const std::shared_ptr<const std::string>& written_in = table_->get(key)->source().path;
  std::filesystem::path path(*value);
  if (path.is_relative() && written_in && !written_in->empty() && !written_in->starts_with('<'))
    path = std::filesystem::path(*written_in).parent_path() / path;
  return path.string();
}

std::optional<std::string> ConfigTable::secret_file(std::string_view key) {
  // Read at most this much: a path such as /dev/zero must not hang the config load.
  constexpr std::size_t kMaxSecret = 4096;
  auto path = file_path(key);
  if (!path) return std::nullopt;
  std::ifstream file(*path, std::ios::binary);
  if (!file) fail(key, "cannot read \"" + *path + "\"");
  std::string secret(kMaxSecret + 1, '\0');
  file.read(secret.data(), static_cast<std::streamsize>(secret.size()));
  if (file.bad()) fail(key, "cannot read \"" + *path + "\"");
  secret.resize(static_cast<std::size_t>(file.gcount()));
  if (secret.size() > kMaxSecret) fail(key, "\"" + *path + "\" is over " + std::to_string(kMaxSecret) + " bytes: not a password");
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) fail(key, "\"" + *path + "\" is empty");
  return secret;
}

std::optional<std::string> ConfigTable::choice(std::string_view key, std::initializer_list<std::string_view> allowed) {
  auto value = string(key);
  if (!value) return std::nullopt;
  std::string list;
  for (auto a : allowed) {
    if (*value == a) return value;
    list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
  }
  fail(key, "must be one of " + list + ", not \"" + *value + "\"");
}

void ConfigTable::finish() const {
  if (!table_) return;
  for (const auto& [key, node] : *table_) {
    if (known_.contains(key.str())) continue;
    throw_config_error(key.source().begin.line ? key.source() : node.source(),
                       context_ + ": unknown key \"" + std::string(key.str()) + "\"");
  }
}

}  // namespace connectivity

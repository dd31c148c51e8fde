#include "probes/config_table.h"

#include <fstream>

namespace connectivity {

void throw_config_error(const toml::source_region& where, const std::string& message) {
  std::string out = where.path ? std::string(*where.path) : std::string("<config>");
  if (where.begin.line != 0)
    out += ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
  throw ConfigError(out + ": " + message);
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

std::optional<std::string> ConfigTable::secret_file(std::string_view key) {
  // Read at most this much: a path such as /dev/zero must not hang the config load.
  constexpr std::size_t kMaxSecret = 4096;
  auto path = string(key);
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

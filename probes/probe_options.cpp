#include "probes/probe_options.h"

namespace connectivity {

void throw_config_error(const toml::source_region& where, const std::string& message) {
  std::string out = where.path ? std::string(*where.path) : std::string("<config>");
  if (where.begin.line != 0)
    out += ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
  throw ConfigError(out + ": " + message);
}

ProbeOptions::ProbeOptions(const toml::table* table, toml::source_region fallback,
                           std::string context)
    : table_(table), fallback_(std::move(fallback)), context_(std::move(context)) {}

const toml::node* ProbeOptions::find(std::string_view key) {
  read_.emplace(key);
  return table_ ? table_->get(key) : nullptr;
}

void ProbeOptions::fail(std::string_view key, const std::string& message) const {
  const toml::node* node = table_ ? table_->get(key) : nullptr;
  throw_config_error(node ? node->source() : fallback_,
                     context_ + ": key \"" + std::string(key) + "\": " + message);
}

std::optional<std::string> ProbeOptions::string(std::string_view key) {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_string()) fail(key, "must be a string");
  return node->value<std::string>();
}

std::optional<bool> ProbeOptions::boolean(std::string_view key) {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_boolean()) fail(key, "must be true or false");
  return node->value<bool>();
}

std::optional<std::int64_t> ProbeOptions::integer(std::string_view key) {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_integer()) fail(key, "must be an integer");
  return node->value<std::int64_t>();
}

std::optional<std::string> ProbeOptions::choice(std::string_view key,
                                                std::initializer_list<std::string_view> allowed) {
  auto value = string(key);
  if (!value) return std::nullopt;
  std::string list;
  for (auto a : allowed) {
    if (*value == a) return value;
    list += (list.empty() ? "" : ", ") + std::string("\"") + std::string(a) + "\"";
  }
  fail(key, "must be one of " + list + ", not \"" + *value + "\"");
}

void ProbeOptions::finish() const {
  if (!table_) return;
  for (const auto& [key, node] : *table_) {
    if (read_.contains(key.str())) continue;
    throw_config_error(key.source().begin.line ? key.source() : node.source(),
                       context_ + ": unknown key \"" + std::string(key.str()) + "\"");
  }
}

}  // namespace connectivity

#include "agent/profiles.h"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>

namespace connectivity {

// Generated from configs/profiles/*.toml (agent/CMakeLists.txt).
extern const std::map<std::string_view, std::string_view>& embedded_profiles();

std::optional<std::string_view> builtin_profile(std::string_view name) {
  const auto& all = embedded_profiles();
  const auto it = all.find(name);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string_view> builtin_profile_names() {
  std::vector<std::string_view> names;
  for (const auto& [name, text] : embedded_profiles()) names.push_back(name);
  return names;
}

namespace {

std::string joined(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
  return out;
}

// A variable's value as the profile's strings take it, or the reason it is not one of `kind`.
// Hosts that are IPv6 literals come back bracketed: every place a profile puts a host (a
// host:port target, a URL) needs the brackets.
std::string normalise(std::string_view kind, const std::string& value) {
  for (unsigned char c : value)
    if (c < ' ' || c == 0x7f) throw std::invalid_argument("must not contain control characters");
  if (value.empty()) throw std::invalid_argument("must not be empty");
  if (kind == "host") {
    boost::system::error_code ec;
    const std::string bare = value.starts_with('[') && value.ends_with(']') ? value.substr(1, value.size() - 2) : value;
    const auto address = boost::asio::ip::make_address(bare, ec);
    if (!ec) return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    if (value.find(':') != std::string::npos)
      throw std::invalid_argument("a host only (name or address): its port is a variable of its own");
    parse_host_target(value);  // the DNS name rules
    return value;
  }
  if (kind == "port") {
    const auto port = parse_port(value);
    if (!port) throw std::invalid_argument("must be a port number from 1 to 65535");
    return std::to_string(*port);
  }
  if (kind == "path") {
    if (!value.starts_with('/')) throw std::invalid_argument("must be a URL path starting with /");
    if (value.find_first_of(" #") != std::string::npos) throw std::invalid_argument("must not contain spaces or '#'");
    return value;
  }
  return value;  // text
}

// A TOML value as a variable's text: strings as they are, integers (ports) in decimal.
std::optional<std::string> value_text(const toml::node& node) {
  if (node.is_string()) return *node.value<std::string>();
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  return std::nullopt;
}

// Calls `visit` on every string value in `node`, tables and arrays included.
void for_each_string(toml::node& node, const std::function<void(toml::value<std::string>&)>& visit) {
  if (auto* text = node.as_string()) {
    visit(*text);
  } else if (auto* table = node.as_table()) {
    for (auto& [key, child] : *table) for_each_string(child, visit);
  } else if (auto* array = node.as_array()) {
    for (auto& child : *array) for_each_string(child, visit);
  }
}

// The ${name} placeholders in `text`, in order; throws for an unclosed or empty one.
std::vector<std::string> placeholders(std::string_view text) {
  std::vector<std::string> names;
  for (std::size_t at = text.find("${"); at != std::string_view::npos; at = text.find("${", at)) {
    const auto close = text.find('}', at);
    if (close == std::string_view::npos) throw std::invalid_argument("\"${\" without its closing \"}\"");
    if (close == at + 2) throw std::invalid_argument("an empty ${} placeholder");
    names.emplace_back(text.substr(at + 2, close - at - 2));
    at = close + 1;
  }
  return names;
}

std::string substitute(std::string_view text, const std::function<std::string(std::string_view)>& value_of) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t at = text.find("${"); at != std::string_view::npos; at = text.find("${", from)) {
    const auto close = text.find('}', at);
    out.append(text.substr(from, at - from));
    out += value_of(text.substr(at + 2, close - at - 2));
    from = close + 1;
  }
  out.append(text.substr(from));
  return out;
}

std::string string_or_empty(const toml::table& table, std::string_view key) {
  const toml::node* node = table.get(key);
  return node && node->is_string() ? *node->value<std::string>() : std::string();
}

[[noreturn]] void fail_at(const toml::node* node, const std::optional<toml::source_region>& fallback,
                          const std::string& context, const std::string& message) {
  if (node) throw_config_error(node->source(), context + ": " + message);
  if (fallback) throw_config_error(*fallback, context + ": " + message);
  throw ConfigError(context + ": " + message);
}

}  // namespace

SiteVars::SiteVars(const toml::table* vars_table, const std::vector<std::pair<std::string, std::string>>& command_line) {
  if (vars_table)
    for (const auto& [key, node] : *vars_table) {
      if (!value_text(node))
        throw_config_error(node.source(), "[vars]: \"" + std::string(key.str()) + "\" must be a string (or a port number)");
      config_[std::string(key.str())] = Setting{*value_text(node), &node};
    }
  for (const auto& [name, value] : command_line) command_line_[name] = Setting{value, nullptr};
}

void SiteVars::check_all_declared() const {
  for (const auto& [name, setting] : config_)
    if (!setting.declared)
      throw_config_error(setting.node->source(),
                         "[vars]: no included profile has a variable \"" + name + "\" (misspelt, or its [[include]] missing?)");
  for (const auto& [name, setting] : command_line_)
    if (!setting.declared)
      throw ConfigError("--var " + name + ": no included profile has this variable (misspelt, or its --profile missing?)");
}

ProfileExpansion::ProfileExpansion(const ProfileInclude& include, SiteVars& site) {
  load(include);
  read_declarations();
  assign(include, site);
  expand(include);
}

void ProfileExpansion::load(const ProfileInclude& include) {
  const bool is_path = include.profile.find('/') != std::string::npos || include.profile.ends_with(".toml");
  std::string text;
  std::string source;
  if (is_path) {
    std::filesystem::path path(include.profile);
    if (path.is_relative() && !include.base_dir.empty()) path = std::filesystem::path(include.base_dir) / path;
    std::string problem;
    auto read = read_file_capped(path.string(), kMaxConfigFileBytes, problem);
    if (!read) fail_at(nullptr, include.where, include.context, "profile file \"" + path.string() + "\": " + problem);
    text = std::move(*read);
    source = path.string();
    name_ = path.stem().string();
  } else {
    const auto builtin = builtin_profile(include.profile);
    if (!builtin) {
      const auto names = builtin_profile_names();
      fail_at(nullptr, include.where, include.context,
              "no profile \"" + include.profile + "\" (built in: " + joined({names.begin(), names.end()}) +
                  "; or give a file path)");
    }
    text = std::string(*builtin);
    source = "<profile " + include.profile + ">";
    name_ = include.profile;
  }
  try {
    document_ = std::make_unique<toml::table>(toml::parse(text, source));
  } catch (const toml::parse_error& e) {
    throw_config_error(e.source(), std::string(e.description()));
  }
}

void ProfileExpansion::read_declarations() {
  const std::string context = "profile \"" + name_ + "\"";
  for (const auto& [key, node] : *document_)
    if (key.str() != "profile" && key.str() != "vars" && key.str() != "check" && key.str() != "inbound")
      throw_config_error(node.source(), context + ": unknown key \"" + std::string(key.str()) +
                                            "\" (a profile has [profile], [vars.NAME], [[check]] and [[inbound]])");

  const toml::node* header = document_->get("profile");
  if (!header || !header->is_table())
    throw_config_error(document_->source(), context + ": missing its [profile] table (description, document)");
  ConfigTable about(header->as_table(), header->source(), context + " [profile]");
  about.required_string("description");
  about.string("document");
  about.finish();

  if (const toml::node* vars = document_->get("vars")) {
    if (!vars->is_table()) throw_config_error(vars->source(), context + ": \"vars\" must hold one [vars.NAME] table per variable");
    for (const auto& [key, node] : *vars->as_table()) {
      std::string about_var = context;
      about_var.append(" variable \"").append(key.str()).append("\"");
      if (!node.is_table()) throw_config_error(node.source(), about_var + " must be a table (kind, description)");
      ConfigTable decl(node.as_table(), node.source(), about_var);
      Declared declared;
      const auto kind = decl.choice("kind", {"host", "port", "path", "text"});
      if (!kind) decl.fail("kind", "missing: one of \"host\", \"port\", \"path\", \"text\"");
      declared.kind = *kind;
      declared.description = decl.required_string("description");
      if (const toml::node* fallback = decl.get("default")) {
        const auto text = value_text(*fallback);
        if (!text) decl.fail("default", "must be a string (or a port number)");
        try {
          declared.value = normalise(declared.kind, *text);
        } catch (const std::invalid_argument& e) {
          decl.fail("default", e.what());
        }
      }
      decl.finish();
      declared_.emplace(std::string(key.str()), std::move(declared));
    }
  }
}

void ProfileExpansion::assign(const ProfileInclude& include, SiteVars& site) {
  // Lowest to highest: the profile's default, [vars], the include's `vars`, --var.
  const auto set = [&](const std::string& name, Declared& declared, const std::string& value, const toml::node* node,
                       const std::string& where) {
    try {
      declared.value = normalise(declared.kind, value);
    } catch (const std::invalid_argument& e) {
      const std::string message = "variable \"" + name + "\" (" + declared.kind + "): \"" + value + "\" " + e.what();
      if (node) throw_config_error(node->source(), where + ": " + message);
      throw ConfigError(where + ": " + message);
    }
  };
  for (auto& [name, declared] : declared_) {
    if (auto it = site.config_.find(name); it != site.config_.end()) {
      it->second.declared = true;
      set(name, declared, it->second.value, it->second.node, "[vars]");
    }
  }
  if (include.vars) {
    const toml::table* own = include.vars->as_table();
    if (!own) fail_at(include.vars, include.where, include.context, "\"vars\" must be a table of name = \"value\"");
    for (const auto& [key, node] : *own) {
      const std::string name(key.str());
      auto it = declared_.find(name);
      if (it == declared_.end()) {
        std::vector<std::string> names;
        for (const auto& [n, d] : declared_) names.push_back(n);
        throw_config_error(node.source(), include.context + ": profile \"" + name_ + "\" has no variable \"" + name +
                                              "\" (it has: " + joined(names) + ")");
      }
      const auto text = value_text(node);
      if (!text) throw_config_error(node.source(), include.context + ": variable \"" + name + "\" must be a string (or a port number)");
      set(name, it->second, *text, &node, include.context);
    }
  }
  for (auto& [name, declared] : declared_) {
    if (auto it = site.command_line_.find(name); it != site.command_line_.end()) {
      it->second.declared = true;
      set(name, declared, it->second.value, nullptr, "--var " + name);
    }
  }
}

void ProfileExpansion::expand(const ProfileInclude& include) {
  std::set<std::string, std::less<>> skip;
  if (include.skip) {
    const toml::array* list = include.skip->as_array();
    if (!list) fail_at(include.skip, include.where, include.context, "\"skip\" must be a list of check names");
    for (const auto& item : *list) {
      if (!item.is_string()) throw_config_error(item.source(), include.context + ": \"skip\" holds check names (strings)");
      skip.insert(*item.value<std::string>());
    }
  }

  toml::node* checks = document_->get("check");
  if (!checks || !checks->is_array_of_tables())
    throw_config_error(document_->source(), "profile \"" + name_ + "\": has no [[check]] tables");
  // [[inbound]] watches take variables like checks do, and are always required.
  std::vector<std::pair<toml::table*, bool>> tables;  // table, is a check
  for (auto& node : *checks->as_array()) tables.emplace_back(node.as_table(), true);
  if (toml::node* watches = document_->get("inbound")) {
    if (!watches->is_array_of_tables())
      throw_config_error(watches->source(), "profile \"" + name_ + "\": \"inbound\" must be written as [[inbound]] tables");
    for (auto& node : *watches->as_array()) tables.emplace_back(node.as_table(), false);
  }

  std::set<std::string, std::less<>> seen;
  std::map<std::string, std::vector<std::string>, std::less<>> unset;  // variable -> required checks needing it
  for (auto [table, is_check] : tables) {
    toml::table& check = *table;
    const std::string name = string_or_empty(check, "name");
    seen.insert(name);
    if (skip.contains(name)) continue;

    std::vector<std::string> missing;
    for_each_string(check, [&](toml::value<std::string>& text) {
      std::vector<std::string> names;
      try {
        names = placeholders(text.get());
      } catch (const std::invalid_argument& e) {
        throw_config_error(text.source(), "profile \"" + name_ + "\": " + e.what());
      }
      for (const auto& var : names) {
        const auto it = declared_.find(var);
        if (it == declared_.end())
          throw_config_error(text.source(), "profile \"" + name_ + "\": ${" + var + "} is not declared under [vars]");
        if (!it->second.value && std::find(missing.begin(), missing.end(), var) == missing.end()) missing.push_back(var);
      }
    });

    // A check meant for another host is left out before its variables are asked for (a staff PC
    // has no PatronAPI host to give). Every built-in profile's checks name their roles (a unit
    // test holds them to it); a site's own profile file may leave them out, as its config may.
    const std::string about = "profile \"" + name_ + "\": " + (is_check ? "check" : "inbound") + " \"" + name + "\"";
    const std::vector<std::string> run_from = read_run_from(check.get("run_from"), about);
    roles_named_.insert(run_from.begin(), run_from.end());
    if (!include.roles.includes(run_from)) {
      ++left_out_;
      continue;
    }

    const toml::node* required_node = is_check ? check.get("required") : nullptr;
    const bool required = !required_node || required_node->value<bool>().value_or(true);
    if (!missing.empty()) {
      if (required) {
        for (const auto& var : missing) unset[var].push_back(name);
        continue;
      }
      SkippedCheck skipped{name,    string_or_empty(check, "probe"), string_or_empty(check, "target"), required, {},
                           missing, run_from};
      if (const toml::table* labels = check.get_as<toml::table>("labels"))
        for (const auto& [key, value] : *labels)
          if (value.is_string()) skipped.labels.emplace_back(std::string(key.str()), *value.value<std::string>());
      skipped.labels.emplace_back("required", "false");
      for (const auto& extra : include.labels) {
        std::erase_if(skipped.labels, [&](const auto& label) { return label.first == extra.first; });
        skipped.labels.push_back(extra);
      }
      std::sort(skipped.labels.begin(), skipped.labels.end());
      skipped_.push_back(std::move(skipped));
      continue;
    }

    for_each_string(check, [&](toml::value<std::string>& text) {
      if (text.get().find("${") == std::string::npos) return;
      text.get() = substitute(text.get(), [&](std::string_view var) { return *declared_.find(var)->second.value; });
    });
    // Alerts and the preflight table read whether a failure pages from the series itself.
    if (!check.contains("labels")) check.insert("labels", toml::table{});
    if (toml::table* labels = check.get_as<toml::table>("labels")) {
      if (is_check) labels->insert_or_assign("required", required ? "true" : "false");
      for (const auto& [label, value] : include.labels) labels->insert_or_assign(label, value);
    }
    (is_check ? checks_ : inbound_).push_back(&check);
  }

  for (const auto& name : skip)
    if (!seen.contains(name)) {
      std::vector<std::string> names(seen.begin(), seen.end());
      fail_at(include.skip, include.where, include.context,
              "skip: profile \"" + name_ + "\" has no check \"" + name + "\" (it has: " + joined(names) + ")");
    }

  if (!unset.empty()) {
    std::vector<std::string> needs;
    std::string example;
    for (const auto& [var, needed_by] : unset) {
      needs.push_back(var + " (" + declared_.find(var)->second.description + "; for " + joined(needed_by) + ")");
      example += " --var " + var + "=...";
    }
    const std::string how = include.where ? "in [vars], in this include's vars, or with" + example : "with" + example;
    fail_at(nullptr, include.where, include.context,
            "profile \"" + name_ + "\" needs " + joined(needs, " and ") + ". Set " + (unset.size() == 1 ? "it " : "them ") + how);
  }
}

}  // namespace connectivity

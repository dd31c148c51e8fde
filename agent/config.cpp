#include "agent/config.h"

#include "agent/duration.h"
#include "agent/profiles.h"
#include "agent/vantage.h"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>

namespace connectivity {

namespace {

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// `longest` is a whole number of days (every bound in config.h is).
std::optional<std::chrono::milliseconds> read_duration(ConfigTable& table, std::string_view key,
                                                       std::chrono::milliseconds longest) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  if (!node->is_string()) table.fail(key, "must be a duration string such as \"30s\" or \"500ms\"");
  const auto text = *node->value<std::string>();
  const auto parsed = parse_duration(text);
  if (!parsed) table.fail(key, "bad duration \"" + text + "\" (use e.g. \"500ms\", \"30s\", \"1m30s\", \"1h\")");
  if (parsed->count() <= 0) table.fail(key, "must be greater than zero");
  if (*parsed > longest)
    table.fail(key, "\"" + text + "\" is longer than " + std::to_string(longest / std::chrono::hours(24)) +
                        "d, the longest " + std::string(key));
  return parsed;
}

// confirm_runs, or the older confirm_failures (false is confirm_runs = 0, true is `when_true`);
// both in one table is a contradiction waiting to happen, so it is an error.
std::optional<unsigned> read_confirm_runs(ConfigTable& table, unsigned when_true) {
  const auto runs = table.integer_in_range("confirm_runs", 0, kMostConfirmRuns);
  const auto confirm = table.boolean("confirm_failures");
  if (runs && confirm)
    table.fail("confirm_failures", "set confirm_runs or confirm_failures, not both (confirm_runs = 0 is confirm_failures = false)");
  if (runs) return static_cast<unsigned>(*runs);
  if (confirm) return *confirm ? when_true : 0U;
  return std::nullopt;
}

Labels read_labels(ConfigTable& table, std::string_view key) {
  Labels out;
  const toml::node* node = table.get(key);
  if (!node) return out;
  const toml::table* labels = node->as_table();
  if (!labels) table.fail(key, "must be a table of name = \"value\"");
  for (const auto& [name, value] : *labels) {
    const auto& where = name.source().begin.line ? name.source() : value.source();
    const std::string label(name.str());
    if (!valid_label_name(label))
      throw_config_error(where, table.context() + ": label name \"" + label + "\" is not a valid Prometheus label name");
    if (label == "vantage")
      throw_config_error(where, table.context() + ": label name \"vantage\" is set by the agent: write vantage = \"...\" in [agent]");
    if (is_reserved_label(label))
      throw_config_error(where, table.context() + ": label name \"" + label + "\" is reserved (set by the agent or by Prometheus)");
    if (!value.is_string())
      throw_config_error(value.source(), table.context() + ": label \"" + label + "\" must be a string");
    out.emplace_back(label, *value.value<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Labels merge_labels(const Labels& global, const Labels& own) {
  Labels out = own;
  for (const auto& g : global)
    if (std::none_of(own.begin(), own.end(), [&](const auto& o) { return o.first == g.first; }))
      out.push_back(g);
  std::sort(out.begin(), out.end());
  return out;
}

// [agent] latency_buckets: upper bounds in seconds, each a positive number above the one before.
std::vector<double> read_latency_buckets(const toml::node& node) {
  const auto* list = node.as_array();
  if (!list)
    throw_config_error(node.source(), "[agent]: key \"latency_buckets\": must be a list of upper bounds in seconds, "
                                      "e.g. [0.01, 0.1, 1]");
  if (list->size() > kMostLatencyBuckets)
    throw_config_error(node.source(), "[agent]: key \"latency_buckets\": " + std::to_string(list->size()) +
                                          " bounds; at most " + std::to_string(kMostLatencyBuckets) +
                                          " (each is one more series for every check)");
  std::vector<double> bounds;
  for (const auto& item : *list) {
    std::optional<double> bound;
    if (const auto* number = item.as_floating_point()) bound = number->get();
    if (const auto* number = item.as_integer()) bound = static_cast<double>(number->get());
    const std::string where = "[agent]: key \"latency_buckets\": bound " + std::to_string(bounds.size() + 1);
    if (!bound) throw_config_error(item.source(), where + ": must be a number of seconds");
    if (!std::isfinite(*bound) || *bound <= 0 || *bound > 86400)
      throw_config_error(item.source(), where + ": must be above 0 and at most 86400 seconds");
    if (!bounds.empty() && *bound <= bounds.back())
      throw_config_error(item.source(), where + ": must be above the bound before it");
    bounds.push_back(*bound);
  }
  return bounds;
}

AgentSettings parse_agent(const toml::table& root) {
  AgentSettings agent;
  const toml::node* node = root.get("agent");
  if (!node) return agent;
  const toml::table* table = node->as_table();
  if (!table) throw_config_error(node->source(), "[agent] must be a table");
  ConfigTable reader(table, table->source(), "[agent]");
  if (const toml::node* listen = reader.get("listen")) {
    // One address, or a list of them. Checked here, with its position: the HTTP server would
    // only refuse one at start, exit 1.
    std::vector<const toml::node*> items;
    if (const auto* list = listen->as_array()) {
      if (list->empty()) reader.fail("listen", "must name at least one address");
      for (const auto& item : *list) items.push_back(&item);
    } else {
      items.push_back(listen);
    }
    agent.listen.clear();
    for (const toml::node* item : items) {
      const auto* text = item->as_string();
      if (!text) throw_config_error(item->source(), "[agent]: key \"listen\": must be an address string, or a list of them");
      const std::string address = text->get();
      if (auto problem = listen_address_problem(address))
        throw_config_error(item->source(), "[agent]: key \"listen\": bad listen address \"" + address + "\": " + *problem +
                                               " (expected host:port, \":port\" or \"[v6-address]:port\", port 0 to 65535)");
      agent.listen.push_back(address);
    }
  }
  if (auto v = reader.file_path("web_config_file")) agent.web_config_file = *v;
  if (auto v = read_duration(reader, "interval", kLongestInterval)) agent.interval = *v;
  if (auto v = read_duration(reader, "timeout", kLongestTimeout)) agent.timeout = *v;
  if (auto v = read_confirm_runs(reader, kDefaultConfirmRuns)) agent.confirm_runs = *v;
  if (auto v = read_duration(reader, "confirm_delay", kLongestConfirmDelay)) agent.confirm_delay = *v;
  agent.labels = read_labels(reader, "labels");
  if (auto v = reader.integer_in_range("max_concurrent_probes", 1, kMaxConcurrentProbes))
    agent.max_concurrent_probes = static_cast<std::size_t>(*v);
  if (auto v = reader.integer_in_range("resolver_threads", 1, kMaxResolverThreads))
    agent.resolver_threads = static_cast<std::size_t>(*v);
  if (auto v = reader.boolean("allow_empty")) agent.allow_empty = *v;
  if (const toml::node* roles = reader.get("roles")) {
    // The same vocabulary as run_from; an empty list is a mistake, not "every check".
    agent.roles = read_run_from(roles, "[agent]", "roles");
  }
  if (auto v = reader.string("vantage")) {
    // A label value: a dashboard's column and an alert's words, so short and printable.
    constexpr std::size_t kLongestVantage = 64;
    if (v->empty() || v->size() > kLongestVantage)
      reader.fail("vantage", "must be 1 to " + std::to_string(kLongestVantage) + " characters");
    for (unsigned char c : *v)
      if (c < ' ' || c == 0x7f) reader.fail("vantage", "must not contain control characters");
    agent.vantage = *v;
  }
  if (const toml::node* buckets = reader.get("latency_buckets")) agent.latency_buckets = read_latency_buckets(*buckets);
  reader.finish();
  if (agent.timeout > agent.interval)
    throw_config_error(table->source(), "[agent]: default timeout " + format_duration(agent.timeout) +
                                            " is longer than the default interval " + format_duration(agent.interval));
  return agent;
}

CheckConfig parse_check(const toml::table& table, std::size_t index, const AgentSettings& agent,
                        const ProbeRegistry& registry) {
  CheckConfig check;
  ConfigTable named(&table, table.source(), "check #" + std::to_string(index + 1));
  check.name = named.required_string("name");
  for (unsigned char c : check.name)
    if (c < ' ' || c == 0x7f) named.fail("name", "must not contain control characters");
  named.set_context("check \"" + check.name + "\"");

  const std::string kind_name = named.required_string("probe");
  check.kind = registry.find(kind_name);
  if (!check.kind) {
    std::string known;
    for (auto n : registry.names()) known += (known.empty() ? "" : ", ") + std::string(n);
    named.fail("probe", "unknown probe kind \"" + kind_name + "\" (known: " + known + ")");
  }

  const std::string target_text = named.required_string("target");
  try {
    check.target = check.kind->url_target    ? parse_url_target(target_text)
                   : check.kind->host_target ? parse_host_target(target_text)
                                             : parse_target(target_text);
  } catch (const std::invalid_argument& e) {
    named.fail("target", "bad target \"" + target_text + "\": " + e.what());
  }

  check.interval = read_duration(named, "interval", kLongestInterval).value_or(agent.interval);
  check.timeout = read_duration(named, "timeout", kLongestTimeout).value_or(agent.timeout);
  if (check.timeout > check.interval) {
    const toml::node* at = table.get("timeout") ? table.get("timeout") : table.get("interval");
    throw_config_error(at ? at->source() : table.source(),
                       named.context() + ": timeout " + format_duration(check.timeout) +
                           " is longer than the interval " + format_duration(check.interval) +
                           " (runs of one check never overlap)");
  }
  check.labels = merge_labels(agent.labels, read_labels(named, "labels"));
  check.required = named.boolean("required").value_or(true);
  check.confirm_runs =
      read_confirm_runs(named, agent.confirm_runs > 0 ? agent.confirm_runs : kDefaultConfirmRuns).value_or(agent.confirm_runs);
  check.confirm_delay = agent.confirm_delay;
  // The re-runs never delay the next scheduled run: those that could not end before it (after
  // a failure that took the whole timeout) are not started, and each one missing multiplies
  // the false-alarm rate on a lossy path by the loss rate's inverse.
  if (const unsigned fit = check.confirm_runs_that_fit(check.timeout); fit < check.confirm_runs) {
    const auto needed = 2 * check.timeout + check.confirm_runs * check.confirm_delay;
    named.warn(table.get("interval") ? "interval" : "timeout",
               "the interval " + format_duration(check.interval) + " leaves room for " + std::to_string(fit) + " of " +
                   std::to_string(check.confirm_runs) + " confirmation re-runs after a failure that takes the whole timeout " +
                   format_duration(check.timeout) + " (they need 2 x timeout + confirm_runs x confirm_delay = " +
                   format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(needed)) +
                   "): a failure is reported after fewer re-runs, so a lossy path raises more false alarms");
  }

  // Probe-specific keys live in a sub-table named after the kind, e.g. [check.tcp].
  const toml::node* options_node = named.get(check.kind->name);
  const toml::table* options_table = nullptr;
  if (options_node) {
    options_table = options_node->as_table();
    if (!options_table) named.fail(check.kind->name, "must be a table of probe options");
    std::ostringstream text;
    text << toml::toml_formatter(*options_table);
    check.options_text = text.str();
  }
  check.run_from = read_run_from(named.get("run_from"), named.context());
  ConfigTable options(options_table, options_node ? options_node->source() : table.source(), named.context());
  check.probe = check.kind->make(options);
  options.finish();
  check.warnings = named.warnings();
  check.warnings.insert(check.warnings.end(), options.warnings().begin(), options.warnings().end());
  named.finish();
  return check;
}

std::uint16_t read_port(ConfigTable& table, std::string_view key) {
  const toml::node* node = table.get(key);
  if (!node) throw_config_error(table.where(), table.context() + ": missing required key \"" + std::string(key) + "\"");
  // A string of digits too: a profile writes the port as "${catalogue_port}".
  const std::optional<std::string> text =
      node->is_integer() ? std::to_string(*node->value<std::int64_t>()) : node->value<std::string>();
  const auto port = text ? parse_port(*text) : std::nullopt;
  if (!port) table.fail(key, "must be a port number from 1 to 65535");
  return *port;
}

// [[inbound]]: a port on this host and the sources expected to call it.
InboundWatchConfig parse_inbound(const toml::table& table, std::size_t index, const AgentSettings& agent,
                                 std::vector<std::string>& run_from) {
  constexpr std::size_t kMaxSources = 64;  // each is a series: keep cardinality bounded
  InboundWatchConfig watch;
  ConfigTable reader(&table, table.source(), "inbound #" + std::to_string(index + 1));
  watch.name = reader.required_string("name");
  reader.set_context("inbound \"" + watch.name + "\"");
  watch.port = read_port(reader, "port");
  watch.expect_within = read_duration(reader, "expect_within", kLongestExpectWithin).value_or(watch.expect_within);
  if (auto interface = reader.string("interface")) {
    if (interface->empty()) reader.fail("interface", "must not be empty (\"any\" watches every interface)");
    watch.interface = *interface;
  }
  const Labels own = read_labels(reader, "labels");
  for (const auto& [label, value] : own)
    if (label == "source" || label == "port") reader.fail("labels", "label name \"" + label + "\" is set by the watch itself");
  watch.labels = merge_labels(agent.labels, own);
  run_from = read_run_from(reader.get("run_from"), reader.context());

  const toml::node* sources = reader.get("sources");
  if (!sources) throw_config_error(table.source(), reader.context() + ": missing required key \"sources\"");
  const toml::array* list = sources->as_array();
  if (!list || list->empty() || list->size() > kMaxSources)
    reader.fail("sources", "must be a list of 1 to " + std::to_string(kMaxSources) +
                               " tables such as { source = \"talis-eu-1\", address = \"54.171.115.177\" }");
  std::set<std::string, std::less<>> names;
  for (const auto& item : *list) {
    const toml::table* entry = item.as_table();
    if (!entry) throw_config_error(item.source(), reader.context() + ": each source is a table { source = \"...\", address = \"...\" }");
    ConfigTable source(entry, item.source(), reader.context());
    InboundSource expected;
    expected.name = source.required_string("source");
    const std::string address = source.required_string("address");
    std::string why;
    const auto prefix = parse_address_prefix(address, why);
    if (!prefix) source.fail("address", why);
    expected.prefix = *prefix;
    if (!names.insert(expected.name).second) source.fail("source", "duplicate source \"" + expected.name + "\"");
    source.finish();
    watch.sources.push_back(std::move(expected));
  }
  reader.finish();
  return watch;
}

}  // namespace

bool is_reserved_label(std::string_view name) {
  static constexpr std::string_view reserved[] = {"check", "probe", "target", "result", "phase", "le",
                                                  "job",   "instance", "vantage"};
  return std::find(std::begin(reserved), std::end(reserved), name) != std::end(reserved);
}

std::string CheckConfig::series_key() const {
  std::string key = name + '\0' + std::string(kind->name) + '\0' + target.to_string();
  for (const auto& [k, v] : labels) {
    key += '\0';
    key += k;
    key += '=';
    key += v;
  }
  return key;
}

unsigned CheckConfig::confirm_runs_that_fit(std::chrono::steady_clock::duration elapsed) const {
  const auto room = interval - elapsed - timeout;
  if (room.count() < 0) return 0;
  return static_cast<unsigned>(std::min<std::int64_t>(confirm_runs, room / confirm_delay));
}

bool CheckConfig::same_schedule_as(const CheckConfig& other) const {
  return series_key() == other.series_key() && interval == other.interval && timeout == other.timeout &&
         required == other.required && confirm_runs == other.confirm_runs &&
         confirm_delay == other.confirm_delay && options_text == other.options_text;
}

Config parse_config(std::string_view text, const std::string& source_name, const ProbeRegistry& registry,
                    const ConfigOverrides& overrides) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw_config_error(e.source(), std::string(e.description()));
  }

  Config config;
  config.agent = parse_agent(root);
  if (!overrides.roles.empty()) {
    config.agent.roles.clear();
    for (const auto& role : overrides.roles) {
      if (!is_vantage_role(role))
        throw ConfigError("--role " + role + ": unknown role (known: " + vantage_role_names() + ")");
      if (std::find(config.agent.roles.begin(), config.agent.roles.end(), role) == config.agent.roles.end())
        config.agent.roles.push_back(role);
    }
  }
  const RoleSelection selection{config.agent.roles};
  if (config.agent.vantage.empty()) config.agent.vantage = default_vantage(selection);
  // Through the agent's labels, every check and watch carries it, and no config can set it.
  config.agent.labels.emplace_back("vantage", config.agent.vantage);
  std::sort(config.agent.labels.begin(), config.agent.labels.end());

  std::set<std::string, std::less<>> roles_named;
  std::set<std::string, std::less<>> names;
  const auto add = [&](const toml::table& table, std::size_t index) {
    CheckConfig check = parse_check(table, index, config.agent, registry);
    if (!names.insert(check.name).second)
      throw_config_error(table.get("name")->source(), "check \"" + check.name + "\": duplicate check name");
    roles_named.insert(check.run_from.begin(), check.run_from.end());
    if (!selection.includes(check.run_from)) {
      ++config.left_out_for_roles;
      return;
    }
    config.checks.push_back(std::move(check));
  };

  // Watches share the `check` label with checks, so their names must differ from every check's.
  const auto add_inbound = [&](const toml::table& table, std::size_t index) {
    std::vector<std::string> run_from;
    InboundWatchConfig watch = parse_inbound(table, index, config.agent, run_from);
    if (!names.insert(watch.name).second)
      throw_config_error(table.get("name")->source(), "inbound \"" + watch.name + "\": the name of a check or watch already");
    roles_named.insert(run_from.begin(), run_from.end());
    if (!selection.includes(run_from)) {
      ++config.left_out_for_roles;
      return;
    }
    config.inbound.push_back(std::move(watch));
  };
  const auto each_table = [](const toml::table& root_table, std::string_view key, const auto& visit) {
    const toml::node* node = root_table.get(key);
    if (!node) return;
    const toml::array* list = node->as_array();
    if (!list || !list->is_array_of_tables())
      throw_config_error(node->source(), "\"" + std::string(key) + "\" must be an array of tables: write each as [[" +
                                             std::string(key) + "]]");
    for (std::size_t i = 0; i < list->size(); ++i) visit(*list->get(i)->as_table(), i);
  };
  each_table(root, "check", add);
  each_table(root, "inbound", add_inbound);

  // Profiles: the config's [[include]]s, then the command line's --profile.
  const toml::node* vars = root.get("vars");
  if (vars && !vars->is_table()) throw_config_error(vars->source(), "[vars] must be a table of name = \"value\"");
  SiteVars site(vars ? vars->as_table() : nullptr, overrides.vars);
  const std::string base_dir =
      source_name.starts_with('<') ? std::string() : std::filesystem::path(source_name).parent_path().string();
  std::vector<ProfileInclude> includes;
  if (const toml::node* node = root.get("include")) {
    const toml::array* list = node->as_array();
    if (!list || !list->is_array_of_tables())
      throw_config_error(node->source(), "\"include\" must be an array of tables: write each as [[include]]");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const toml::table& table = *list->get(i)->as_table();
      ConfigTable reader(&table, table.source(), "include #" + std::to_string(i + 1));
      ProfileInclude include;
      include.profile = reader.required_string("profile");
      reader.set_context("include \"" + include.profile + "\"");
      include.base_dir = base_dir;
      include.vars = reader.get("vars");
      include.skip = reader.get("skip");
      include.labels = read_labels(reader, "labels");
      include.where = table.source();
      include.context = reader.context();
      include.roles = selection;
      reader.finish();
      includes.push_back(std::move(include));
    }
  }
  for (const auto& profile : overrides.profiles) {
    ProfileInclude include;
    include.profile = profile;
    include.context = "--profile " + profile;
    include.roles = selection;
    includes.push_back(std::move(include));
  }

  std::vector<std::unique_ptr<ProfileExpansion>> expansions;  // the check tables point into these
  for (const auto& include : includes) {
    auto& expansion = *expansions.emplace_back(std::make_unique<ProfileExpansion>(include, site));
    for (std::size_t i = 0; i < expansion.checks().size(); ++i) add(*expansion.checks()[i], i);
    for (std::size_t i = 0; i < expansion.inbound().size(); ++i) add_inbound(*expansion.inbound()[i], i);
    for (auto& skipped : expansion.skipped()) config.skipped.push_back(std::move(skipped));
    config.left_out_for_roles += expansion.left_out();
    roles_named.insert(expansion.roles_named().begin(), expansion.roles_named().end());
    config.profiles.push_back(expansion.name());
  }
  site.check_all_declared();
  config.roles_named.assign(roles_named.begin(), roles_named.end());

  // A role no check runs from is a typo or the wrong profile: it would load nothing, or only a
  // site's own unlabelled checks, and look like a working agent.
  for (const auto& role : selection.roles) {
    if (roles_named.contains(role)) continue;
    std::string named;
    for (const auto& r : roles_named) named.append(named.empty() ? "" : ", ").append(r);
    const std::string message = "role \"" + role + "\": no check or watch in this config runs from it (" +
                                (named.empty() ? std::string("none names a role with run_from") : "they run from: " + named) +
                                "; every role: " + vantage_role_names() + ")";
    const toml::node* agent_table = root.get("agent");
    const toml::node* roles_node = agent_table && agent_table->is_table() ? agent_table->as_table()->get("roles") : nullptr;
    if (overrides.roles.empty() && roles_node) throw_config_error(roles_node->source(), "[agent]: roles: " + message);
    throw ConfigError(std::string("--role ").append(role).append(": ").append(message));
  }

  for (const auto& [key, node] : root) {
    if (key.str() == "agent" || key.str() == "check" || key.str() == "inbound" || key.str() == "include" || key.str() == "vars")
      continue;
    throw_config_error(key.source().begin.line ? key.source() : node.source(),
                       "unknown top-level key \"" + std::string(key.str()) +
                           "\" (expected [agent], [[check]], [[inbound]], [[include]] or [vars])");
  }

  // An empty file (or /dev/null, or a file of comments) would replace every check with none on
  // a reload, and report the reload a success.
  if (config.checks.empty() && config.inbound.empty() && !config.agent.allow_empty) {
    const std::size_t skipped = config.skipped.size();
    const std::string why = skipped == 0 ? "an empty or wrong file?"
                            : skipped == 1 ? "1 optional check skipped: its variables are unset"
                                           : std::to_string(skipped) + " optional checks skipped: their variables are unset";
    const std::string for_roles =
        config.left_out_for_roles == 0
            ? std::string()
            : "; " + std::to_string(config.left_out_for_roles) + " run from roles other than " + default_vantage(selection);
    const std::string message = "no [[check]] or [[inbound]] to run (" + why + for_roles +
                                "); to run none on purpose, set allow_empty = true in [agent]";
    if (source_name.starts_with('<')) throw ConfigError(source_name + ": " + message);
    throw_config_error(toml::source_region{{1, 1}, {1, 1}, std::make_shared<const std::string>(source_name)}, message);
  }
  return config;
}

Config load_config_file(const std::string& path, const ProbeRegistry& registry, const ConfigOverrides& overrides) {
  std::string problem;
  const auto text = read_file_capped(path, kMaxConfigFileBytes, problem);
  if (!text) throw ConfigError(path + ": " + problem);
  return parse_config(*text, path, registry, overrides);
}

Config load_config(const std::optional<std::string>& path, const ConfigOverrides& overrides,
                   const ProbeRegistry& registry) {
  if (path) return load_config_file(*path, registry, overrides);
  if (!overrides.profiles.empty()) return parse_config("", "<command line>", registry, overrides);
  return parse_config(embedded_default_config(), std::string(kEmbeddedConfigName), registry, overrides);
}

std::optional<std::string> listen_address_problem(std::string_view listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos) return "no :port";
  const std::string_view host = listen.substr(0, colon);
  const std::string_view port = listen.substr(colon + 1);
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(std::string(port)) > 65535) return "port must be 0 to 65535";
  // CivetWeb reads a port with a leading zero as octal: ":0100" would listen on 64.
  if (port.size() > 1 && port.front() == '0') return "port must be 0 to 65535, without leading zeros";
  if (host.empty()) return std::nullopt;  // every interface
  boost::system::error_code error;
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) return "an IPv6 address goes in brackets, e.g. [::1]:9470";
    const std::string inner(host.substr(1, host.size() - 2));
    boost::asio::ip::make_address_v6(inner, error);
    if (error) return "\"" + inner + "\" is not an IPv6 address";
    return std::nullopt;
  }
  if (host.find(':') != std::string_view::npos) return "an IPv6 address goes in brackets, e.g. [::1]:9470";
  if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
    boost::asio::ip::make_address_v4(std::string(host), error);
    if (error) return "\"" + std::string(host) + "\" is not an IPv4 address";
    return std::nullopt;
  }
  try {
    parse_host_target(host);  // the DNS name rules; the server resolves it when it starts
  } catch (const std::invalid_argument& e) {
    return "host \"" + std::string(host) + "\": " + e.what();
  }
  return std::nullopt;
}

std::pair<std::string, std::string> parse_var_assignment(std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0)
    throw ConfigError("--var " + std::string(text) + ": expected NAME=VALUE, e.g. --var sql_host=illiad-db.example.edu");
  return {std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
}

}  // namespace connectivity

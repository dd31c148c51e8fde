#include "agent/status.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace connectivity {

namespace {

// Key names that hold a secret wherever they appear in a probe's options. A `*_file` key holds
// a path to one, which an admin needs to see and is not secret itself.
bool names_a_secret(std::string_view key) {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.size() > 5 && lower.ends_with("_file")) return false;
  for (std::string_view word : {"password", "passwd", "secret", "token", "key", "authorization", "cookie", "credential"})
    if (lower.find(word) != std::string::npos) return true;
  return false;
}

void mask(toml::node& node) {
  if (auto* table = node.as_table()) {
    std::vector<std::string> secrets;
    for (auto&& [key, value] : *table) {
      if (names_a_secret(key.str())) secrets.emplace_back(key.str());
      else mask(value);
    }
    for (const auto& key : secrets) table->insert_or_assign(key, "<masked>");
  } else if (auto* array = node.as_array()) {
    for (auto& element : *array) mask(element);
  }
}

// A configured check as the store holds it, with its config.
CheckStatus from_series(const CheckSeries& series) {
  CheckStatus status;
  const CheckConfig& config = *series.config;
  status.name = config.name;
  status.probe = std::string(series.kind->name);
  status.target = config.target.to_string();
  status.labels = config.labels;
  status.kind = series.kind;
  status.required = config.required;
  status.run_from = config.run_from;
  for (const auto& warning : config.warnings) status.warnings.push_back(warning.message);
  status.phase_names.assign(series.kind->phases.begin(), series.kind->phases.end());
  status.settings = CheckStatus::Settings{
      .interval_seconds = std::chrono::duration<double>(config.interval).count(),
      .timeout_seconds = std::chrono::duration<double>(config.timeout).count(),
      .confirm_runs = config.confirm_runs,
      .confirm_delay_seconds = std::chrono::duration<double>(config.confirm_delay).count(),
      .options = masked_options(config.options_text)};
  return status;
}

CheckStatus from_skipped(const SkippedCheck& skipped) {
  CheckStatus status;
  status.name = skipped.name;
  status.probe = skipped.probe;
  status.target = skipped.target;
  status.required = skipped.required;
  status.labels = skipped.labels;
  status.run_from = skipped.run_from;
  status.missing_vars = skipped.missing_vars;
  status.state = CheckState::skipped;
  return status;
}

void fill_from_series(CheckStatus& status, const CheckSeries& series, bool with_history, double now) {
  if (!series.has_run) return;
  status.state = series.up ? CheckState::up : CheckState::down;
  status.reason = series.last_reason;
  status.detail = series.last_detail;
  status.facts = series.last_facts;
  status.seconds = series.last_seconds;
  for (std::size_t i = 0; i < series.last_phase_seconds.size() && i < series.kind->phases.size(); ++i)
    if (series.last_phase_seconds[i] > 0)
      status.phases.push_back({series.kind->phases[i], std::chrono::duration_cast<Clock::duration>(
                                                           std::chrono::duration<double>(series.last_phase_seconds[i]))});
  status.last_run_at = series.last_run_timestamp;
  status.last_success_at = series.last_success_timestamp;
  status.since = series.state_since;
  if (series.history) {
    status.last_hour = series.history->last_hour(now);
    if (with_history) status.recent = series.history->recent(series.reasons);
  }
}

std::string host_of(const CheckStatus& status) {
  std::string target = status.target;
  if (auto scheme = target.find("://"); scheme != std::string::npos) target = target.substr(scheme + 3);
  if (auto slash = target.find('/'); slash != std::string::npos) target.resize(slash);
  if (!target.empty() && target.front() == '[') {
    const auto close = target.find(']');
    return close == std::string::npos ? target : target.substr(1, close - 1);
  }
  const auto colon = target.rfind(':');
  return colon == std::string::npos ? target : target.substr(0, colon);
}

std::string port_of(const CheckStatus& status) {
  std::string target = status.target;
  if (auto scheme = target.find("://"); scheme != std::string::npos) {
    const bool https = target.starts_with("https");
    target = target.substr(scheme + 3);
    if (auto slash = target.find('/'); slash != std::string::npos) target.resize(slash);
    const auto colon = target.rfind(':');
    if (colon == std::string::npos || (target.front() == '[' && target.back() == ']')) return https ? "443" : "80";
    return target.substr(colon + 1);
  }
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || target.back() == ']') return "";
  return target.substr(colon + 1);
}

}  // namespace

std::string_view state_name(CheckState state) {
  switch (state) {
    case CheckState::up: return "up";
    case CheckState::down: return "down";
    case CheckState::pending: return "pending";
    case CheckState::skipped: return "skipped";
  }
  return "pending";
}

std::string_view CheckStatus::label(std::string_view name) const {
  for (const auto& [label_name, value] : labels)
    if (label_name == name) return value;
  return {};
}

std::string CheckStatus::detail_line(std::chrono::system_clock::time_point now, bool with_warnings) const {
  if (state == CheckState::skipped) {
    std::string vars;
    for (const auto& var : missing_vars) vars += (vars.empty() ? "" : ", ") + var;
    return "not run: set " + vars;
  }
  const std::string learned = summary_line(describe_facts(kind, facts, now));
  std::string line;
  if (state != CheckState::down || learned.empty()) line = detail.empty() ? learned : detail;
  else line = detail.empty() ? learned : detail + "; " + learned;
  if (with_warnings)
    for (const auto& warning : warnings) line += (line.empty() ? "warning: " : "; warning: ") + warning;
  return line;
}

std::string CheckStatus::failure_sentence() const {
  if (state != CheckState::down) return {};
  const std::string host = host_of(*this);
  const std::string port = port_of(*this);
  const std::string on_port = port.empty() ? "" : " on port " + port;
  const std::string where = port.empty() ? host : host + " port " + port;
  if (reason == reason::refused) return host + " refused the connection" + on_port;
  if (reason == reason::timeout) return "no answer from " + where + " in time";
  if (reason == reason::dns_error) return "the name " + host + " could not be resolved";
  if (reason == reason::unreachable) return "no route to " + host;
  if (reason == reason::reset) return host + " reset the connection" + on_port;
  if (reason == reason::resource_exhausted) return "this agent ran out of sockets or buffers (not the target's fault)";
  if (reason == "tls_error") return "the TLS handshake with " + where + " failed";
  if (reason == "cert_invalid") return "the certificate of " + where + " was refused";
  if (reason == reason::protocol_error) return where + " answered, but not as a " + probe + " server should";
  if (reason == "http_status") return "the web server at " + host + " answered with an unexpected status";
  if (reason == "auth_failed") return host + " refused the agent's credentials";
  std::string words(reason);
  std::replace(words.begin(), words.end(), '_', ' ');
  return where + ": " + words;
}

std::vector<CheckStatus> collect_check_status(const ResultsStore& store, const std::vector<SkippedCheck>& skipped,
                                              bool with_history) {
  std::vector<CheckStatus> out;
  out.reserve(store.size() + skipped.size());
  const double now = to_unix_seconds(std::chrono::system_clock::now());
  store.visit([&](const CheckSeries& series) {
    out.push_back(from_series(series));
    fill_from_series(out.back(), series, with_history, now);
  });
  for (const auto& check : skipped) out.push_back(from_skipped(check));
  return out;
}

std::optional<CheckStatus> collect_one_check_status(const ResultsStore& store, const std::vector<SkippedCheck>& skipped,
                                                    std::string_view name) {
  std::optional<CheckStatus> found;
  const double now = to_unix_seconds(std::chrono::system_clock::now());
  store.visit_check(name, [&](const CheckSeries& series) {
    found = from_series(series);
    fill_from_series(*found, series, true, now);
  });
  if (found) return found;
  for (const auto& check : skipped)
    if (check.name == name) return from_skipped(check);
  return std::nullopt;
}

std::string masked_options(std::string_view options_toml) {
  if (options_toml.empty()) return {};
  try {
    toml::table table = toml::parse(options_toml);
    mask(table);
    std::ostringstream text;
    text << toml::toml_formatter(table);
    return text.str();
  } catch (const std::exception&) {
    return "<options not shown>";  // the config loader wrote it: not reached
  }
}

}  // namespace connectivity

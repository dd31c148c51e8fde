#include "exporters/status_json.h"

#include "probes/utc_time.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <sstream>

namespace connectivity {

namespace {

// Microsecond resolution is all a latency needs, and keeps the JSON short.
double rounded(double seconds) { return std::round(seconds * 1e6) / 1e6; }

toml::table labels_json(const Labels& labels) {
  toml::table out;
  for (const auto& [name, value] : labels) out.insert_or_assign(name, value);
  return out;
}

toml::array strings_json(const std::vector<std::string>& items) {
  toml::array out;
  for (const auto& item : items) out.push_back(item);
  return out;
}

toml::table check_json(const CheckStatus& check, std::chrono::system_clock::time_point now, bool whole) {
  toml::table out{{"name", check.name},
                  {"probe", check.probe},
                  {"target", check.target},
                  {"required", check.required},
                  {"labels", labels_json(check.labels)},
                  {"run_from", strings_json(check.run_from)},
                  {"result", std::string(result_name(check.state))},
                  {"state", std::string(state_name(check.state))},
                  {"detail", check.detail_line(now)}};
  if (!check.warnings.empty()) out.insert("warnings", strings_json(check.warnings));
  if (check.state == CheckState::skipped) {
    out.insert("missing_vars", strings_json(check.missing_vars));
    return out;
  }
  if (check.state == CheckState::pending) return out;
  out.insert("reason", std::string(check.reason));
  out.insert("latency_seconds", rounded(check.seconds));
  toml::array phases;
  for (const auto& phase : check.phases)
    phases.push_back(toml::table{{"phase", std::string(phase.name)},
                                 {"seconds", rounded(std::chrono::duration<double>(phase.took).count())}});
  out.insert("phases", std::move(phases));
  toml::array facts;
  for (const auto& fact : check.facts)
    facts.push_back(toml::table{{"metric", std::string(fact.metric)}, {"labels", labels_json(fact.labels)}, {"value", fact.value}});
  out.insert("facts", std::move(facts));
  const FactWords words = describe_facts(check.kind, check.facts, now);
  toml::array details;
  for (const auto& [heading, text] : words.details) details.push_back(toml::table{{"heading", heading}, {"text", text}});
  out.insert("words", toml::table{{"summary", summary_line(words)}, {"details", std::move(details)}});
  if (const std::string sentence = check.failure_sentence(); !sentence.empty()) out.insert("failure", sentence);
  if (check.last_run_at > 0) out.insert("last_run_at", rfc3339(check.last_run_at));
  if (check.last_success_at > 0) out.insert("last_success_at", rfc3339(check.last_success_at));
  if (check.since > 0) out.insert("since", rfc3339(check.since));
  if (!check.last_hour.empty()) {
    toml::array minutes;
    for (const auto& minute : check.last_hour)
      minutes.push_back(toml::table{{"minute", rfc3339(minute.start)},
                                    {"worst_seconds", rounded(minute.worst_seconds)},
                                    {"runs", static_cast<std::int64_t>(minute.runs)},
                                    {"failures", static_cast<std::int64_t>(minute.failures)}});
    out.insert("last_hour", std::move(minutes));
  }
  if (!whole) return out;
  if (check.settings) {
    out.insert("settings", toml::table{{"interval_seconds", check.settings->interval_seconds},
                                       {"timeout_seconds", check.settings->timeout_seconds},
                                       {"confirm_runs", static_cast<std::int64_t>(check.settings->confirm_runs)},
                                       {"confirm_delay_seconds", check.settings->confirm_delay_seconds},
                                       {"options", check.settings->options}});
  }
  toml::array runs;
  for (const auto& run : check.recent) {
    toml::array run_phases;
    for (std::size_t i = 0; i < run.phase_seconds.size() && i < check.phase_names.size(); ++i)
      if (run.phase_seconds[i] > 0)
        run_phases.push_back(toml::table{{"phase", std::string(check.phase_names[i])}, {"seconds", rounded(run.phase_seconds[i])}});
    runs.push_back(toml::table{{"finished_at", rfc3339(run.finished_at)},
                               {"result", run.reason == reason::success ? "pass" : "fail"},
                               {"reason", std::string(run.reason)},
                               {"seconds", rounded(run.seconds)},
                               {"set_state", run.set_state},
                               {"phases", std::move(run_phases)},
                               {"detail", run.detail}});
  }
  out.insert("recent_runs", std::move(runs));
  return out;
}

toml::table inbound_json(const InboundSnapshot& watch) {
  toml::array sources;
  for (std::size_t i = 0; i < watch.sources.size(); ++i) {
    const auto& source = watch.sources[i];
    toml::table entry{{"source", source.source},
                      {"up", i < watch.up.size() && watch.up[i]},
                      {"syn", static_cast<std::int64_t>(source.syn)},
                      {"answered", static_cast<std::int64_t>(source.answered)},
                      {"rejected", static_cast<std::int64_t>(source.rejected)}};
    if (source.last_seen) entry.insert("last_seen", rfc3339(to_unix_seconds(*source.last_seen)));
    if (source.last_answered) entry.insert("last_answered", rfc3339(to_unix_seconds(*source.last_answered)));
    sources.push_back(std::move(entry));
  }
  toml::table out{{"name", watch.name},
                  {"port", static_cast<std::int64_t>(watch.port)},
                  {"labels", labels_json(watch.labels)},
                  {"running", watch.running},
                  {"unexpected_syn", static_cast<std::int64_t>(watch.unexpected_syn)},
                  {"sources", std::move(sources)}};
  if (!watch.running) out.insert("why_not_running", watch.why_not_running);
  return out;
}

std::string as_json(const toml::table& root) {
  std::ostringstream out;
  out << toml::json_formatter(root, toml::json_formatter::default_flags | toml::format_flags::relaxed_float_precision |
                                        toml::format_flags::terse_key_value_pairs)
      << '\n';
  return out.str();
}

}  // namespace

std::string rfc3339(double unix_seconds) {
  const std::tm parts = utc_calendar(static_cast<std::time_t>(std::floor(unix_seconds)));
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string_view result_name(CheckState state) {
  switch (state) {
    case CheckState::up: return "pass";
    case CheckState::down: return "fail";
    case CheckState::pending: return "pending";
    case CheckState::skipped: return "skipped";
  }
  return "pending";
}

int exit_code_of(const std::vector<CheckStatus>& checks) {
  return std::any_of(checks.begin(), checks.end(), [](const CheckStatus& c) { return c.required && c.state == CheckState::down; })
             ? 1
             : 0;
}

std::string render_checks_json(const ChecksDocument& document) {
  const auto now = document.generated_at.value_or(std::chrono::system_clock::now());
  const std::vector<CheckStatus> none;
  const auto& checks = document.checks ? *document.checks : none;
  toml::array list;
  std::int64_t up = 0, down = 0, down_required = 0, skipped = 0, pending = 0;
  for (const auto& check : checks) {
    list.push_back(check_json(check, now, false));
    switch (check.state) {
      case CheckState::up: ++up; break;
      case CheckState::down: ++down; down_required += check.required ? 1 : 0; break;
      case CheckState::skipped: ++skipped; break;
      case CheckState::pending: ++pending; break;
    }
  }
  toml::table summary{{"checks", static_cast<std::int64_t>(checks.size())},
                      {"passed", up},
                      {"failed", down},
                      {"failed_required", down_required},
                      {"skipped", skipped}};
  if (document.generated_at) summary.insert("pending", pending);
  toml::table root{{"schema", std::string(kChecksSchema)},
                   {"agent_version", std::string(document.agent_version)},
                   {"exit_code", exit_code_of(checks)},
                   {"summary", std::move(summary)},
                   {"checks", std::move(list)}};
  if (document.started_at) root.insert("started_at", rfc3339(to_unix_seconds(*document.started_at)));
  if (document.took_seconds) root.insert("took_seconds", rounded(*document.took_seconds));
  if (document.generated_at) root.insert("generated_at", rfc3339(to_unix_seconds(*document.generated_at)));
  if (document.inbound) {
    toml::array inbound;
    for (const auto& watch : *document.inbound) inbound.push_back(inbound_json(watch));
    root.insert("inbound", std::move(inbound));
  }
  return as_json(root);
}

std::string render_check_json(const CheckStatus& check, std::string_view agent_version,
                              std::chrono::system_clock::time_point now) {
  return as_json(toml::table{{"schema", std::string(kChecksSchema)},
                             {"agent_version", std::string(agent_version)},
                             {"generated_at", rfc3339(to_unix_seconds(now))},
                             {"check", check_json(check, now, true)}});
}

}  // namespace connectivity

// What the status page and the JSON API show (exporters/status_page.h): every check, skipped
// check and inbound watch of the running config with its state, copied out of the results
// store under its lock and rendered without it. `check` builds the same records from its one
// round of runs, so the command and the API share one JSON form.
#pragma once

#include "agent/config.h"
#include "agent/results.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

enum class CheckState { up, down, pending, skipped };
std::string_view state_name(CheckState state);  // "up", "down", "pending" (not run yet), "skipped"

struct CheckStatus {
  std::string name;
  std::string probe;
  std::string target;
  const ProbeKind* kind = nullptr;  // null for a skipped check
  bool required = true;
  Labels labels;  // the configured ones (vendor, system, direction, doc, vantage, ...)
  std::vector<std::string> run_from;
  std::vector<std::string> warnings;
  std::vector<std::string> missing_vars;  // skipped: the variables to set

  CheckState state = CheckState::pending;
  // Of the last run that set the state (up and down only).
  std::string_view reason;
  std::string detail;
  std::vector<Fact> facts;
  std::vector<PhaseTiming> phases;
  double seconds = 0;
  // Unix seconds; 0 when not known. `since`: when the state last changed, as this agent saw it.
  double last_run_at = 0;
  double last_success_at = 0;
  double since = 0;

  // The running agent's only (`check` runs each once).
  std::vector<RunHistory::Run> recent;     // newest first
  std::vector<RunHistory::Minute> last_hour;
  std::vector<std::string_view> phase_names;  // what recent[].phase_seconds are parallel to
  struct Settings {
    double interval_seconds = 0;
    double timeout_seconds = 0;
    unsigned confirm_runs = 0;
    double confirm_delay_seconds = 0;
    std::string options;  // the probe options as TOML, secrets masked
  };
  std::optional<Settings> settings;

  // The label `name`'s value, or "".
  std::string_view label(std::string_view name) const;
  // One line for people: what failed (the run's detail) and what the run learned, in the kind's
  // words ("HTTP 200, cert expires in 12 days"), then any config warning; for a skipped check,
  // the variables to set.
  std::string detail_line(std::chrono::system_clock::time_point now, bool with_warnings = true) const;
  // The failure in plain words, naming the target: "sql.example.edu refused the connection on
  // port 1433". Empty unless down.
  std::string failure_sentence() const;
};

struct StatusSnapshot {
  std::chrono::system_clock::time_point taken_at;
  std::vector<CheckStatus> checks;  // by name; skipped checks after the rest
  std::vector<InboundSnapshot> inbound;
  bool lifecycle = false;  // whether "run now" is served
};

// Every configured check as `store` holds it (in the store's order: by name), then `skipped`.
std::vector<CheckStatus> collect_check_status(const ResultsStore& store, const std::vector<SkippedCheck>& skipped,
                                              bool with_history);
// The same for the one check named `name`; nullopt when there is none.
std::optional<CheckStatus> collect_one_check_status(const ResultsStore& store, const std::vector<SkippedCheck>& skipped,
                                                    std::string_view name);

// The options sub-table as TOML with the value of every key that names a secret (password,
// secret, token, key, authorization, cookie, credential; not a *_file path to one) replaced.
std::string masked_options(std::string_view options_toml);

}  // namespace connectivity

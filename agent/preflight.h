// `connectivity-agent check`: every check of a config (or of profiles) run once, concurrently,
// with the agent's own config loader and probe runner, reported as a table or as JSON. For
// campus IT after a firewall change: what is open now, and what is still closed.
#pragma once

#include "agent/config.h"
#include "agent/results.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace connectivity {

enum class Outcome { pass, fail, skipped };

struct PreflightEntry {
  std::string name;
  std::string probe;
  std::string target;
  const ProbeKind* kind = nullptr;  // null for a skipped check
  bool required = true;
  Labels labels;  // the check's configured labels (vendor, system, direction, doc, ...)
  Outcome outcome = Outcome::skipped;
  RunRecord run;                          // pass and fail
  std::vector<std::string> missing_vars;  // skipped: the variables to set
  std::vector<std::string> warnings;      // the check's config warnings (a password sent in clear)
  std::vector<std::string> run_from;      // the vantage roles the check is meant to run from
};

struct PreflightReport {
  std::vector<PreflightEntry> entries;  // in config order
  std::chrono::system_clock::time_point started_at;
  Clock::duration took{};

  std::size_t count(Outcome outcome) const;
  std::size_t failed_required() const;
  // 0 when every required check passed, 1 when one failed.
  int exit_code() const;
};

// Runs every check once, at most `config.agent.max_concurrent_probes` at a time, each cut off at
// its own timeout. `on_done` (optional) hears of each run as it ends, on the calling thread.
PreflightReport run_preflight(const Config& config, bool only_required,
                              const std::function<void(const PreflightEntry&, std::size_t done, std::size_t total)>& on_done = {});

std::string render_table(const PreflightReport& report, bool colour);
// Stable, versioned JSON (`"schema": "connectivity-agent-check/1"`) for scripts.
std::string render_json(const PreflightReport& report, std::string_view agent_version);

enum class ReportFormat { table, json };

struct CheckCommandOptions {
  std::optional<std::string> config_path;  // none: the --profile list, or the embedded default
  ConfigOverrides overrides;
  ReportFormat format = ReportFormat::table;
  bool only_required = false;
};

// 0 all required checks pass, 1 a required check failed, 2 the config is invalid.
int check_command(const CheckCommandOptions& options, std::string_view agent_version);

}  // namespace connectivity

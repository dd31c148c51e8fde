#include "agent/preflight.h"

#include "agent/log.h"
#include "agent/scheduler.h"
#include "probes/resolver.h"
#include "probes/utc_time.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#if defined(_WIN32)
#include <io.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <sstream>

namespace connectivity {

namespace {

std::string label_of(const Labels& labels, std::string_view name) {
  for (const auto& [label, value] : labels)
    if (label == name) return value;
  return {};
}

std::string utc_text(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  const std::tm parts = utc_calendar(seconds);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::pass: return "pass";
    case Outcome::fail: return "fail";
    case Outcome::skipped: return "skipped";
  }
  return "skipped";
}

// What the table's DETAIL column and the JSON's "detail" say: the failure, what was learned.
std::string detail_of(const PreflightEntry& entry, std::chrono::system_clock::time_point now) {
  if (entry.outcome == Outcome::skipped) {
    std::string vars;
    for (const auto& var : entry.missing_vars) vars += (vars.empty() ? "" : ", ") + var;
    return "not run: set " + vars;
  }
  const std::string learned = summary_line(describe_facts(entry.kind, entry.run.facts, now));
  std::string detail;
  if (entry.outcome == Outcome::pass || learned.empty()) detail = entry.run.detail.empty() ? learned : entry.run.detail;
  else detail = entry.run.detail.empty() ? learned : entry.run.detail + "; " + learned;
  for (const auto& warning : entry.warnings) detail += (detail.empty() ? "warning: " : "; warning: ") + warning;
  return detail;
}

std::string latency_text(Clock::duration took) {
  const double ms = std::chrono::duration<double, std::milli>(took).count();
  char text[32];
  if (ms >= 1000) std::snprintf(text, sizeof text, "%.2f s", ms / 1000);
  else std::snprintf(text, sizeof text, "%.1f ms", ms);
  return text;
}

// Microsecond resolution is all a latency needs, and keeps the JSON short.
double rounded_seconds(Clock::duration took) {
  return std::round(std::chrono::duration<double>(took).count() * 1e6) / 1e6;
}

// Whether `stream` is a terminal that shows the ANSI escapes of colours and the progress line.
// A Windows console shows them only once asked to (virtual terminal processing, Windows 10's);
// a file, a pipe, or on Windows a terminal other than the console (mintty) shows none.
bool ansi_terminal(std::FILE* stream) {
#if defined(_WIN32)
  const auto console = reinterpret_cast<HANDLE>(_get_osfhandle(_fileno(stream)));
  DWORD mode = 0;
  if (GetConsoleMode(console, &mode) == 0) return false;
  return (mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0 ||
         SetConsoleMode(console, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0;
#else
  return isatty(fileno(stream)) != 0;
#endif
}

bool colour_wanted() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start, no setenv anywhere
  const char* no_colour = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");  // NOLINT(concurrency-mt-unsafe)
  return ansi_terminal(stdout) && (!no_colour || !*no_colour) && !(term && std::string_view(term) == "dumb");
}

asio::awaitable<void> run_in_turn(const CheckConfig& check, Resolver& resolver, ConcurrencyLimit& limit,
                                  PreflightEntry& entry) {
  if (!co_await limit.acquire()) co_return;
  struct Release {
    ConcurrencyLimit& limit;
    ~Release() { limit.release(); }
  } release{limit};
  entry.run = co_await run_probe(check, resolver);
  entry.outcome = entry.run.reason == reason::success ? Outcome::pass : Outcome::fail;
}

}  // namespace

std::size_t PreflightReport::count(Outcome outcome) const {
  return static_cast<std::size_t>(std::count_if(entries.begin(), entries.end(), [&](const auto& e) { return e.outcome == outcome; }));
}

std::size_t PreflightReport::failed_required() const {
  return static_cast<std::size_t>(std::count_if(entries.begin(), entries.end(),
                                                [](const auto& e) { return e.outcome == Outcome::fail && e.required; }));
}

int PreflightReport::exit_code() const { return failed_required() > 0 ? 1 : 0; }

PreflightReport run_preflight(const Config& config, bool only_required,
                              const std::function<void(const PreflightEntry&, std::size_t, std::size_t)>& on_done) {
  PreflightReport report;
  report.started_at = std::chrono::system_clock::now();
  const auto started = Clock::now();

  std::vector<const CheckConfig*> to_run;
  for (const auto& check : config.checks)
    if (check.required || !only_required) to_run.push_back(&check);
  for (const auto* check : to_run) {
    PreflightEntry entry;
    entry.name = check->name;
    entry.probe = std::string(check->kind->name);
    entry.target = check->target.to_string();
    entry.kind = check->kind;
    entry.required = check->required;
    entry.labels = check->labels;
    entry.run_from = check->run_from;
    for (const auto& warning : check->warnings) entry.warnings.push_back(warning.message);
    report.entries.push_back(std::move(entry));
  }
  if (!only_required)
    for (const auto& skipped : config.skipped) {
      PreflightEntry entry;
      entry.name = skipped.name;
      entry.probe = skipped.probe;
      entry.target = skipped.target;
      entry.required = skipped.required;
      entry.labels = skipped.labels;
      entry.missing_vars = skipped.missing_vars;
      entry.run_from = skipped.run_from;
      report.entries.push_back(std::move(entry));
    }

  asio::io_context io;
  {
    // Declared after io: destroyed first, so a lookup answering late is dropped, not posted.
    Resolver resolver(config.agent.resolver_threads);
    ConcurrencyLimit limit(io.get_executor(), config.agent.max_concurrent_probes);
    std::size_t done = 0;
    for (std::size_t i = 0; i < to_run.size(); ++i)
      asio::co_spawn(io, run_in_turn(*to_run[i], resolver, limit, report.entries[i]), [&, i](const std::exception_ptr& failure) {
        // run_probe reports every network outcome as a result: an exception here is a bug,
        // and still a failed check rather than a row that claims it was skipped.
        if (failure) {
          report.entries[i].outcome = Outcome::fail;
          report.entries[i].run.reason = reason::error;
          report.entries[i].run.detail = "the check did not run to the end";
        }
        ++done;
        if (on_done) on_done(report.entries[i], done, to_run.size());
      });
    io.run();
  }
  report.took = Clock::now() - started;
  return report;
}

std::string render_table(const PreflightReport& report, bool colour) {
  // The detail is cut so rows stay rows; the JSON has it whole.
  constexpr std::size_t kDetailWidth = 60;
  const auto now = std::chrono::system_clock::now();
  struct Row {
    std::vector<std::string> cells;
    const char* colour = "";
  };
  std::vector<Row> rows;
  // FROM: where the check must start (its run_from roles), so a row failing from the wrong
  // host is read as such.
  rows.push_back({{"CHECK", "TARGET", "FROM", "DIRECTION", "RESULT", "REASON", "LATENCY", "DETAIL", "RULE"}});
  constexpr std::size_t kResultColumn = 4;
  for (const auto& entry : report.entries) {
    Row row;
    std::string result;
    switch (entry.outcome) {
      case Outcome::pass:
        result = "pass";
        row.colour = "\033[32m";
        break;
      case Outcome::fail:
        result = entry.required ? "FAIL" : "fail (optional)";
        row.colour = entry.required ? "\033[1;31m" : "\033[33m";
        break;
      case Outcome::skipped:
        result = "skipped";
        row.colour = "\033[2m";
        break;
    }
    std::string detail = detail_of(entry, now);
    if (detail.size() > kDetailWidth) detail = detail.substr(0, kDetailWidth - 3) + "...";
    const std::string direction = label_of(entry.labels, "direction");
    std::string from;
    for (const auto& role : entry.run_from) from += (from.empty() ? "" : ",") + role;
    row.cells = {entry.name,
                 entry.target,
                 from.empty() ? "-" : from,
                 direction.empty() ? "-" : direction,
                 result,
                 entry.outcome == Outcome::skipped ? "-" : std::string(entry.run.reason),
                 entry.outcome == Outcome::skipped ? "-" : latency_text(entry.run.total),
                 detail.empty() ? "-" : detail,
                 label_of(entry.labels, "doc")};
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> widths(rows.front().cells.size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.cells.size(); ++c) widths[c] = std::max(widths[c], row.cells[c].size());

  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.cells.size(); ++c) {
      std::string cell = row.cells[c];
      if (c + 1 < row.cells.size()) cell.resize(widths[c] + 2, ' ');  // the last column is not padded
      // Only the RESULT cell is coloured: the row stays readable with colour off.
      if (colour && c == kResultColumn && *row.colour) cell = row.colour + row.cells[c] + "\033[0m" + cell.substr(row.cells[c].size());
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
  const std::size_t failed = report.count(Outcome::fail);
  out << '\n'
      << report.entries.size() << " checks: " << report.count(Outcome::pass) << " passed, " << failed << " failed";
  if (failed) out << " (" << report.failed_required() << " required)";
  out << ", " << report.count(Outcome::skipped) << " skipped, in " << latency_text(report.took) << ". ";
  out << (report.exit_code() == 0 ? "Every required check passed." : "A required check failed: exit 1.") << '\n';
  return out.str();
}

std::string render_json(const PreflightReport& report, std::string_view agent_version) {
  const auto now = std::chrono::system_clock::now();
  toml::array checks;
  for (const auto& entry : report.entries) {
    toml::table labels;
    for (const auto& [name, value] : entry.labels) labels.insert_or_assign(name, value);
    toml::array run_from;
    for (const auto& role : entry.run_from) run_from.push_back(role);
    toml::table check{{"name", entry.name},
                      {"probe", entry.probe},
                      {"target", entry.target},
                      {"required", entry.required},
                      {"labels", std::move(labels)},
                      {"run_from", std::move(run_from)},
                      {"result", std::string(outcome_name(entry.outcome))},
                      {"detail", detail_of(entry, now)}};
    if (entry.outcome == Outcome::skipped) {
      toml::array missing;
      for (const auto& var : entry.missing_vars) missing.push_back(var);
      check.insert("missing_vars", std::move(missing));
    } else {
      check.insert("reason", std::string(entry.run.reason));
      check.insert("latency_seconds", rounded_seconds(entry.run.total));
      toml::array phases;
      for (const auto& phase : entry.run.phases)
        phases.push_back(toml::table{{"phase", std::string(phase.name)}, {"seconds", rounded_seconds(phase.took)}});
      check.insert("phases", std::move(phases));
      toml::array facts;
      for (const auto& fact : entry.run.facts) {
        toml::table fact_labels;
        for (const auto& [name, value] : fact.labels) fact_labels.insert_or_assign(name, value);
        facts.push_back(toml::table{{"metric", std::string(fact.metric)}, {"labels", std::move(fact_labels)}, {"value", fact.value}});
      }
      check.insert("facts", std::move(facts));
    }
    checks.push_back(std::move(check));
  }
  toml::table summary{{"checks", static_cast<std::int64_t>(report.entries.size())},
                      {"passed", static_cast<std::int64_t>(report.count(Outcome::pass))},
                      {"failed", static_cast<std::int64_t>(report.count(Outcome::fail))},
                      {"failed_required", static_cast<std::int64_t>(report.failed_required())},
                      {"skipped", static_cast<std::int64_t>(report.count(Outcome::skipped))}};
  toml::table root{{"schema", "connectivity-agent-check/1"},
                   {"agent_version", std::string(agent_version)},
                   {"started_at", utc_text(report.started_at)},
                   {"took_seconds", rounded_seconds(report.took)},
                   {"exit_code", report.exit_code()},
                   {"summary", std::move(summary)},
                   {"checks", std::move(checks)}};
  std::ostringstream out;
  out << toml::json_formatter(root, toml::json_formatter::default_flags | toml::format_flags::relaxed_float_precision |
                                         toml::format_flags::terse_key_value_pairs)
      << '\n';
  return out.str();
}

int check_command(const CheckCommandOptions& options, std::string_view agent_version) {
  Config config;
  try {
    config = load_config(options.config_path, options.overrides);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  // A progress line while checks run, only where a person watches (stderr is a terminal).
  const bool live = ansi_terminal(stderr);
  std::function<void(const PreflightEntry&, std::size_t, std::size_t)> progress;
  if (live)
    progress = [](const PreflightEntry& entry, std::size_t done, std::size_t total) {
      std::fprintf(stderr, "\r\033[K[%zu/%zu] %s: %s", done, total, entry.name.c_str(),
                   entry.outcome == Outcome::pass ? "pass" : std::string(entry.run.reason).c_str());
      std::fflush(stderr);
    };
  if (live) std::fprintf(stderr, "running %zu checks...", config.checks.size());
  const PreflightReport report = run_preflight(config, options.only_required, progress);
  if (live) std::fprintf(stderr, "\r\033[K");
  const std::string text =
      options.format == ReportFormat::json ? render_json(report, agent_version) : render_table(report, colour_wanted());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return report.exit_code();
}

}  // namespace connectivity

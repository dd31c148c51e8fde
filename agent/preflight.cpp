#include "agent/preflight.h"

#include "agent/log.h"
#include "agent/scheduler.h"
#include "agent/status.h"
#include "exporters/status_json.h"
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

// An entry as the status records the JSON and the DETAIL column are made from: one form for
// `check` and the running agent's API.
CheckStatus status_of(const PreflightEntry& entry) {
  CheckStatus status;
  status.name = entry.name;
  status.probe = entry.probe;
  status.target = entry.target;
  status.kind = entry.kind;
  status.required = entry.required;
  status.labels = entry.labels;
  status.run_from = entry.run_from;
  status.warnings = entry.warnings;
  status.missing_vars = entry.missing_vars;
  status.state = entry.outcome == Outcome::pass ? CheckState::up
                 : entry.outcome == Outcome::fail ? CheckState::down
                                                  : CheckState::skipped;
  if (status.state == CheckState::skipped) return status;
  status.reason = entry.run.reason;
  status.detail = entry.run.detail;
  status.facts = entry.run.facts;
  status.phases = entry.run.phases;
  status.seconds = std::chrono::duration<double>(entry.run.total).count();
  return status;
}

std::string detail_of(const PreflightEntry& entry, std::chrono::system_clock::time_point now) {
  return status_of(entry).detail_line(now);
}

std::string latency_text(Clock::duration took) {
  const double ms = std::chrono::duration<double, std::milli>(took).count();
  char text[32];
  if (ms >= 1000) std::snprintf(text, sizeof text, "%.2f s", ms / 1000);
  else std::snprintf(text, sizeof text, "%.1f ms", ms);
  return text;
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
  std::vector<CheckStatus> checks;
  checks.reserve(report.entries.size());
  for (const auto& entry : report.entries) checks.push_back(status_of(entry));
  return render_checks_json({.agent_version = agent_version,
                             .checks = &checks,
                             .started_at = report.started_at,
                             .took_seconds = std::chrono::duration<double>(report.took).count()});
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

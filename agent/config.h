// The agent's configuration: TOML in, a validated Config out, or a ConfigError naming
// file:line:col and the key.
#pragma once

#include "probes/probe.h"
#include "probes/config_table.h"
#include "probes/inbound/inbound_watch.h"
#include "probes/registry.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connectivity {

// Four re-runs: at 5% random connection loss a check falsely goes down in 0.05^5 of its runs,
// about once in 18 months at a 15 s interval; and they end within the interval (15 s) after a
// 5 s timeout: 5 + 4 * 1 + 5 s. The most, 10, keeps a failing check's burst of re-runs small.
inline constexpr unsigned kDefaultConfirmRuns = 4;
inline constexpr std::int64_t kMostConfirmRuns = 10;

struct CheckConfig {
  std::string name;
  const ProbeKind* kind = nullptr;
  Target target;
  std::chrono::milliseconds interval{};
  std::chrono::milliseconds timeout{};
  Labels labels;  // the agent's global labels merged with the check's own (the check's win)
  bool required = true;
  // A failed run of a check that was up is re-run `confirm_runs` times before the check is
  // reported down, the k-th re-run starting k * `confirm_delay` after the failure (they
  // overlap); one that succeeds keeps the check up. A lost connection does not flip
  // connectivity_up or page anyone: with independent losses at rate p, a false "down" takes
  // p^(confirm_runs + 1) (README, "Alerting"). 0: the first failure is reported.
  unsigned confirm_runs = kDefaultConfirmRuns;
  std::chrono::milliseconds confirm_delay{std::chrono::seconds(1)};
  std::shared_ptr<const Probe> probe;
  // The options sub-table as TOML text: a changed option restarts the check's schedule.
  std::string options_text;
  // What its probe kind allows but warns about (a password sent in clear): logged at each load.
  std::vector<ConfigWarning> warnings;
  // The vantage roles the check is meant to run from (agent/vantage.h); empty for a site's own
  // check that names none.
  std::vector<std::string> run_from;

  // What makes two checks "the same series": the exported label set.
  std::string series_key() const;
  // Same series and same schedule and options: a reload leaves such a check running as is.
  bool same_schedule_as(const CheckConfig& other) const;
  // How many confirmation re-runs can end before the next scheduled run when the failed run
  // ended `elapsed` after it was due (re-run k starts k * confirm_delay after the failure and
  // may take the whole timeout); at most confirm_runs.
  unsigned confirm_runs_that_fit(std::chrono::steady_clock::duration elapsed) const;
};

// The latency histogram's bucket bounds unless [agent] latency_buckets says otherwise. Two, so a
// check stays under 15 series: a tenth of a second (a path in good health, even across a
// continent) and a second (slow enough for a person to notice). A site that wants quantiles
// sets finer ones; each bound is one more series per check.
inline constexpr double kDefaultLatencyBuckets[] = {0.1, 1};
inline constexpr std::size_t kMostLatencyBuckets = 40;

struct AgentSettings {
  // Where /metrics is served: one address or several (IPv4 and IPv6, say).
  std::vector<std::string> listen{"0.0.0.0:9470"};
  // The exporters' web config (TLS, basic auth, headers): [agent] web_config_file, resolved
  // against the config's folder; --web.config.file overrides it. Empty: plain HTTP, no auth.
  std::string web_config_file;
  // 15 s: with the four confirmation re-runs, a 15 s scrape, a 5 s rule evaluation and
  // Alertmanager's 5 s group timers, a hard outage pages within 60 s (README, "Alerting").
  std::chrono::milliseconds interval{std::chrono::seconds(15)};
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};
  unsigned confirm_runs = kDefaultConfirmRuns;
  std::chrono::milliseconds confirm_delay{std::chrono::seconds(1)};
  Labels labels;
  std::size_t max_concurrent_probes = 256;
  std::size_t resolver_threads = 4;
  // A config that runs no check and no inbound watch is an error unless this says it is meant:
  // a reload onto an empty or wrong file must not silently drop every check.
  bool allow_empty = false;
  // The roles this agent runs as ([agent] roles, or --role over it): only the checks that run
  // from one of them are loaded. Empty: every check.
  std::vector<std::string> roles;
  // The `vantage` label on every series of a check: [agent] vantage, else derived from the roles
  // (agent/vantage.h). Also in `labels`, which every check's labels merge.
  std::string vantage;
  // connectivity_probe_latency_seconds' bucket bounds, seconds, ascending. Empty: +Inf only (the
  // histogram's sum and count still give the mean).
  std::vector<double> latency_buckets{std::begin(kDefaultLatencyBuckets), std::end(kDefaultLatencyBuckets)};
};

// The bounds of the [agent] keys. resolver_threads: each thread blocks in one getaddrinfo;
// 64 lookups at once is far beyond what thousands of checks need, while 100000 threads exhaust
// the process before it starts. max_concurrent_probes: each probe holds a socket and an
// ephemeral port, of which a host has 65536 at most.
inline constexpr std::int64_t kMaxResolverThreads = 64;
inline constexpr std::int64_t kMaxConcurrentProbes = 65536;
// The longest durations (README, "Durations"): beyond them a schedule is a mistake, and the
// steady clock's nanoseconds overflow at about 292 years, turning a huge interval into a busy loop.
inline constexpr std::chrono::milliseconds kLongestInterval = std::chrono::hours(7 * 24);
inline constexpr std::chrono::milliseconds kLongestTimeout = std::chrono::hours(24);
inline constexpr std::chrono::milliseconds kLongestConfirmDelay = std::chrono::hours(24);
inline constexpr std::chrono::milliseconds kLongestExpectWithin = std::chrono::hours(31 * 24);  // a monthly caller

// An optional check of a profile left out because a site variable it needs is not set:
// listed by `check` so the reader sees what was not tested, and why.
struct SkippedCheck {
  std::string name;
  std::string probe;
  std::string target;  // as the profile writes it, ${variables} included
  bool required = false;
  Labels labels;       // the profile's labels for it (vendor, system, direction, doc, ...)
  std::vector<std::string> missing_vars;
  std::vector<std::string> run_from;
};

struct Config {
  AgentSettings agent;
  std::vector<CheckConfig> checks;  // the config's own [[check]]s, then each include's
  std::vector<SkippedCheck> skipped;
  std::vector<std::string> profiles;  // the profiles included, in order
  std::vector<InboundWatchConfig> inbound;  // [[inbound]] watches, the config's then each include's
  // Checks and watches not loaded because they run from roles this agent was not given.
  std::size_t left_out_for_roles = 0;
  // Every role some check or watch of the config names in run_from, loaded or not, sorted.
  std::vector<std::string> roles_named;
};

// What the command line adds to a config: profiles (--profile, as if [[include]]d), site
// variables (--var name=value, over any value the config sets) and roles (--role).
struct ConfigOverrides {
  std::vector<std::string> profiles;
  std::vector<std::pair<std::string, std::string>> vars;
  std::vector<std::string> roles{};  // --role: replaces [agent] roles
};

// `source_name` is used in error messages (the file path, or "<embedded default>"); a profile
// given by relative path is looked up beside it.
Config parse_config(std::string_view text, const std::string& source_name,
                    const ProbeRegistry& registry = builtin_probes(), const ConfigOverrides& overrides = {});
Config load_config_file(const std::string& path, const ProbeRegistry& registry = builtin_probes(),
                        const ConfigOverrides& overrides = {});
// The config the agent and its commands run: the file when one is given; else only the
// command line's profiles when there are any; else the embedded default.
Config load_config(const std::optional<std::string>& path, const ConfigOverrides& overrides = {},
                   const ProbeRegistry& registry = builtin_probes());
// Why `listen` is not an address the HTTP server can listen on (host:port, ":port",
// "[v6-address]:port", port 0 to 65535; 0 takes any free port), or nullopt when it is one.
std::optional<std::string> listen_address_problem(std::string_view listen);
// "name=value" from --var; throws ConfigError when there is no '='.
std::pair<std::string, std::string> parse_var_assignment(std::string_view text);

// The ILLiad outbound essentials, compiled in: used when no --config is given.
std::string_view embedded_default_config();
inline constexpr std::string_view kEmbeddedConfigName = "<embedded default>";

// Label names the agent sets itself, or that Prometheus reserves for the scrape.
bool is_reserved_label(std::string_view name);

}  // namespace connectivity

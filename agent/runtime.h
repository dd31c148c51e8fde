// The running agent: config, scheduler, results and HTTP endpoints wired together, with reload
// (SIGHUP, POST /-/reload with --web.enable-lifecycle) and clean shutdown (SIGTERM, SIGINT; on
// Windows, which has no SIGHUP, SIGBREAK too).
#pragma once

#include "agent/coalesced.h"
#include "agent/config.h"
#include "agent/inbound_watches.h"
#include "agent/results.h"
#include "agent/scheduler.h"
#include "agent/status.h"
#include "exporters/http_server.h"
#include "exporters/process_metrics.h"
#include "exporters/prometheus_exposition.h"
#include "exporters/web_config.h"
#include "probes/resolver.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

namespace connectivity {

std::string_view agent_version();
// --version, in the form Prometheus' exporters print it: the version and revision, then what
// it was built with and for.
std::string version_text();

struct AgentOptions {
  std::optional<std::string> config_path;  // none: the embedded default
  std::vector<std::string> listen{};       // overrides [agent].listen when not empty
  ConfigOverrides overrides{};             // --profile and --var
  bool handle_signals = true;
  bool web_enable_lifecycle = false;       // serve POST /-/reload (else 403; SIGHUP, where there is one, always works)
  std::optional<std::string> web_config_file{};  // overrides [agent].web_config_file
  // How [[inbound]] watches capture; none: the platform's (libpcap, or none on Windows).
  std::shared_ptr<inbound::CaptureBackend> capture_backend{};
};

// A config as the agent runs it: the checks, and the web config its HTTP server serves with.
struct LoadedConfig {
  Config config;
  std::shared_ptr<const WebConfig> web;  // null: no web config file
};
// Reads the config and the web config it (or --web.config.file) names. Throws ConfigError.
LoadedConfig load_agent_config(const AgentOptions& options);

class Agent {
 public:
  // Throws ConfigError for a bad config, std::runtime_error when it cannot listen.
  explicit Agent(AgentOptions options);
  ~Agent();

  // Runs until stop() or SIGTERM/SIGINT; returns the process exit code.
  int run();
  // Thread-safe.
  void stop();
  // Re-reads the config: on success it replaces the running one; on failure the old config
  // keeps running and the error is returned. Thread-safe; call from any thread but the
  // agent's own. Concurrent calls share one reload that starts after the last of them asked
  // (agent/coalesced.h): at most one runs at a time, and at most one more waits.
  std::optional<std::string> reload();
  // Starts a reload without waiting for it (SIGHUP, a service's PARAMCHANGE): the outcome is
  // logged and in connectivity_agent_config_last_reload_successful. Thread-safe.
  void request_reload(std::string_view trigger);
  // Reloads started so far (coalesced: at most one per burst of reload() calls and SIGHUPs).
  std::uint64_t reloads_started() const { return reloader_->runs(); }

  // "Run now" from the status page: runs the check out of turn and waits (bounded) for its
  // result to be recorded. Thread-safe; call from any thread but the agent's own.
  RunNow run_check_now(std::string_view name);
  // The status of every check as the page and the API show it. Thread-safe.
  StatusSnapshot status_snapshot() const;

  std::vector<int> listening_ports() const { return http_->ports(); }
  const ResultsStore& results() const { return store_; }
  const AgentHealth& health() const { return health_; }

 private:
  std::variant<LoadedConfig, std::string> load() const;
  std::optional<std::string> apply(std::variant<LoadedConfig, std::string> loaded);  // on the io thread
  std::optional<std::string> reload_now();                                      // on the reloader's thread
  std::shared_ptr<const std::string> render_now();                              // on the renderer's thread
  // `render`'s text, or null (logged) when it throws; on a renderer's thread.
  static std::shared_ptr<const std::string> rendered(std::string_view what, const std::function<std::string()>& render);
  void wait_for_signal();
  std::vector<SkippedCheck> skipped_checks() const;
  StatusRoutes status_routes();

  AgentOptions options_;
  std::vector<std::string> listen_;
  std::string web_config_path_;  // of the running web config, for the log
  std::atomic<bool> stopping_{false};
  // Declaration order is teardown order reversed: the scheduler unwinds its loops while the
  // store, health and resolver it uses are alive, and the io_context goes last.
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> keep_running_;
  std::unique_ptr<asio::signal_set> signals_;
  asio::steady_timer shutdown_deadline_;
  ResultsStore store_;
  AgentHealth health_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Scheduler> scheduler_;
  InboundWatches inbound_;
  std::shared_ptr<ExpositionCollector> collector_;
  ProcessCollector process_collector_;  // process_* series, read at each scrape
  std::atomic<bool> ready_{false};      // GET /-/ready: latched once the first round has run
  std::string hostname_;                // for the status page's title
  mutable std::mutex skipped_mutex_;
  std::vector<SkippedCheck> skipped_;  // the running config's, for the status page (the rest is in the store)
  // Each on a thread of its own, shared by concurrent requests: a reload parses the config
  // there (not on the io thread, which runs the probes), and a scrape renders there, so the
  // rendering's memory is one thread's, however many web workers have served a scrape.
  std::unique_ptr<CoalescedJob<std::optional<std::string>>> reloader_;
  std::unique_ptr<CoalescedJob<std::shared_ptr<const std::string>>> renderer_;
  // The status page and the checks' JSON, the same way: for 10,000 checks each is megabytes,
  // and eight made at once on web workers held 2 GB in glibc's per-thread arenas.
  std::unique_ptr<CoalescedJob<std::shared_ptr<const std::string>>> page_renderer_;
  std::unique_ptr<CoalescedJob<std::shared_ptr<const std::string>>> checks_json_renderer_;
  std::size_t last_render_size_ = 0;  // the renderer's own
  std::unique_ptr<HttpServer> http_;
};

// `connectivity-agent [--config FILE] [--listen ADDR]`: exit 0 after a clean shutdown,
// 2 for a bad config, 1 when it cannot run (e.g. the address is in use).
int run_agent_command(const AgentOptions& options);
// `connectivity-agent validate [--config FILE] [--profile NAME] [--var NAME=VALUE]`: 0 when
// valid, 2 (with the error) when not.
// With a web config (`web_config_file`, or the config's own), that is checked too.
int validate_command(const std::optional<std::string>& path, const ConfigOverrides& overrides,
                     const std::optional<std::string>& web_config_file = std::nullopt);

}  // namespace connectivity

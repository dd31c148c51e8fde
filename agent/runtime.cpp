#include "agent/runtime.h"

#include "agent/log.h"
#include "exporters/status_json.h"
#include "exporters/status_page.h"
#include "probes/tls/system_roots.h"

#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/crypto.h>

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>

#ifndef CONNECTIVITY_AGENT_VERSION
#define CONNECTIVITY_AGENT_VERSION "0.0.0"
#endif

namespace connectivity {

#ifndef CONNECTIVITY_AGENT_REVISION
#define CONNECTIVITY_AGENT_REVISION "unknown"
#endif

std::string_view agent_version() { return CONNECTIVITY_AGENT_VERSION; }

std::string version_text() {
#if defined(__clang__)
  const std::string compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  const std::string compiler = "GCC " __VERSION__;
#else
  const std::string compiler = "unknown";
#endif
#if defined(_WIN32)
  const std::string platform = "windows/amd64";
#else
  const std::string platform = "linux/amd64";
#endif
  return "connectivity-agent, version " + std::string(agent_version()) + " (revision: " CONNECTIVITY_AGENT_REVISION ")\n" +
         "  compiler:         " + compiler + "\n" +
         "  platform:         " + platform + "\n" +
         "  openssl:          " + OpenSSL_version(OPENSSL_VERSION);
}

namespace {

std::string config_source(const AgentOptions& options) {
  if (options.config_path) return *options.config_path;
  return options.overrides.profiles.empty() ? std::string(kEmbeddedConfigName) : std::string("<command line>");
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

void log_profiles(const Config& config) {
  if (config.profiles.empty()) return;
  std::string profiles, skipped;
  for (const auto& p : config.profiles) profiles += (profiles.empty() ? "" : ",") + p;
  for (const auto& s : config.skipped) skipped += (skipped.empty() ? "" : ",") + s.name;
  log::info("profiles included", {{"profiles", profiles}, {"skipped_optional_checks", skipped.empty() ? "none" : skipped}});
}

// Logged at every (re)load: a warning given once and scrolled away would be forgotten.
void log_config_warnings(const Config& config) {
  for (const auto& check : config.checks)
    for (const auto& warning : check.warnings)
      log::warn("check config warning", {{"check", check.name}, {"where", warning.where}, {"warning", warning.message}});
}

// Each probe holds a descriptor: the soft limit (often 1024) would cap the agent far below
// what the machine allows, and a probe past it fails with EMFILE, not a network reason.
void raise_descriptor_limit() {
#if defined(_WIN32)
  // Nothing to raise: a Windows socket is a kernel handle, bounded only by memory, not by a
  // per-process limit (the C runtime's _setmaxstdio limit is on FILE streams, not sockets).
#else
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  log::info("file descriptor limit", {{"soft", std::to_string(limit.rlim_cur)}, {"hard", std::to_string(limit.rlim_max)}});
#endif
}

// The signals the agent answers: one reloads it, the others stop it. Windows has no SIGHUP (a
// reload there is POST /-/reload, or a restart); Ctrl-Break and closing the console raise SIGBREAK.
struct HandledSignal {
  int number;
  std::string_view name;
  bool reloads;
};
constexpr HandledSignal kHandledSignals[] = {
#if defined(_WIN32)
    {SIGBREAK, "SIGBREAK", false},
#else
    {SIGHUP, "SIGHUP", true},
#endif
    {SIGTERM, "SIGTERM", false},
    {SIGINT, "SIGINT", false},
};

HandledSignal handled_signal(int number) {
  for (const auto& handled : kHandledSignals)
    if (handled.number == number) return handled;
  return {number, "unexpected signal", false};  // only the signals above are asked for
}

}  // namespace

// The system's CA certificates are read again with the config, at start and at each reload.
LoadedConfig load_agent_config(const AgentOptions& options) {
  reload_system_roots();
  LoadedConfig loaded{.config = load_config(options.config_path, options.overrides), .web = nullptr};
  const std::string web_path = options.web_config_file.value_or(loaded.config.agent.web_config_file);
  if (!web_path.empty()) loaded.web = load_web_config(web_path);
  return loaded;
}

Agent::Agent(AgentOptions options)
    : options_(std::move(options)),
      keep_running_(io_.get_executor()),
      shutdown_deadline_(io_),
      inbound_(options_.capture_backend ? options_.capture_backend : inbound::make_platform_capture_backend()) {
  LoadedConfig loaded = load_agent_config(options_);
  const Config& config = loaded.config;
  skipped_ = config.skipped;
  boost::system::error_code no_name;
  hostname_ = asio::ip::host_name(no_name);
  listen_ = options_.listen.empty() ? config.agent.listen : options_.listen;
  web_config_path_ = loaded.web ? loaded.web->path : "";
  resolver_ = std::make_unique<Resolver>(config.agent.resolver_threads);
  scheduler_ = std::make_unique<Scheduler>(io_, store_, health_, *resolver_, config.agent.max_concurrent_probes);
  collector_ = std::make_shared<ExpositionCollector>(store_, health_, std::string(agent_version()), &inbound_);
  reloader_ = std::make_unique<CoalescedJob<std::optional<std::string>>>([this] { return reload_now(); });
  renderer_ = std::make_unique<CoalescedJob<std::shared_ptr<const std::string>>>([this] { return render_now(); });
  page_renderer_ = std::make_unique<CoalescedJob<std::shared_ptr<const std::string>>>([this] {
    return rendered("the status page", [this] {
      return render_status_page(status_snapshot(), {.agent_version = agent_version(), .hostname = hostname_,
                                                    .lifecycle = options_.web_enable_lifecycle});
    });
  });
  checks_json_renderer_ = std::make_unique<CoalescedJob<std::shared_ptr<const std::string>>>([this] {
    return rendered("the checks' JSON", [this] {
      const StatusSnapshot snapshot = status_snapshot();
      return render_checks_json({.agent_version = agent_version(),
                                 .checks = &snapshot.checks,
                                 .generated_at = snapshot.taken_at,
                                 .inbound = &snapshot.inbound});
    });
  });
  http_ = std::make_unique<HttpServer>(listen_, HttpRoutes{
      .metrics = [this] { return renderer_->run(std::chrono::seconds(60)).value_or(nullptr); },
      .reload = [this] { return reload(); },
      .lifecycle = options_.web_enable_lifecycle,
      // Ready the first time every configured check has a result, and from then on: a check a
      // reload adds does not make a running agent unready.
      .ready = [this] { return ready_ || (ready_ = store_.all_have_run()); },
      .status = status_routes()},
      loaded.web);
  store_.set_latency_buckets(config.agent.latency_buckets);
  scheduler_->apply(config.checks);
  inbound_.apply(config.inbound);
  health_.last_reload_successful = true;
  health_.last_reload_success_timestamp = to_unix_seconds(std::chrono::system_clock::now());
  log_profiles(config);
  log_config_warnings(config);
  std::string ports;
  for (int port : http_->ports()) ports += (ports.empty() ? "" : ",") + std::to_string(port);
  log::info("agent started", {{"version", agent_version()}, {"config", config_source(options_)},
                              {"listen", joined(listen_)}, {"port", ports}, {"checks", std::to_string(config.checks.size())},
                              {"web", loaded.web ? loaded.web->summary() : "plain HTTP, no authentication"}});
}

Agent::~Agent() {
  stopping_ = true;
  // Closed first, so their threads end while the web server stops (a request waiting on
  // either is answered now, not after the reload or render in progress).
  reloader_->close();
  renderer_->close();
  page_renderer_->close();
  checks_json_renderer_->close();
  http_.reset();       // no more scrapes or reload requests
  renderer_.reset();
  page_renderer_.reset();
  checks_json_renderer_.reset();
  reloader_.reset();   // a reload in progress gives up within 100 ms (stopping_)
  inbound_.apply({});  // stops every capture thread
  scheduler_.reset();  // cancels and unwinds every check loop
  resolver_.reset();   // lookups still running drop their answers
}

int Agent::run() {
  if (options_.handle_signals) {
    signals_ = std::make_unique<asio::signal_set>(io_);
    for (const auto& handled : kHandledSignals) signals_->add(handled.number);
    wait_for_signal();
  }
  io_.run();
  log::info("agent stopped");
  return 0;
}

void Agent::wait_for_signal() {
  signals_->async_wait([this](const boost::system::error_code& error, int signal) {
    if (error) return;
    const HandledSignal received = handled_signal(signal);
    if (received.reloads) {
      request_reload(received.name);
      wait_for_signal();
      return;
    }
    log::info("shutting down", {{"signal", received.name}});
    stop();
  });
}

void Agent::stop() {
  stopping_ = true;
  reloader_->close();
  asio::post(io_, [this] {
    if (!keep_running_.owns_work()) return;  // already stopping
    keep_running_.reset();
    if (signals_) signals_->cancel();
    // Loops end at their next suspension point; the deadline only guards against a stuck one.
    shutdown_deadline_.expires_after(std::chrono::seconds(1));
    shutdown_deadline_.async_wait([this](const boost::system::error_code& error) {
      if (error) return;
      log::warn("check loops did not end within 1s of shutdown; stopping anyway");
      io_.stop();
    });
    scheduler_->stop([this] { shutdown_deadline_.cancel(); });
  });
}

void Agent::request_reload(std::string_view trigger) {
  if (stopping_) return;
  // Parsed on the reloader's thread, not on the caller's (the probes' thread for a signal, the
  // SCM's dispatcher for a service); joins a reload that is about to start, if any.
  log::info("reloading config", {{"trigger", trigger}, {"config", config_source(options_)}});
  reloader_->request();
}

std::variant<LoadedConfig, std::string> Agent::load() const {
  try {
    LoadedConfig loaded = load_agent_config(options_);
    if (auto problem = http_->web_config_problem(loaded.web)) return *problem;
    return loaded;
  } catch (const ConfigError& e) {
    return std::string(e.what());
  } catch (const std::exception& e) {
    // Not the config's fault (out of memory, say), but a reload that throws must leave the
    // running config as it is, like a bad one, not end the reloader's thread.
    return std::string("cannot load the config: ") + e.what();
  }
}

std::optional<std::string> Agent::apply(std::variant<LoadedConfig, std::string> loaded) {
  if (auto* error = std::get_if<std::string>(&loaded)) {
    health_.last_reload_successful = false;
    ++health_.reloads_failed;
    log::error("config rejected; previous config still running", {{"error", *error}});
    return *error;
  }
  auto& config = std::get<LoadedConfig>(loaded).config;
  auto& web = std::get<LoadedConfig>(loaded).web;
  if (options_.listen.empty() && config.agent.listen != listen_)
    log::warn("listen address changed in config; it takes effect at restart",
              {{"listening", joined(listen_)}, {"configured", joined(config.agent.listen)}});
  http_->set_web_config(web);
  const std::string web_path = web ? web->path : "";
  if (web_path != web_config_path_ || web)
    log::info("web config applied", {{"file", web_path.empty() ? "none" : web_path},
                                     {"web", web ? web->summary() : "plain HTTP, no authentication"}});
  web_config_path_ = web_path;
  store_.set_latency_buckets(config.agent.latency_buckets);
  scheduler_->apply(config.checks);
  inbound_.apply(config.inbound);
  {
    const std::lock_guard lock(skipped_mutex_);
    skipped_ = config.skipped;
  }
  health_.last_reload_successful = true;
  health_.last_reload_success_timestamp = to_unix_seconds(std::chrono::system_clock::now());
  ++health_.reloads_succeeded;
  log::info("config reloaded", {{"checks", std::to_string(config.checks.size())}});
  log_config_warnings(config);
  return std::nullopt;
}

std::optional<std::string> Agent::reload() {
  if (stopping_) return std::string("the agent is shutting down");
  // A queued request waits for the reload in progress and then its own.
  if (auto result = reloader_->run(std::chrono::seconds(60))) return *result;
  if (stopping_) return std::string("the agent is shutting down");
  return std::string("the agent did not reload within 60s");
}

std::optional<std::string> Agent::reload_now() {
  if (stopping_) return std::string("the agent is shutting down");
  // Parsed here, on the reloader's thread, so a large config does not hold up running probes.
  auto loaded = std::make_shared<std::variant<LoadedConfig, std::string>>(load());
  auto done = std::make_shared<std::promise<std::optional<std::string>>>();
  auto result = done->get_future();
  if (stopping_) return std::string("the agent is shutting down");
  asio::post(io_, [this, loaded, done] {
    // A shutdown may have begun since the check above: applying now would restart the checks
    // it is stopping (or reach a scheduler already gone, from the teardown's last run).
    if (stopping_ || !keep_running_.owns_work()) {
      done->set_value(std::string("the agent is shutting down"));
      return;
    }
    done->set_value(apply(std::move(*loaded)));
  });
  // Waits in slices so a shutdown, which stops the io thread, does not leave this reload (and
  // the agent's teardown behind it) waiting out the whole bound.
  for (int slice = 0; slice < 100; ++slice) {
    if (result.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) return result.get();
    if (stopping_) return std::string("the agent is shutting down");
  }
  return std::string("the agent did not apply the config within 10s");
}

std::vector<SkippedCheck> Agent::skipped_checks() const {
  const std::lock_guard lock(skipped_mutex_);
  return skipped_;
}

StatusSnapshot Agent::status_snapshot() const {
  StatusSnapshot snapshot;
  snapshot.taken_at = std::chrono::system_clock::now();
  snapshot.checks = collect_check_status(store_, skipped_checks(), false);
  snapshot.inbound = inbound_.snapshots(snapshot.taken_at);
  snapshot.lifecycle = options_.web_enable_lifecycle;
  return snapshot;
}

RunNow Agent::run_check_now(std::string_view name) {
  if (stopping_) return RunNow::unavailable;
  auto asked = std::make_shared<std::promise<Scheduler::OutOfTurnRun>>();
  auto answer = asked->get_future();
  asio::post(io_, [this, asked, name = std::string(name)] {
    if (stopping_ || !keep_running_.owns_work()) asked->set_value({});
    else asked->set_value(scheduler_->run_now(name));
  });
  // The io thread answers at once unless it is stopping. Every wait here is in slices, so a
  // shutdown (which waits for the web server's workers) is not held up by a page's button.
  for (int slice = 0; answer.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready; ++slice)
    if (stopping_ || slice == 50) return RunNow::unavailable;
  const Scheduler::OutOfTurnRun run = answer.get();
  if (stopping_) return RunNow::unavailable;
  switch (run.outcome) {
    case Scheduler::OutOfTurn::not_found: return RunNow::not_found;
    case Scheduler::OutOfTurn::busy: return RunNow::busy;
    case Scheduler::OutOfTurn::started: break;
  }
  // Its result, or the bound: the run and its re-runs, and a second to record them, at most a minute.
  const auto give_up = Clock::now() + std::min<Clock::duration>(run.longest + std::chrono::seconds(1), std::chrono::seconds(60));
  while (!store_.wait_for_runs(run.series_key, run.results_before + 1, std::chrono::milliseconds(100)))
    if (stopping_ || Clock::now() > give_up) break;
  return stopping_ ? RunNow::unavailable : RunNow::ran;
}

StatusRoutes Agent::status_routes() {
  const PageContext context{.agent_version = agent_version(), .hostname = hostname_, .lifecycle = options_.web_enable_lifecycle};
  return StatusRoutes{
      .page = [this] { return page_renderer_->run(std::chrono::seconds(60)).value_or(nullptr); },
      .check_page = [this, context](std::string_view name) -> std::optional<std::string> {
        auto check = collect_one_check_status(store_, skipped_checks(), name);
        if (!check) return std::nullopt;
        return render_check_page(*check, context, std::chrono::system_clock::now());
      },
      .checks_json = [this] { return checks_json_renderer_->run(std::chrono::seconds(60)).value_or(nullptr); },
      .check_json = [this](std::string_view name) -> std::optional<std::string> {
        auto check = collect_one_check_status(store_, skipped_checks(), name);
        if (!check) return std::nullopt;
        return render_check_json(*check, agent_version(), std::chrono::system_clock::now());
      },
      .run = [this](std::string_view name) { return run_check_now(name); }};
}

std::shared_ptr<const std::string> Agent::rendered(std::string_view what, const std::function<std::string()>& render) {
  try {
    auto text = std::make_shared<const std::string>(render());
#if defined(__GLIBC__)
    malloc_trim(0);  // as after a scrape: the pages built it from are freed, and handed back
#endif
    return text;
  } catch (const std::exception& e) {
    log::error("cannot render " + std::string(what), {{"error", e.what()}});
    return nullptr;
  }
}

std::shared_ptr<const std::string> Agent::render_now() {
  try {
    auto text = std::make_shared<std::string>();
    text->reserve(last_render_size_ + last_render_size_ / 8);  // grown once, not by doubling
    collector_->render(*text);
    render_text_exposition(process_collector_, *text);
    last_render_size_ = text->size();
    // No malloc_trim here, unlike the pages: the checks' series go straight into `text`, which
    // is handed on, so there is nothing of the render's to give back. A trim at every scrape
    // walked and locked every arena while the probes' thread allocated.
    return text;
  } catch (const std::exception& e) {
    log::error("cannot render the metrics", {{"error", e.what()}});
    return nullptr;
  }
}

int run_agent_command(const AgentOptions& options) {
  raise_descriptor_limit();
  try {
    Agent agent(options);
    return agent.run();
  } catch (const ConfigError& e) {
    log::error("invalid config", {{"error", e.what()}});
    return 2;
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    return 1;
  }
}

int validate_command(const std::optional<std::string>& path, const ConfigOverrides& overrides,
                     const std::optional<std::string>& web_config_file) {
  try {
    const LoadedConfig loaded =
        load_agent_config(AgentOptions{.config_path = path, .overrides = overrides, .handle_signals = false,
                                        .web_config_file = web_config_file});
    const Config& config = loaded.config;
    const std::string source = path ? *path : overrides.profiles.empty() ? std::string(kEmbeddedConfigName) : "<command line>";
    for (const auto& check : config.checks)
      for (const auto& warning : check.warnings) std::fprintf(stderr, "warning: %s\n", warning.text().c_str());
    std::printf("%s: valid, %zu check%s", source.c_str(), config.checks.size(), config.checks.size() == 1 ? "" : "s");
    if (!config.inbound.empty())
      std::printf(", %zu inbound watch%s", config.inbound.size(), config.inbound.size() == 1 ? "" : "es");
    if (!config.skipped.empty())
      std::printf(" (%zu optional check%s skipped: variables unset)", config.skipped.size(), config.skipped.size() == 1 ? "" : "s");
    std::printf("\n");
    std::string named;
    for (const auto& role : config.roles_named) named += (named.empty() ? "" : ", ") + role;
    if (config.agent.roles.empty()) {
      std::printf("no role chosen: every check is loaded, with vantage=\"%s\"", config.agent.vantage.c_str());
      if (!named.empty()) std::printf(" (its checks run from %s; choose with --role or [agent] roles)", named.c_str());
    } else {
      std::string roles;
      for (const auto& role : config.agent.roles) roles += (roles.empty() ? "" : ", ") + role;
      std::printf("roles: %s, with vantage=\"%s\"; %zu checks and watches for other roles left out", roles.c_str(),
                  config.agent.vantage.c_str(), config.left_out_for_roles);
    }
    std::printf("\n");
    if (loaded.web) std::printf("web config %s: valid, %s\n", loaded.web->path.c_str(), loaded.web->summary().c_str());
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}

}  // namespace connectivity

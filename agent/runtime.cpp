#include "agent/runtime.h"

#include "agent/log.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/resource.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <csignal>
#include <cstdio>
#include <algorithm>
#include <future>
#include <iostream>

#ifndef CONNECTIVITY_AGENT_VERSION
#define CONNECTIVITY_AGENT_VERSION "0.0.0"
#endif

namespace connectivity {

std::string_view agent_version() { return CONNECTIVITY_AGENT_VERSION; }

namespace {

std::string config_source(const AgentOptions& options) {
  if (options.config_path) return *options.config_path;
  return options.overrides.profiles.empty() ? std::string(kEmbeddedConfigName) : std::string("<command line>");
}

Config load_initial(const AgentOptions& options) { return load_config(options.config_path, options.overrides); }

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
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  log::info("file descriptor limit", {{"soft", std::to_string(limit.rlim_cur)}, {"hard", std::to_string(limit.rlim_max)}});
}

}  // namespace

Agent::Agent(AgentOptions options)
    : options_(std::move(options)), keep_running_(io_.get_executor()), shutdown_deadline_(io_) {
  Config config = load_initial(options_);
  listen_ = options_.listen.value_or(config.agent.listen);
  resolver_ = std::make_unique<Resolver>(config.agent.resolver_threads);
  scheduler_ = std::make_unique<Scheduler>(io_, store_, health_, *resolver_, config.agent.max_concurrent_probes);
  collector_ = std::make_shared<ExpositionCollector>(store_, health_, std::string(agent_version()),
                                                     [this] { return inbound_snapshots(); });
  reloader_ = std::make_unique<CoalescedJob<std::optional<std::string>>>([this] { return reload_now(); });
  renderer_ = std::make_unique<CoalescedJob<std::shared_ptr<const std::string>>>([this] { return render_now(); });
  http_ = std::make_unique<HttpServer>(listen_, HttpRoutes{
      .metrics = [this] { return renderer_->run(std::chrono::seconds(60)).value_or(nullptr); },
      .reload = [this] { return reload(); },
      .lifecycle = options_.web_enable_lifecycle});
  scheduler_->apply(config.checks);
  apply_inbound(config.inbound);
  health_.last_reload_successful = true;
  health_.last_reload_success_timestamp = to_unix_seconds(std::chrono::system_clock::now());
  log_profiles(config);
  log_config_warnings(config);
  std::string ports;
  for (int port : http_->ports()) ports += (ports.empty() ? "" : ",") + std::to_string(port);
  log::info("agent started", {{"version", agent_version()}, {"config", config_source(options_)},
                              {"listen", listen_}, {"port", ports}, {"checks", std::to_string(config.checks.size())}});
}

Agent::~Agent() {
  stopping_ = true;
  // Closed first, so their threads end while the web server stops (a request waiting on
  // either is answered now, not after the reload or render in progress).
  reloader_->close();
  renderer_->close();
  http_.reset();       // no more scrapes or reload requests
  renderer_.reset();
  reloader_.reset();   // a reload in progress gives up within 100 ms (stopping_)
  apply_inbound({});   // stops every capture thread
  scheduler_.reset();  // cancels and unwinds every check loop
  resolver_.reset();   // lookups still running drop their answers
}

int Agent::run() {
  if (options_.handle_signals) {
    signals_ = std::make_unique<asio::signal_set>(io_, SIGHUP, SIGTERM, SIGINT);
    wait_for_signal();
  }
  io_.run();
  log::info("agent stopped");
  return 0;
}

void Agent::wait_for_signal() {
  signals_->async_wait([this](const boost::system::error_code& error, int signal) {
    if (error) return;
    if (signal == SIGHUP) {
      // Parsed on the reloader's thread, not here on the probes' thread; joins a reload that
      // is about to start, if any.
      log::info("reloading config", {{"trigger", "SIGHUP"}, {"config", config_source(options_)}});
      reloader_->request();
      wait_for_signal();
      return;
    }
    log::info("shutting down", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
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

void Agent::apply_inbound(const std::vector<InboundWatchConfig>& watches) {
  std::vector<std::unique_ptr<InboundWatch>> retired;
  {
    // Held throughout, so a scrape sees the old set or the new one, never none.
    std::lock_guard lock(inbound_mutex_);
    std::vector<std::unique_ptr<InboundWatch>> kept;
    for (const auto& config : watches) {
      const auto same = std::find_if(inbound_.begin(), inbound_.end(),
                                     [&](const auto& w) { return w && w->config().identity() == config.identity(); });
      if (same != inbound_.end()) {
        kept.push_back(std::move(*same));
        continue;
      }
      auto watch = std::make_unique<InboundWatch>(config);
      if (watch->running())
        log::info("inbound watch started", {{"check", config.name}, {"port", std::to_string(config.port)}, {"interface", config.interface}});
      else
        log::error("inbound watch not running; every other check goes on", {{"check", config.name}, {"why", watch->why_not_running()}});
      kept.push_back(std::move(watch));
    }
    retired = std::exchange(inbound_, std::move(kept));
  }
  // Stopping a capture thread waits for it: done here, outside the lock.
  retired.clear();
}

std::vector<InboundSnapshot> Agent::inbound_snapshots() const {
  const auto now = std::chrono::system_clock::now();
  std::lock_guard lock(inbound_mutex_);
  std::vector<InboundSnapshot> out;
  for (const auto& watch : inbound_) out.push_back(watch->snapshot(now));
  return out;
}

std::variant<Config, std::string> Agent::load() const {
  try {
    return load_initial(options_);
  } catch (const ConfigError& e) {
    return std::string(e.what());
  } catch (const std::exception& e) {
    // Not the config's fault (out of memory, say), but a reload that throws must leave the
    // running config as it is, like a bad one, not end the reloader's thread.
    return std::string("cannot load the config: ") + e.what();
  }
}

std::optional<std::string> Agent::apply(std::variant<Config, std::string> loaded) {
  if (auto* error = std::get_if<std::string>(&loaded)) {
    health_.last_reload_successful = false;
    ++health_.reloads_failed;
    log::error("config rejected; previous config still running", {{"error", *error}});
    return *error;
  }
  auto& config = std::get<Config>(loaded);
  if (!options_.listen && config.agent.listen != listen_)
    log::warn("listen address changed in config; it takes effect at restart",
              {{"listening", listen_}, {"configured", config.agent.listen}});
  scheduler_->apply(config.checks);
  apply_inbound(config.inbound);
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
  auto loaded = std::make_shared<std::variant<Config, std::string>>(load());
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

std::shared_ptr<const std::string> Agent::render_now() {
  try {
    auto text = std::make_shared<std::string>();
    text->reserve(last_render_size_ + last_render_size_ / 8);  // grown once, not by doubling
    render_text_exposition(*collector_, *text);
    last_render_size_ = text->size();
#if defined(__GLIBC__)
    // The metric families built for the text are freed by now, but glibc keeps the pages in
    // this thread's arena: 30 MB for 2,000 checks, otherwise held between scrapes.
    malloc_trim(0);
#endif
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

int validate_command(const std::optional<std::string>& path, const ConfigOverrides& overrides) {
  try {
    const Config config = load_config(path, overrides);
    const std::string source = path ? *path : overrides.profiles.empty() ? std::string(kEmbeddedConfigName) : "<command line>";
    for (const auto& check : config.checks)
      for (const auto& warning : check.warnings) std::fprintf(stderr, "warning: %s\n", warning.text().c_str());
    std::printf("%s: valid, %zu checks", source.c_str(), config.checks.size());
    if (!config.skipped.empty()) std::printf(" (%zu optional checks skipped: variables unset)", config.skipped.size());
    std::printf("\n");
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}

}  // namespace connectivity

#include "agent/runtime.h"

#include "agent/log.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/resource.h>

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

// Each probe holds a descriptor: the soft limit (often 1024) would cap the agent far below
// what the machine allows (../shared/PITFALLS.md, EMFILE).
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
  http_ = std::make_unique<HttpServer>(listen_, HttpRoutes{
      .metrics = [collector = collector_] { return render_text_exposition(*collector); },
      .reload = [this] { return reload(); }});
  scheduler_->apply(config.checks);
  apply_inbound(config.inbound);
  health_.last_reload_successful = true;
  health_.last_reload_success_timestamp = to_unix_seconds(std::chrono::system_clock::now());
  log_profiles(config);
  std::string ports;
  for (int port : http_->ports()) ports += (ports.empty() ? "" : ",") + std::to_string(port);
  log::info("agent started", {{"version", agent_version()}, {"config", config_source(options_)},
                              {"listen", listen_}, {"port", ports}, {"checks", std::to_string(config.checks.size())}});
}

Agent::~Agent() {
  http_.reset();       // no more scrapes or reload requests
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
      log::info("reloading config", {{"trigger", "SIGHUP"}, {"config", config_source(options_)}});
      apply(load());
      wait_for_signal();
      return;
    }
    log::info("shutting down", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
    stop();
  });
}

void Agent::stop() {
  stopping_ = true;
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
  return std::nullopt;
}

std::optional<std::string> Agent::reload() {
  // Parse here, on the caller's thread, so a large config does not hold up running probes.
  auto loaded = std::make_shared<std::variant<Config, std::string>>(load());
  auto done = std::make_shared<std::promise<std::optional<std::string>>>();
  auto result = done->get_future();
  if (stopping_) return std::string("the agent is shutting down");
  asio::post(io_, [this, loaded, done] { done->set_value(apply(std::move(*loaded))); });
  // Waits in slices so a shutdown, which stops the io thread, does not leave this request
  // (and the HTTP server's shutdown behind it) waiting out the whole bound.
  for (int slice = 0; slice < 100; ++slice) {
    if (result.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) return result.get();
    if (stopping_) return std::string("the agent is shutting down");
  }
  return std::string("the agent did not apply the config within 10s");
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

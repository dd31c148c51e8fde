#include "agent/inbound_watches.h"

#include "agent/log.h"

#include <algorithm>
#include <string>
#include <utility>

namespace connectivity {

namespace {

void log_start(const InboundWatch& watch) {
  const auto& config = watch.config();
  const std::string port = std::to_string(config.port);
  if (watch.running())
    log::info("inbound watch started", {{"check", config.name}, {"port", port}, {"interface", config.interface}});
  else if (watch.capture_unavailable())
    log::warn(watch.why_not_running(), {{"check", config.name}, {"port", port}});
  else
    log::error("inbound watch not running; every other check goes on", {{"check", config.name}, {"why", watch.why_not_running()}});
}

}  // namespace

InboundWatches::InboundWatches(std::shared_ptr<inbound::CaptureBackend> backend) : backend_(std::move(backend)) {}

InboundWatches::~InboundWatches() { apply({}); }

void InboundWatches::apply(const std::vector<InboundWatchConfig>& watches) {
  std::vector<std::shared_ptr<InboundWatch>> retired;
  {
    // Held throughout, so a scrape sees the old set or the new one, never none.
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<InboundWatch>> kept;
    for (const auto& config : watches) {
      const std::string identity = config.identity();
      const auto same = std::find_if(watches_.begin(), watches_.end(),
                                     [&](const auto& watch) { return watch && watch->config().identity() == identity; });
      if (same != watches_.end()) {
        kept.push_back(std::move(*same));
        continue;
      }
      auto watch = std::make_shared<InboundWatch>(config, *backend_);
      log_start(*watch);
      kept.push_back(std::move(watch));
    }
    retired = std::exchange(watches_, std::move(kept));
  }
  // Stopping a capture waits for its thread: done here, outside the lock.
  retired.clear();
}

std::vector<InboundSnapshot> InboundWatches::snapshots(std::chrono::system_clock::time_point now) const {
  std::lock_guard lock(mutex_);
  std::vector<InboundSnapshot> out;
  out.reserve(watches_.size());
  for (const auto& watch : watches_) out.push_back(watch->snapshot(now));
  return out;
}

std::size_t InboundWatches::size() const {
  std::lock_guard lock(mutex_);
  return watches_.size();
}

bool InboundWatches::wait_until(std::string_view name, const std::function<bool(const InboundSnapshot&)>& ready,
                                std::chrono::milliseconds limit) const {
  std::shared_ptr<const InboundWatch> watch;
  {
    std::lock_guard lock(mutex_);
    const auto found = std::find_if(watches_.begin(), watches_.end(), [&](const auto& w) { return w->config().name == name; });
    if (found == watches_.end()) return false;
    watch = *found;
  }
  return watch->wait_until(ready, limit);
}

}  // namespace connectivity

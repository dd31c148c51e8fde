// The [[inbound]] watches that run, as the scheduler is for checks: apply() makes the running
// set equal a config's, snapshots() gives the exposition their counts at scrape time. How a
// watch captures is the backend's business (probes/inbound/capture_backend.h); on a platform
// without capture every watch is exported as not running and the checks go on.
#pragma once

#include "probes/inbound/capture_backend.h"
#include "probes/inbound/inbound_watch.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace connectivity {

class InboundWatches {
 public:
  explicit InboundWatches(std::shared_ptr<inbound::CaptureBackend> backend);
  ~InboundWatches();  // stops every capture
  InboundWatches(const InboundWatches&) = delete;
  InboundWatches& operator=(const InboundWatches&) = delete;

  // Makes the running set equal `watches`: a watch whose config is unchanged keeps running
  // with its counts, new and changed ones start (each start logged: started; capture not
  // available on this platform, a warning; or why it could not, an error), the rest stop.
  // Starts captures in the caller's network namespace. Thread-safe.
  void apply(const std::vector<InboundWatchConfig>& watches);
  // Every watch's counts as of `now`, in config order. Thread-safe: scrapes call it from the
  // web server's threads.
  std::vector<InboundSnapshot> snapshots(std::chrono::system_clock::time_point now) const;
  std::size_t size() const;
  // Blocks until `ready` holds for the watch named `name`, or `limit` passes, or there is no
  // such watch; returns whether it held. For tests and tools, like ResultsStore::wait_for_runs.
  bool wait_until(std::string_view name, const std::function<bool(const InboundSnapshot&)>& ready,
                  std::chrono::milliseconds limit) const;

 private:
  std::shared_ptr<inbound::CaptureBackend> backend_;
  mutable std::mutex mutex_;
  // Shared: wait_until holds a watch outside the lock, which a concurrent apply may retire.
  std::vector<std::shared_ptr<InboundWatch>> watches_;
};

}  // namespace connectivity

// The process_* series every Prometheus client library exports (CPU, memory, descriptors,
// threads, start time), which dashboards and alerts written for any exporter expect. Read at
// scrape time from /proc on Linux and from the Win32 API on Windows.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <optional>
#include <vector>

namespace connectivity {

// One reading; a figure the platform does not give (or that failed to read) is empty, and its
// series is left out rather than exported as 0.
struct ProcessStats {
  std::optional<double> cpu_seconds;          // user + system
  std::optional<double> resident_bytes;       // Windows: the working set
  std::optional<double> virtual_bytes;        // Windows: the user-mode address space in use
  std::optional<double> open_fds;             // Windows: open handles (absent under Wine, which keeps no count)
  std::optional<double> max_fds;              // the soft limit; Windows: the handle limit per process
  std::optional<double> start_time_seconds;   // Unix time
  std::optional<double> threads;
};

ProcessStats read_process_stats();

class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace connectivity

// The results store as Prometheus metric families, rendered at scrape time (a Collectable),
// so a scrape reads the latest results and never waits on a probe.
#pragma once

#include "agent/results.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace connectivity {

class ExpositionCollector final : public prometheus::Collectable {
 public:
  ExpositionCollector(const ResultsStore& store, const AgentHealth& health, std::string version);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ResultsStore& store_;
  const AgentHealth& health_;
  std::string version_;
};

// Text exposition format 0.0.4 of everything the collector holds.
std::string render_text_exposition(const prometheus::Collectable& collectable);

}  // namespace connectivity

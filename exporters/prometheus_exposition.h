// The results store as Prometheus metric families, rendered at scrape time (a Collectable),
// so a scrape reads the latest results and never waits on a probe.
#pragma once

#include "agent/inbound_watches.h"
#include "agent/results.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace connectivity {

class ExpositionCollector final : public prometheus::Collectable {
 public:
  // `inbound` (optional) gives the [[inbound]] watches' counts at scrape time; it must outlive
  // the collector, as the store and health must.
  ExpositionCollector(const ResultsStore& store, const AgentHealth& health, std::string version,
                      const InboundWatches* inbound = nullptr);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void collect_inbound(std::vector<prometheus::MetricFamily>& out) const;
  const ResultsStore& store_;
  const AgentHealth& health_;
  std::string version_;
  const InboundWatches* inbound_;
};

// Text exposition format 0.0.4 of everything the collector holds.
std::string render_text_exposition(const prometheus::Collectable& collectable);
// The same, appended to `out` (whose capacity a caller can size from the last render).
void render_text_exposition(const prometheus::Collectable& collectable, std::string& out);

}  // namespace connectivity

// What /metrics serves. The checks' families are written straight from the results store into
// the exposition text at scrape time: one pass over the store per family, into the caller's
// buffer, with each check's label set written once when its series was made. At 10,000 checks
// that is most of a scrape, and building prometheus-cpp's MetricFamily copies of it first cost
// most of the time and all of the peak memory. The agent's own and the inbound watches' few
// families still go through prometheus-cpp's types and serializer.
#pragma once

#include "agent/inbound_watches.h"
#include "agent/results.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace connectivity {

class ExpositionCollector {
 public:
  // `inbound` (optional) gives the [[inbound]] watches' counts at scrape time; it must outlive
  // the collector, as the store and health must.
  ExpositionCollector(const ResultsStore& store, const AgentHealth& health, std::string version,
                      const InboundWatches* inbound = nullptr);
  // Appends every family, text format 0.0.4.
  void render(std::string& out) const;

 private:
  void render_checks(std::string& out) const;
  std::vector<prometheus::MetricFamily> agent_families() const;
  void collect_inbound(std::vector<prometheus::MetricFamily>& out) const;
  const ResultsStore& store_;
  const AgentHealth& health_;
  std::string version_;
  const InboundWatches* inbound_;
};

// Text exposition format 0.0.4 of everything the collector holds.
std::string render_text_exposition(const ExpositionCollector& collector);
// prometheus-cpp's collectables (the process_* series), appended to `out`.
void render_text_exposition(const prometheus::Collectable& collectable, std::string& out);
std::string render_text_exposition(const prometheus::Collectable& collectable);

}  // namespace connectivity

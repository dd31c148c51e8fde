#include "probes/probe.h"

#include <algorithm>

namespace connectivity {

std::string Target::to_string() const {
  const bool ipv6_literal = host.find(':') != std::string::npos;
  return (ipv6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ProbeContext::ProbeContext(asio::any_io_executor executor, const Target& target,
                           Clock::time_point deadline, Resolver& resolver)
    : executor_(std::move(executor)), target_(target), deadline_(deadline), resolver_(resolver) {}

void ProbeContext::begin_phase(std::string_view name) {
  const auto now = Clock::now();
  end_phase_at(now);
  phases_.push_back({name, {}});
  phase_started_ = now;
  phase_open_ = true;
}

void ProbeContext::end_phase() { end_phase_at(Clock::now()); }

void ProbeContext::end_phase_at(Clock::time_point now) {
  if (!phase_open_) return;
  // A run is cut off at its deadline: a phase the probe closes while unwinding from that
  // cancellation must not claim time past it. Never negative either.
  now = std::min(now, deadline_);
  phases_.back().took = std::max(now - phase_started_, Clock::duration::zero());
  phase_open_ = false;
}

}  // namespace connectivity

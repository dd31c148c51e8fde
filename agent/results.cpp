#include "agent/results.h"

#include <algorithm>
#include <condition_variable>
#include <iterator>

namespace connectivity {

namespace {
// 1 ms to 10 s: from a loopback connect to a probe at a typical deadline.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,   0.25,   0.5,   1,    2.5,   5, 10};
// 100 µs to 10 s: how late a run starts against its schedule.
const prometheus::Histogram::BucketBoundaries kLagBuckets{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                          0.1,    0.5,    1,     5,     10};
// Counts one run by its result (one the kind does not declare counts as `error`) and its
// duration in the latency histogram; returns the result it was counted under.
std::string_view count_run(CheckSeries& s, const RunRecord& run) {
  auto r = std::find(s.reasons.begin(), s.reasons.end(), run.reason);
  if (r == s.reasons.end()) r = std::find(s.reasons.begin(), s.reasons.end(), reason::error);
  ++s.runs_by_reason[static_cast<std::size_t>(r - s.reasons.begin())];
  s.latency.Observe(std::chrono::duration<double>(run.total).count());
  return *r;
}

}  // namespace

double to_unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

CheckSeries::CheckSeries(const CheckConfig& check)
    : kind(check.kind),
      required(check.required),
      interval_seconds(std::chrono::duration<double>(check.interval).count()),
      latency(kLatencyBuckets),
      last_phase_seconds(check.kind->phases.size(), 0.0) {
  labels = {{"check", check.name}, {"probe", std::string(check.kind->name)}, {"target", check.target.to_string()}};
  labels.insert(labels.end(), check.labels.begin(), check.labels.end());
  reasons.assign(std::begin(kCoreReasons), std::end(kCoreReasons));
  for (auto r : check.kind->extra_reasons)
    if (std::find(reasons.begin(), reasons.end(), r) == reasons.end()) reasons.push_back(r);
  runs_by_reason.assign(reasons.size(), 0);
}

void ResultsStore::configure(const std::vector<CheckConfig>& checks) {
  std::map<std::string, std::unique_ptr<CheckSeries>> next;
  std::lock_guard lock(mutex_);
  for (const auto& check : checks) {
    const std::string key = check.series_key();
    auto it = series_.find(key);
    if (it != series_.end()) {
      // Same label set: counters carry on; settings that are not labels may have changed.
      it->second->required = check.required;
      it->second->interval_seconds = std::chrono::duration<double>(check.interval).count();
      next.emplace(key, std::move(it->second));
    } else {
      next.emplace(key, std::make_unique<CheckSeries>(check));
    }
  }
  series_ = std::move(next);
  by_key_.clear();
  by_key_.reserve(series_.size());
  for (const auto& [key, series] : series_) by_key_.emplace(key, series.get());
}

CheckSeries* ResultsStore::find(std::string_view series_key) const {
  auto it = by_key_.find(series_key);
  return it == by_key_.end() ? nullptr : it->second;
}

Transition ResultsStore::record(const std::string& series_key, const RunRecord& run, bool confirms) {
  Transition transition = Transition::none;
  {
    std::lock_guard lock(mutex_);
    CheckSeries* found = find(series_key);
    if (!found) return Transition::none;
    CheckSeries& s = *found;
    const bool up = run.reason == reason::success;
    transition = !s.has_run ? Transition::first_result
                 : up == s.up ? Transition::none
                 : up         ? Transition::went_up
                              : Transition::went_down;
    s.last_reason = count_run(s, run);
    if (confirms && up) ++s.transient_failures;
    ++s.results;
    s.has_run = true;
    s.up = up;
    std::fill(s.last_phase_seconds.begin(), s.last_phase_seconds.end(), 0.0);
    // A phase met more than once in a run (each hop of a redirect chain) counts in full.
    for (const auto& phase : run.phases) {
      auto p = std::find(s.kind->phases.begin(), s.kind->phases.end(), phase.name);
      if (p != s.kind->phases.end())
        s.last_phase_seconds[static_cast<std::size_t>(p - s.kind->phases.begin())] +=
            std::chrono::duration<double>(phase.took).count();
    }
    s.last_facts = run.facts;
    s.last_run_timestamp = to_unix_seconds(run.finished_at);
    if (up) s.last_success_timestamp = s.last_run_timestamp;
  }
  recorded_.notify_all();
  return transition;
}

void ResultsStore::record_run_only(const std::string& series_key, const RunRecord& run) {
  std::lock_guard lock(mutex_);
  if (CheckSeries* found = find(series_key)) count_run(*found, run);
}

void ResultsStore::visit(const std::function<void(const CheckSeries&)>& visit) const {
  // A batch at a time: one lock over a scrape of 10,000 checks held record(), and with it the
  // scheduler's thread, for the whole second the scrape took (lag p99 284 ms in tests/bench).
  constexpr std::size_t kBatch = 64;
  std::string last_visited;
  for (bool first = true;; first = false) {
    std::lock_guard lock(mutex_);
    auto it = first ? series_.begin() : series_.upper_bound(last_visited);
    for (std::size_t n = 0; n < kBatch && it != series_.end(); ++n, ++it) visit(*it->second);
    if (it == series_.end()) return;
    last_visited = std::prev(it)->first;
  }
}

std::size_t ResultsStore::size() const {
  std::lock_guard lock(mutex_);
  return series_.size();
}

bool ResultsStore::all_have_run() const {
  std::lock_guard lock(mutex_);
  return std::all_of(series_.begin(), series_.end(), [](const auto& entry) { return entry.second->has_run; });
}

std::uint64_t ResultsStore::runs(const std::string& series_key) const {
  std::lock_guard lock(mutex_);
  auto it = series_.find(series_key);
  if (it == series_.end()) return 0;
  return it->second->results;
}

bool ResultsStore::wait_for_runs(const std::string& series_key, std::uint64_t count,
                                 std::chrono::milliseconds limit) const {
  std::unique_lock lock(mutex_);
  return recorded_.wait_for(lock, limit, [&] {
    auto it = series_.find(series_key);
    return it != series_.end() && it->second->results >= count;
  });
}

AgentHealth::AgentHealth() : scheduler_lag(kLagBuckets) {}

}  // namespace connectivity

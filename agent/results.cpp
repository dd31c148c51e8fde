#include "agent/results.h"

#include "agent/exposition_text.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <condition_variable>
#include <iterator>

namespace connectivity {

namespace {
// 100 µs to 10 s: how late a run starts against its schedule.
const prometheus::Histogram::BucketBoundaries kLagBuckets{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                          0.1,    0.5,    1,     5,     10};
// Counts one run by its result (one the kind does not declare counts as `error`), its
// duration in the latency histogram, and keeps it in the check's history; returns the result
// it was counted under.
std::string_view count_run(CheckSeries& s, const RunRecord& run, bool set_state) {
  auto r = std::find(s.reasons.begin(), s.reasons.end(), run.reason);
  if (r == s.reasons.end()) r = std::find(s.reasons.begin(), s.reasons.end(), reason::error);
  const auto index = static_cast<std::size_t>(r - s.reasons.begin());
  ++s.runs_by_reason[index];
  s.latency.observe(std::chrono::duration<double>(run.total).count());
  if (!s.history) s.history = std::make_unique<RunHistory>(s.kind->phases.size());
  s.history->add(run, s.kind->phases, static_cast<std::uint8_t>(std::min<std::size_t>(index, 255)), set_state);
  return *r;
}

}  // namespace

RunHistory::RunHistory(std::size_t phase_count) : phase_count_(phase_count) {
  runs_.reserve(kRecentRuns);
  phase_seconds_.assign(kRecentRuns * phase_count_, 0.0F);
}

void RunHistory::add(const RunRecord& run, std::span<const std::string_view> kind_phases, std::uint8_t reason_index,
                     bool set_state) {
  const double finished_at = to_unix_seconds(run.finished_at);
  const auto seconds = static_cast<float>(std::chrono::duration<double>(run.total).count());
  const std::size_t slot = next_;
  const Stored stored{static_cast<std::int64_t>(std::llround(finished_at * 1000)), seconds, reason_index, set_state};
  if (runs_.size() < kRecentRuns) runs_.push_back(stored);
  else runs_[slot] = stored;
  if (!run.detail.empty() && !details_) details_ = std::make_unique<std::shared_ptr<const std::string>[]>(kRecentRuns);
  if (details_) {
    const auto& before = details_[(slot + kRecentRuns - 1) % kRecentRuns];
    details_[slot] = run.detail.empty()                    ? nullptr
                     : before && *before == run.detail ? before
                                                       : std::make_shared<const std::string>(run.detail);
  }
  next_ = (next_ + 1) % kRecentRuns;
  float* phases = phase_seconds_.data() + slot * phase_count_;
  std::fill(phases, phases + phase_count_, 0.0F);
  for (const auto& phase : run.phases) {
    auto p = std::find(kind_phases.begin(), kind_phases.end(), phase.name);
    if (p != kind_phases.end() && static_cast<std::size_t>(p - kind_phases.begin()) < phase_count_)
      phases[p - kind_phases.begin()] += static_cast<float>(std::chrono::duration<double>(phase.took).count());
  }

  const auto minute = static_cast<std::int64_t>(std::floor(finished_at / 60));
  StoredMinute& m = minutes_[static_cast<std::size_t>(minute) % kMinutes];
  const auto low = static_cast<std::uint16_t>(minute & 0xffff);
  if (m.runs == 0 || m.minute != low) m = {0, low, 0, 0};
  m.worst_seconds = std::max(m.worst_seconds, seconds);
  if (m.runs < UINT8_MAX) ++m.runs;
  if (reason_index != 0 && m.failures < UINT8_MAX) ++m.failures;  // index 0 is success (kCoreReasons)
}

std::vector<RunHistory::Run> RunHistory::recent(std::span<const std::string_view> reasons) const {
  std::vector<Run> out;
  out.reserve(runs_.size());
  for (std::size_t n = 0; n < runs_.size(); ++n) {
    const std::size_t slot = (next_ + kRecentRuns - 1 - n) % kRecentRuns;
    const Stored& stored = runs_[slot];
    const float* phases = phase_seconds_.data() + slot * phase_count_;
    const auto& detail = details_ ? details_[slot] : nullptr;
    out.push_back({static_cast<double>(stored.finished_ms) / 1000, stored.seconds,
                   stored.reason_index < reasons.size() ? reasons[stored.reason_index] : reason::error, stored.set_state,
                   std::vector<double>(phases, phases + phase_count_), detail ? *detail : std::string()});
  }
  return out;
}

std::vector<RunHistory::Minute> RunHistory::last_hour(double now) const {
  const auto current = static_cast<std::int64_t>(std::floor(now / 60));
  std::vector<Minute> out;
  for (std::int64_t minute = current - static_cast<std::int64_t>(kMinutes) + 1; minute <= current; ++minute) {
    const StoredMinute& m = minutes_[static_cast<std::size_t>(minute) % kMinutes];
    if (m.runs > 0 && m.minute == static_cast<std::uint16_t>(minute & 0xffff))
      out.push_back({static_cast<double>(minute) * 60, m.worst_seconds, m.runs, m.failures});
  }
  return out;
}

double to_unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

LatencyBuckets::LatencyBuckets(std::vector<double> upper_bounds) : bounds(std::move(upper_bounds)) {
  for (double bound : bounds) {
    std::string text;
    append_number(text, bound);
    le.push_back(std::move(text));
  }
  le.emplace_back("+Inf");
}

LatencyHistogram::LatencyHistogram(std::shared_ptr<const LatencyBuckets> buckets)
    : buckets_(std::move(buckets)), counts_(std::make_unique<std::uint64_t[]>(buckets_->bounds.size() + 1)) {}

void LatencyHistogram::observe(double seconds) {
  const auto& bounds = buckets_->bounds;
  // The first bucket whose bound is at least the value: `le` is inclusive.
  counts_[static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin())]++;
  sum_ += seconds;
  ++count_;
}

std::span<const std::string_view> result_reasons(const ProbeKind& kind) {
  static std::mutex mutex;
  static std::map<const ProbeKind*, std::vector<std::string_view>> lists;  // kinds live as long as the program
  std::lock_guard lock(mutex);
  auto [it, added] = lists.try_emplace(&kind);
  if (added) {
    it->second.assign(std::begin(kCoreReasons), std::end(kCoreReasons));
    for (auto r : kind.extra_reasons)
      if (std::find(it->second.begin(), it->second.end(), r) == it->second.end()) it->second.push_back(r);
  }
  return it->second;
}

CheckSeries::CheckSeries(std::shared_ptr<const CheckConfig> check, std::shared_ptr<const LatencyBuckets> buckets)
    : config(std::move(check)),
      kind(config->kind),
      reasons(result_reasons(*kind)),
      latency(std::move(buckets)),
      last_phase_seconds(kind->phases.size(), 0.0) {
  append_label_pairs(label_text, labels());
  label_text.shrink_to_fit();
  runs_by_reason.assign(reasons.size(), 0);
}

void CheckSeries::take_settings(std::shared_ptr<const CheckConfig> check) { config = std::move(check); }

Labels CheckSeries::labels() const {
  Labels all{{"check", config->name}, {"probe", std::string(kind->name)}, {"target", config->target.to_string()}};
  all.insert(all.end(), config->labels.begin(), config->labels.end());
  return all;
}

void ResultsStore::set_latency_buckets(std::span<const double> upper_bounds) {
  std::lock_guard lock(mutex_);
  if (latency_buckets_ && std::equal(upper_bounds.begin(), upper_bounds.end(), latency_buckets_->bounds.begin(),
                                     latency_buckets_->bounds.end()))
    return;
  latency_buckets_ = std::make_shared<const LatencyBuckets>(std::vector<double>(upper_bounds.begin(), upper_bounds.end()));
  for (auto& [key, series] : series_) series->latency = LatencyHistogram(latency_buckets_);
}

void ResultsStore::configure(const std::vector<CheckConfig>& checks) {
  std::vector<std::shared_ptr<const CheckConfig>> shared;
  shared.reserve(checks.size());
  for (const auto& check : checks) shared.push_back(std::make_shared<const CheckConfig>(check));
  configure(shared);
}

void ResultsStore::configure(std::span<const std::shared_ptr<const CheckConfig>> checks) {
  std::map<std::string, std::unique_ptr<CheckSeries>> next;
  std::lock_guard lock(mutex_);
  if (!latency_buckets_)
    latency_buckets_ = std::make_shared<const LatencyBuckets>(
        std::vector<double>(std::begin(kDefaultLatencyBuckets), std::end(kDefaultLatencyBuckets)));
  for (const auto& check : checks) {
    const std::string key = check->series_key();
    auto it = series_.find(key);
    if (it != series_.end()) {
      // Same label set: counters carry on; settings that are not labels may have changed.
      it->second->take_settings(check);
      next.emplace(key, std::move(it->second));
    } else {
      next.emplace(key, std::make_unique<CheckSeries>(check, latency_buckets_));
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
    s.last_reason = count_run(s, run, true);
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
    s.last_detail = run.detail;
    s.last_seconds = std::chrono::duration<double>(run.total).count();
    s.last_run_timestamp = to_unix_seconds(run.finished_at);
    if (up) s.last_success_timestamp = s.last_run_timestamp;
    if (transition != Transition::none) s.state_since = s.last_run_timestamp;
  }
  recorded_.notify_all();
  return transition;
}

void ResultsStore::record_run_only(const std::string& series_key, const RunRecord& run) {
  std::lock_guard lock(mutex_);
  if (CheckSeries* found = find(series_key)) count_run(*found, run, false);
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

bool ResultsStore::visit_check(std::string_view name, const std::function<void(const CheckSeries&)>& visit) const {
  std::lock_guard lock(mutex_);
  // By name, not key: a scan, but a page for one check is asked for by a person, not a scraper.
  for (const auto& [key, series] : series_)
    if (series->config->name == name) {
      visit(*series);
      return true;
    }
  return false;
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

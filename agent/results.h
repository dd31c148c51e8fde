// The results store: the one piece of state shared between the scheduler (writes one record
// per run) and the exporters (read under the lock while rendering). No I/O under the lock.
#pragma once

#include "agent/config.h"

#include <prometheus/histogram.h>  // AgentHealth's scheduler lag

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace connectivity {

struct RunRecord {
  std::string_view reason;
  std::string detail;
  std::vector<PhaseTiming> phases;
  std::vector<Fact> facts;
  Clock::duration total{};
  std::chrono::system_clock::time_point finished_at;  // wall clock, for _timestamp_seconds
};

// The recent runs of one check, for its page and the status API: the last kRecentRuns runs
// whole (result, phases, detail) and, for the last hour, each minute's worst latency and
// failures, for the latency history. Bounded whatever the interval: a 1 s check keeps the same
// 20 runs and 60 minutes as a 15 min one. About 2 KiB a check, allocated at its first run.
class RunHistory {
 public:
  static constexpr std::size_t kRecentRuns = 20;
  static constexpr std::size_t kMinutes = 60;

  struct Run {
    double finished_at = 0;  // unix seconds
    double seconds = 0;
    std::string_view reason;
    // False for a failure held back until re-runs confirmed it, and for a re-run whose result
    // did not stand: runs that did not set the check's state.
    bool set_state = true;
    std::vector<double> phase_seconds;  // parallel to the kind's phases; 0 for phases not reached
    std::string detail;
  };
  struct Minute {
    double start = 0;  // unix seconds, a whole minute
    double worst_seconds = 0;
    unsigned runs = 0;
    unsigned failures = 0;
  };

  explicit RunHistory(std::size_t phase_count);
  void add(const RunRecord& run, std::span<const std::string_view> kind_phases, std::uint8_t reason_index,
           bool set_state);
  // Newest first; `reasons` is the series' list the indexes point into.
  std::vector<Run> recent(std::span<const std::string_view> reasons) const;
  // The minutes with runs among the kMinutes before `now`, oldest first.
  std::vector<Minute> last_hour(double now) const;

 private:
  // Compact, as every check keeps 20 runs and 60 minutes: a run in 16 bytes; its detail kept
  // beside, in a ring made at the first run that said anything (most successes say nothing),
  // and shared with the run before when they say the same (a failing check repeats its reason).
  struct Stored {
    std::int64_t finished_ms = 0;  // unix milliseconds
    float seconds = 0;
    std::uint8_t reason_index = 0;
    bool set_state = true;
  };
  struct StoredMinute {
    float worst_seconds = 0;
    std::uint16_t minute = 0;  // the low 16 bits of minutes since the epoch (45 days apart alias)
    std::uint8_t runs = 0;     // 0: unused; saturates at 255
    std::uint8_t failures = 0;
  };
  std::size_t phase_count_;
  std::vector<Stored> runs_;          // a ring of kRecentRuns once full
  std::vector<float> phase_seconds_;  // kRecentRuns * phase_count_, slot by slot
  std::unique_ptr<std::shared_ptr<const std::string>[]> details_;  // kRecentRuns, by slot; null until a detail
  std::size_t next_ = 0;              // the slot the next run takes
  std::array<StoredMinute, kMinutes> minutes_{};  // by minute % kMinutes
};

// The upper bounds of connectivity_probe_latency_seconds' buckets ([agent] latency_buckets),
// with each `le` value written once: every check's histogram points at one shared set.
struct LatencyBuckets {
  explicit LatencyBuckets(std::vector<double> upper_bounds);
  std::vector<double> bounds;   // ascending, finite
  std::vector<std::string> le;  // the bounds as exposition text, then "+Inf"
};

// A check's latency histogram: counts per bucket (not cumulative; the last is +Inf's own), sum
// and count. Plain numbers, written under the store's lock, which every reader takes: about a
// tenth of the memory of a prometheus::Histogram, whose every bucket is an atomic counter.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::shared_ptr<const LatencyBuckets> buckets);
  void observe(double seconds);
  const LatencyBuckets& buckets() const { return *buckets_; }
  const std::shared_ptr<const LatencyBuckets>& shared_buckets() const { return buckets_; }
  // Runs per bucket, parallel to buckets().le; not cumulative (the exposition sums as it writes).
  std::span<const std::uint64_t> bucket_counts() const { return {counts_.get(), buckets_->le.size()}; }
  double sum() const { return sum_; }
  std::uint64_t count() const { return count_; }

 private:
  std::shared_ptr<const LatencyBuckets> buckets_;
  std::unique_ptr<std::uint64_t[]> counts_;  // bounds.size() + 1
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// The results a run of this kind is counted under: kCoreReasons then the kind's own, one list
// per kind shared by all its checks.
std::span<const std::string_view> result_reasons(const ProbeKind& kind);

// Everything exported about one check.
struct CheckSeries {
  CheckSeries(std::shared_ptr<const CheckConfig> check, std::shared_ptr<const LatencyBuckets> buckets);
  // The config a reload gives the same series: settings that are not labels may have changed.
  void take_settings(std::shared_ptr<const CheckConfig> check);
  // check, probe, target first, then the configured labels.
  Labels labels() const;

  // The check's config, shared with the scheduler's job rather than copied: what the status
  // page shows of it (run_from, warnings, timeout, options) is read from here.
  std::shared_ptr<const CheckConfig> config;
  // The labels as exposition text (name="value",...), escaped once here rather than at every
  // scrape for every series of the check.
  std::string label_text;
  const ProbeKind* kind;
  std::span<const std::string_view> reasons;  // result_reasons(*kind)

  // Parallel to `reasons`. Exposed from the first run counted under each (success always), so a
  // check carries no zero series for failures it has never had.
  std::vector<std::uint64_t> runs_by_reason;
  LatencyHistogram latency;
  bool has_run = false;
  bool up = false;
  std::string_view last_reason;
  std::vector<double> last_phase_seconds;  // parallel to kind->phases; 0 for phases not reached
  std::vector<Fact> last_facts;
  std::string last_detail;
  double last_seconds = 0;  // how long the last run that set the state took
  double last_run_timestamp = 0;
  double last_success_timestamp = 0;  // 0 until the first success
  double state_since = 0;             // when up last changed (the first result counts); 0 before it
  std::unique_ptr<RunHistory> history;  // null until the first run
  std::uint64_t results = 0;             // runs that set the state (record())
  std::uint64_t transient_failures = 0;  // held-back failures that a re-run contradicted
};

enum class Transition { none, first_result, went_up, went_down };

class ResultsStore {
 public:
  // Makes the store hold exactly `checks`: series of checks still present (same label set)
  // keep their counters, series of removed checks are dropped, new ones start at zero.
  void configure(std::span<const std::shared_ptr<const CheckConfig>> checks);
  void configure(const std::vector<CheckConfig>& checks);  // each copied into a shared config
  // The latency buckets of every check's histogram ([agent] latency_buckets). A change restarts
  // each histogram at zero (its old counts do not fit the new buckets), as a counter reset.
  void set_latency_buckets(std::span<const double> upper_bounds);
  // Records a run of the check with this series key; ignored if it is no longer configured.
  // `confirms` marks the re-run of a held-back failure: when it succeeded, the failure was
  // transient.
  Transition record(const std::string& series_key, const RunRecord& run, bool confirms = false);
  // A run that does not set the check's state: a failure held back until re-runs confirm it,
  // or a confirmation re-run other than the one whose result stands. It counts among the runs
  // by result and in the latency histogram, but leaves up, last result and facts as they were.
  void record_run_only(const std::string& series_key, const RunRecord& run);
  // Calls `visit` for every series, in series-key order, under the store's lock taken for a
  // batch of series at a time (record() gets its turn between batches). A reload between two
  // batches is seen from the next batch on; every series visited is whole.
  void visit(const std::function<void(const CheckSeries&)>& visit) const;
  // Calls `visit` with the series of the check named `name`, under the lock; false when there is none.
  bool visit_check(std::string_view name, const std::function<void(const CheckSeries&)>& visit) const;
  std::size_t size() const;
  // Whether every configured check has a result (a store with none has nothing to wait for).
  bool all_have_run() const;
  // Results recorded for one check (record(), not held-back failures): tests wait on this.
  std::uint64_t runs(const std::string& series_key) const;
  // Blocks until runs(series_key) >= count or `limit` passes; returns whether it got there.
  bool wait_for_runs(const std::string& series_key, std::uint64_t count, std::chrono::milliseconds limit) const;

 private:
  // Under mutex_; nullptr when the key is not configured.
  CheckSeries* find(std::string_view series_key) const;

  mutable std::mutex mutex_;
  mutable std::condition_variable recorded_;
  std::map<std::string, std::unique_ptr<CheckSeries>> series_;  // by series key: owns, and orders visit()
  // The same series hashed by key: record() runs once per probe, and with thousands of checks
  // the ordered map's string compares showed in the profile (tests/bench).
  std::unordered_map<std::string_view, CheckSeries*> by_key_;
  std::shared_ptr<const LatencyBuckets> latency_buckets_;
};

// The agent's own figures, for connectivity_agent_* series.
class AgentHealth {
 public:
  AgentHealth();
  prometheus::Histogram scheduler_lag;
  std::atomic<std::int64_t> probes_in_flight{0};
  std::atomic<std::uint64_t> skipped_runs{0};
  std::atomic<std::int64_t> checks_configured{0};
  std::atomic<std::uint64_t> reloads_succeeded{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  std::atomic<bool> last_reload_successful{true};
  std::atomic<double> last_reload_success_timestamp{0};
};

double to_unix_seconds(std::chrono::system_clock::time_point t);

}  // namespace connectivity

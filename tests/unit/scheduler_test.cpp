// The scheduler with scripted probes: what it promises (interval, spread, deadline,
// cancellation, no overlap, bounded concurrency) independent of any network.
#include "agent/scheduler.h"
#include "probes/resolver.h"
#include "tests/support/loopback.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>

namespace connectivity {
namespace {

using namespace std::chrono_literals;

// What scripted probes saw. Only touched on the io_context's thread.
struct Observations {
  std::vector<Clock::time_point> starts;
  int running = 0;
  int max_running = 0;
  int cancelled = 0;
  int completed = 0;
};

// Works for `hold` (forever when nullopt) unless cancelled first; throws when asked to.
class ScriptedProbe final : public Probe {
 public:
  ScriptedProbe(Observations& seen, std::optional<Clock::duration> hold, bool throws = false)
      : seen_(seen), hold_(hold), throws_(throws) {}

  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override {
    seen_.starts.push_back(Clock::now());
    seen_.max_running = std::max(seen_.max_running, ++seen_.running);
    ctx.begin_phase("work");
    asio::steady_timer work(ctx.executor(), hold_ ? Clock::now() + *hold_ : Clock::time_point::max());
    auto [error] = co_await work.async_wait(asio::as_tuple(asio::use_awaitable));
    --seen_.running;
    if (error == asio::error::operation_aborted) {
      ++seen_.cancelled;
      co_return ProbeResult{reason::timeout, "cancelled"};
    }
    ++seen_.completed;
    if (throws_) throw std::runtime_error("scripted failure");
    co_return ProbeResult{reason::success};
  }

 private:
  Observations& seen_;
  std::optional<Clock::duration> hold_;
  bool throws_;
};

constexpr std::string_view kPhases[] = {"work"};
const ProbeKind kScripted{.name = "scripted", .phases = kPhases, .extra_reasons = {}, .make = {}};

CheckConfig scripted_check(std::string name, std::shared_ptr<const Probe> probe, Clock::duration interval,
                           Clock::duration timeout) {
  CheckConfig c;
  c.name = std::move(name);
  c.kind = &kScripted;
  c.target = parse_target("127.0.0.1:9");
  c.interval = std::chrono::duration_cast<std::chrono::milliseconds>(interval);
  c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  c.probe = std::move(probe);
  return c;
}

struct Harness {
  explicit Harness(std::size_t limit = 64)
      : resolver(std::make_unique<Resolver>(1)),
        scheduler(std::make_unique<Scheduler>(io, store, health, *resolver, limit)) {}
  ~Harness() {
    scheduler.reset();
    resolver.reset();
  }
  // Runs handlers until `done` holds; false if it did not within `limit`.
  bool run_until(const std::function<bool()>& done, Clock::duration limit = 10s) {
    const auto give_up = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > give_up) return false;
      io.run_one_for(10ms);
    }
    return true;
  }
  const CheckSeries* series(const std::string& name) const {
    const CheckSeries* found = nullptr;
    store.visit([&](const CheckSeries& s) {
      if (s.config->name == name) found = &s;
    });
    return found;  // pointer stays valid while the check stays configured
  }

  asio::io_context io;
  ResultsStore store;
  AgentHealth health;
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<Scheduler> scheduler;
};

// A scrape visits the store a batch of series at a time (so record() is not held off for a
// whole scrape): across the batches every series is still seen once, in order.
TEST(ResultsStore, VisitSeesEverySeriesOnceInOrderAcrossBatches) {
  ResultsStore store;
  std::vector<CheckConfig> checks;
  for (int i = 0; i < 200; ++i) {
    std::string name = std::to_string(1000 + i);
    checks.push_back(scripted_check("check-" + name, nullptr, 1s, 1s));
  }
  store.configure(checks);
  std::vector<std::string> seen;
  store.visit([&](const CheckSeries& s) { seen.push_back(s.config->name); });
  ASSERT_EQ(seen.size(), checks.size());
  for (std::size_t i = 0; i < checks.size(); ++i) EXPECT_EQ(seen[i], checks[i].name);

  RunRecord run;
  run.reason = reason::success;
  EXPECT_EQ(store.record(checks.back().series_key(), run), Transition::first_result);
  EXPECT_EQ(store.runs(checks.back().series_key()), 1u);
  EXPECT_EQ(store.record("no such key", run), Transition::none);
}

TEST(Schedule, SpreadOffsetsCoverTheIntervalEvenly) {
  const auto interval = 10s;
  std::array<int, 10> deciles{};
  for (int i = 0; i < 1000; ++i) {
    const auto offset = spread_offset("check-" + std::to_string(i), interval);
    ASSERT_GE(offset, Clock::duration::zero());
    ASSERT_LT(offset, interval);
    ++deciles[static_cast<std::size_t>(offset * 10 / interval)];
  }
  for (int count : deciles) {
    EXPECT_GT(count, 60);   // 100 expected in each tenth
    EXPECT_LT(count, 140);
  }
  EXPECT_EQ(spread_offset("oclc", interval), spread_offset("oclc", interval));  // stable across restarts
}

TEST(Scheduler, FirstRunsWaitForTheirSpreadSlot) {
  Harness h;
  Observations seen;
  std::vector<CheckConfig> checks;
  std::map<std::string, Clock::duration> offsets;
  for (int i = 0; i < 20; ++i) {
    const std::string name = "c" + std::to_string(i);
    offsets[name] = spread_offset(name, 400ms);
    checks.push_back(scripted_check(name, std::make_shared<ScriptedProbe>(seen, 0ms), 400ms, 100ms));
  }
  const auto applied = Clock::now();
  h.scheduler->apply(checks);
  // Offsets are below one interval, so the first 20 starts are the 20 checks' first runs.
  ASSERT_TRUE(h.run_until([&] { return seen.starts.size() >= checks.size(); }));
  // Every first run began no earlier than its own slot: they did not all start at once.
  ASSERT_GE(seen.starts.size(), checks.size());
  std::vector<Clock::duration> sorted_offsets;
  sorted_offsets.reserve(offsets.size());
  for (const auto& [name, offset] : offsets) sorted_offsets.push_back(offset);
  std::sort(sorted_offsets.begin(), sorted_offsets.end());
  std::vector<Clock::time_point> sorted_starts(seen.starts.begin(),
                                              std::next(seen.starts.begin(), static_cast<std::ptrdiff_t>(checks.size())));
  std::sort(sorted_starts.begin(), sorted_starts.end());
  for (std::size_t i = 0; i < checks.size(); ++i)
    EXPECT_GE(sorted_starts[i], applied + sorted_offsets[i]) << "run " << i << " started before its slot";
}

TEST(Scheduler, RunsOnItsIntervalNeverEarly) {
  Harness h;
  Observations seen;
  const auto interval = 50ms;
  auto check = scripted_check("steady", std::make_shared<ScriptedProbe>(seen, 0ms), interval, 20ms);
  const auto applied = Clock::now();
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return seen.starts.size() >= 6; }));
  const auto first_slot = applied + spread_offset("steady", interval);
  for (std::size_t k = 0; k < seen.starts.size(); ++k)
    EXPECT_GE(seen.starts[k], first_slot + static_cast<int>(k) * interval) << "run " << k << " came early";
  EXPECT_EQ(seen.max_running, 1);
  EXPECT_EQ(h.health.scheduler_lag.Collect().histogram.sample_count, seen.starts.size());
}

// "Run now" on the status page: the check runs at once, out of turn, and its turn still comes
// when it was due; a check running at that moment is busy, an unknown one not found.
TEST(Scheduler, RunNowRunsOutOfTurnAndKeepsTheSchedule) {
  Harness h;
  Observations seen;
  const auto interval = 2s;
  auto check = scripted_check("on-demand", std::make_shared<ScriptedProbe>(seen, 0ms), interval, 1s);
  const auto applied = Clock::now();
  h.scheduler->apply({check});
  const auto first_turn = applied + spread_offset("on-demand", interval);
  h.run_until([&] { return false; }, 20ms);  // the loop is waiting for its turn
  ASSERT_LT(Clock::now() + 100ms, first_turn) << "spread offset too short for this test; rename the check";

  const auto asked = Clock::now();
  const Scheduler::OutOfTurnRun run = h.scheduler->run_now("on-demand");
  EXPECT_EQ(run.outcome, Scheduler::OutOfTurn::started);
  EXPECT_EQ(run.series_key, check.series_key());
  EXPECT_EQ(run.results_before, 0u);
  EXPECT_EQ(run.longest, 2 * check.timeout + check.confirm_runs * check.confirm_delay);
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }, 1s));
  ASSERT_EQ(seen.starts.size(), 1u);
  EXPECT_LT(seen.starts[0], first_turn) << "the run waited for its turn";
  EXPECT_GE(seen.starts[0], asked);

  // The turn comes as it was due, not one interval after the extra run.
  ASSERT_TRUE(h.run_until([&] { return seen.starts.size() >= 2; }, 4s));
  EXPECT_GE(seen.starts[1], first_turn);
  EXPECT_LT(seen.starts[1], first_turn + 500ms);
  EXPECT_EQ(h.scheduler->run_now("no such check").outcome, Scheduler::OutOfTurn::not_found);
}

// Every waiting check has a place in one queue under one timer: a check added with a turn
// earlier than the one the timer waits for must wake it sooner.
TEST(Scheduler, ACheckWithAnEarlierTurnIsNotHeldBehindALaterOne) {
  Harness h;
  Observations slow_seen;
  Observations fast_seen;
  auto slow = scripted_check("slow-mover", std::make_shared<ScriptedProbe>(slow_seen, 0ms), 60s, 1s);
  const auto applied = Clock::now();
  h.scheduler->apply({slow});
  h.io.poll();  // apply() armed the timer for the slow check's turn; nothing else is due
  ASSERT_GT(applied + spread_offset("slow-mover", 60s), Clock::now() + 5s)
      << "spread offset too short for this test; rename the check";

  const auto interval = 40ms;
  auto fast = scripted_check("fast", std::make_shared<ScriptedProbe>(fast_seen, 0ms), interval, 20ms);
  const auto added = Clock::now();
  h.scheduler->apply({slow, fast});
  ASSERT_TRUE(h.run_until([&] { return fast_seen.starts.size() >= 3; }, 4s))
      << "the new check waited behind the turn the timer was armed for";
  const auto first_slot = added + spread_offset("fast", interval);
  for (std::size_t k = 0; k < fast_seen.starts.size(); ++k)
    EXPECT_GE(fast_seen.starts[k], first_slot + static_cast<int>(k) * interval) << "run " << k << " came early";
  EXPECT_TRUE(slow_seen.starts.empty()) << "the slow check ran before its turn";
}

// A reload that replaces all checks but one: the old jobs (their configs and probes) go with their
// loops, not when their old turns would have come.
TEST(Scheduler, ReplacedChecksAreLetGoAtOnceNotAtTheirOldTurns) {
  Harness h;
  Observations seen;
  auto old_probe = std::make_shared<ScriptedProbe>(seen, 0ms);
  const std::weak_ptr<const Probe> old_watch = old_probe;
  // One check stays, so the scheduler is not simply left without checks.
  const auto kept = scripted_check("kept", std::make_shared<ScriptedProbe>(seen, 0ms), 600s, 1s);
  std::vector<CheckConfig> old_checks{kept};
  std::vector<CheckConfig> new_checks{kept};
  for (int i = 0; i < 50; ++i) {
    old_checks.push_back(scripted_check("old-" + std::to_string(i), old_probe, 600s, 1s));
    new_checks.push_back(scripted_check("new-" + std::to_string(i), std::make_shared<ScriptedProbe>(seen, 0ms), 600s, 1s));
  }
  h.scheduler->apply(old_checks);
  old_checks.clear();
  old_probe.reset();
  h.io.poll();
  ASSERT_FALSE(old_watch.expired());

  h.scheduler->apply(new_checks);
  ASSERT_TRUE(h.run_until([&] { return old_watch.expired(); }, 2s))
      << "the replaced checks are still held, waiting for turns minutes away";
  EXPECT_EQ(h.scheduler->running_loops(), 51u);
  EXPECT_EQ(h.store.size(), 51u);
}

TEST(Scheduler, RunNowOfACheckThatIsRunningIsBusy) {
  Harness h;
  Observations seen;
  auto check = scripted_check("long-runner", std::make_shared<ScriptedProbe>(seen, std::nullopt), 60s, 3s);
  h.scheduler->apply({check});
  h.run_until([&] { return false; }, 20ms);
  ASSERT_EQ(h.scheduler->run_now("long-runner").outcome, Scheduler::OutOfTurn::started);
  ASSERT_TRUE(h.run_until([&] { return seen.running == 1; }, 1s));
  EXPECT_EQ(h.scheduler->run_now("long-runner").outcome, Scheduler::OutOfTurn::busy);
}

TEST(Scheduler, DeadlineCutsOffAHangingProbe) {
  Harness h;
  Observations seen;
  auto check = scripted_check("hangs", std::make_shared<ScriptedProbe>(seen, std::nullopt), 1s, 50ms);
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }));
  EXPECT_EQ(seen.cancelled, 1);  // the probe itself was cancelled, not abandoned
  EXPECT_EQ(seen.running, 0);
  const auto* s = h.series("hangs");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->last_reason, reason::timeout);
  EXPECT_FALSE(s->up);
  EXPECT_GT(s->last_phase_seconds[0], 0.0);
  EXPECT_LE(s->last_phase_seconds[0], 0.05);
}

// Learns a fact, then hangs: the deadline must not lose what was learned.
class LearnsThenHangs final : public Probe {
 public:
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override {
    ctx.set_facts_so_far({Fact{"connectivity_test_info", "learned before the hang", {{"step", "first"}}}});
    ctx.begin_phase("work");
    asio::steady_timer forever(ctx.executor(), Clock::time_point::max());
    co_await forever.async_wait(asio::use_awaitable);
    co_return ProbeResult{reason::success};
  }
};

TEST(Scheduler, ACutOffRunKeepsTheFactsLearnedSoFar) {
  const RunRecord run = testing::run_once(scripted_check("learns", std::make_shared<LearnsThenHangs>(), 1s, 50ms));
  EXPECT_EQ(run.reason, reason::timeout);
  ASSERT_EQ(run.facts.size(), 1u);
  EXPECT_EQ(run.facts[0].metric, "connectivity_test_info");
  EXPECT_EQ(run.facts[0].labels, (Labels{{"step", "first"}}));
}

TEST(Scheduler, RunsOfOneCheckNeverOverlap) {
  Harness h;
  Observations seen;
  // Every run works until its deadline, which equals the interval: the tightest case.
  auto check = scripted_check("busy", std::make_shared<ScriptedProbe>(seen, std::nullopt), 40ms, 40ms);
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return seen.starts.size() >= 5; }));
  EXPECT_EQ(seen.max_running, 1);
}

TEST(Scheduler, ConcurrencyIsBounded) {
  Harness h(/*limit=*/2);
  Observations seen;
  std::vector<CheckConfig> checks;
  checks.reserve(6);
  for (int i = 0; i < 6; ++i)
    checks.push_back(scripted_check("load" + std::to_string(i), std::make_shared<ScriptedProbe>(seen, 60ms), 100ms, 100ms));
  h.scheduler->apply(checks);
  ASSERT_TRUE(h.run_until([&] { return seen.completed >= 12; }));
  // Six checks each wanting 60 ms every 100 ms need more than two slots: the limit was reached
  // and held.
  EXPECT_EQ(seen.max_running, 2);
  EXPECT_LE(h.health.probes_in_flight.load(), 2);
}

// Applies one check whose probe hangs until cancelled, and runs until that probe is in flight.
CheckConfig start_hanging_check(Harness& h, Observations& seen, const std::string& name) {
  auto check = scripted_check(name, std::make_shared<ScriptedProbe>(seen, std::nullopt), 2s, 2s);
  h.scheduler->apply({check});
  EXPECT_TRUE(h.run_until([&] { return seen.running == 1; }));
  return check;
}

TEST(Scheduler, RemovingACheckCancelsItsProbeInFlight) {
  Harness h;
  Observations seen;
  start_hanging_check(h, seen, "removed");
  ASSERT_EQ(seen.running, 1);
  h.scheduler->apply({});
  ASSERT_TRUE(h.run_until([&] { return h.scheduler->running_loops() == 0; }));
  EXPECT_EQ(seen.cancelled, 1);
  EXPECT_EQ(seen.running, 0);
  EXPECT_EQ(h.store.size(), 0u);
  EXPECT_EQ(h.health.probes_in_flight.load(), 0);
}

TEST(Scheduler, ReapplyingAnUnchangedCheckLeavesItRunning) {
  Harness h;
  Observations seen;
  const auto check = start_hanging_check(h, seen, "kept");
  ASSERT_EQ(seen.running, 1);
  h.scheduler->apply({check});
  h.io.poll();  // a cancellation, had there been one, completes here
  EXPECT_EQ(seen.cancelled, 0);
  EXPECT_EQ(seen.running, 1);

  auto changed = check;
  changed.timeout = 1s;  // same series, new schedule: the old run is cancelled, counters kept
  h.scheduler->apply({changed});
  ASSERT_TRUE(h.run_until([&] { return seen.cancelled == 1 && h.scheduler->running_loops() == 1; }));
  EXPECT_EQ(h.store.size(), 1u);
}

// A reload builds every check's probe anew; one whose check is unchanged keeps running on the
// probe it had, which holds what it learned across runs (the DNS probe's address set and its
// change counter would otherwise start over at every reload). The new config is taken all
// the same: its series shows a changed run_from.
TEST(Scheduler, AnUnchangedCheckKeepsItsProbeAcrossAReload) {
  Harness h;
  Observations first;
  Observations reloaded;
  auto check = scripted_check("kept", std::make_shared<ScriptedProbe>(first, 0ms), 20ms, 1s);
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return first.completed >= 1; }));

  auto again = check;
  again.probe = std::make_shared<ScriptedProbe>(reloaded, 0ms);
  again.run_from = {"web_server"};
  h.scheduler->apply({again});
  const int before = first.completed;
  ASSERT_TRUE(h.run_until([&] { return first.completed + reloaded.completed >= before + 3; }));
  EXPECT_EQ(reloaded.starts.size(), 0u) << "the reload's new probe object ran: what the old one learned is lost";
  EXPECT_GE(first.completed, before + 3);
  ASSERT_NE(h.series("kept"), nullptr);
  EXPECT_EQ(h.series("kept")->config->run_from, std::vector<std::string>{"web_server"});
}

TEST(Scheduler, AProbeThatThrowsIsRecordedAsError) {
  Harness h;
  Observations seen;
  auto check = scripted_check("throws", std::make_shared<ScriptedProbe>(seen, 0ms, /*throws=*/true), 1s, 500ms);
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }));
  EXPECT_EQ(h.series("throws")->last_reason, reason::error);
}

// Answers each run with the next result of its script (the last one repeats), at once.
class SequenceProbe final : public Probe {
 public:
  SequenceProbe(Observations& seen, std::vector<std::string_view> script) : seen_(seen), script_(std::move(script)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override {
    const std::size_t n = seen_.starts.size();
    seen_.starts.push_back(Clock::now());
    ctx.begin_phase("work");
    co_return ProbeResult{script_[std::min(n, script_.size() - 1)], "scripted"};
  }

 private:
  Observations& seen_;
  std::vector<std::string_view> script_;
};

CheckConfig confirming_check(std::string name, Observations& seen, std::vector<std::string_view> script) {
  auto check = scripted_check(std::move(name), std::make_shared<SequenceProbe>(seen, std::move(script)), 500ms, 50ms);
  check.confirm_delay = 30ms;
  return check;
}

std::uint64_t runs_with(const CheckSeries& s, std::string_view result) {
  auto it = std::find(s.reasons.begin(), s.reasons.end(), result);
  return it == s.reasons.end() ? 0 : s.runs_by_reason[static_cast<std::size_t>(it - s.reasons.begin())];
}

TEST(Scheduler, AFailureThatAReRunContradictsLeavesTheCheckUp) {
  Harness h;
  Observations seen;
  auto check = confirming_check("blip", seen, {reason::timeout, reason::success});
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }));
  const auto* s = h.series("blip");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->up);
  EXPECT_EQ(s->last_reason, reason::success);
  EXPECT_EQ(s->transient_failures, 1u);
  EXPECT_EQ(runs_with(*s, reason::timeout), 1u);  // the lost run still counts by its result
  EXPECT_EQ(runs_with(*s, reason::success), 1u);
  // The first re-run succeeded: the other three never start.
  ASSERT_EQ(seen.starts.size(), 2u);
  EXPECT_GE(seen.starts[1] - seen.starts[0], 30ms);  // the re-run waits its delay
}

TEST(Scheduler, OneSuccessAmongTheReRunsKeepsTheCheckUp) {
  Harness h;
  Observations seen;
  // Up, then a failure whose first two re-runs fail as well and whose third succeeds.
  auto check = confirming_check("lossy", seen,
                                {reason::success, reason::timeout, reason::timeout, reason::refused, reason::success});
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 2; }, 5s));
  const auto* s = h.series("lossy");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->up);
  EXPECT_EQ(s->transient_failures, 1u);
  EXPECT_EQ(runs_with(*s, reason::timeout), 2u);
  EXPECT_EQ(runs_with(*s, reason::refused), 1u);
  EXPECT_EQ(seen.starts.size(), 5u);  // the fourth re-run is not started
}

TEST(Scheduler, AFailureEveryReRunConfirmsTakesTheCheckDown) {
  Harness h;
  Observations seen;
  auto check = confirming_check("outage", seen, {reason::success, reason::refused});
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 2; }, 5s));
  const auto* s = h.series("outage");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->up);
  EXPECT_EQ(s->last_reason, reason::refused);
  EXPECT_EQ(s->transient_failures, 0u);
  EXPECT_EQ(runs_with(*s, reason::refused), 5u);  // the failed run and its four re-runs
  EXPECT_EQ(seen.starts.size(), 6u);
}

TEST(Scheduler, TheLatestReRunsResultStands) {
  Harness h;
  Observations seen;
  // Timeouts, then the last re-run is refused: the port is now closed, which is the news.
  auto check = confirming_check("changing", seen,
                                {reason::success, reason::timeout, reason::timeout, reason::timeout, reason::timeout,
                                 reason::refused});
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 2; }, 5s));
  EXPECT_FALSE(h.series("changing")->up);
  EXPECT_EQ(h.series("changing")->last_reason, reason::refused);
}

TEST(Scheduler, ReRunsOverlapInsteadOfWaitingForEachOther) {
  Harness h;
  Observations seen;
  // Never answers: each run takes the whole 50 ms timeout, re-runs start 10 ms apart.
  auto check = scripted_check("silent", std::make_shared<ScriptedProbe>(seen, std::nullopt), 500ms, 50ms);
  check.confirm_delay = 10ms;
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }, 5s));
  EXPECT_FALSE(h.series("silent")->up);
  EXPECT_EQ(seen.starts.size(), 5u);
  EXPECT_EQ(seen.cancelled, 5);
  // All four re-runs were in flight together: one after another, at most one would be.
  EXPECT_EQ(seen.max_running, 4);
}

TEST(Scheduler, ACheckAlreadyDownIsNotReRun) {
  Harness h;
  Observations seen;
  auto check = confirming_check("dead", seen, {reason::refused});
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 3; }, 5s));
  // The first slot confirms (five runs); every later slot runs once.
  EXPECT_EQ(seen.starts.size(), 7u);
  EXPECT_EQ(runs_with(*h.series("dead"), reason::refused), 7u);
}

TEST(Scheduler, WithoutConfirmationOneFailureTakesTheCheckDown) {
  Harness h;
  Observations seen;
  auto check = confirming_check("unconfirmed", seen, {reason::timeout, reason::success});
  check.confirm_runs = 0;
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }));
  EXPECT_FALSE(h.series("unconfirmed")->up);
  EXPECT_EQ(seen.starts.size(), 1u);
}

TEST(Scheduler, OnlyTheReRunsThatEndBeforeTheNextSlotStart) {
  Harness h;
  Observations seen;
  // An instant failure, re-runs 400 ms apart, a 500 ms timeout, a 2 s interval: re-runs that
  // would end 0.9, 1.3 and 1.7 s after the slot fit (the third while the failure came within
  // 300 ms of the slot), the fourth (2.1 s) never. Wide enough that a loaded machine starting
  // the run late does not change the count (CI met a 30 ms lag when the steps were 40 ms).
  auto check = confirming_check("narrow", seen, {reason::refused});
  check.interval = 2000ms;
  check.timeout = 500ms;
  check.confirm_delay = 400ms;
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }));
  EXPECT_FALSE(h.series("narrow")->up);
  EXPECT_EQ(seen.starts.size(), 4u);
  EXPECT_EQ(h.health.skipped_runs.load(), 0u);
}

TEST(Scheduler, NoReRunWhenItCouldNotEndBeforeTheNextSlot) {
  Harness h;
  Observations seen;
  auto check = confirming_check("tight", seen, {reason::timeout, reason::success});
  check.interval = 100ms;  // a 60 ms pause and a 50 ms timeout do not fit in the 100 ms left
  check.confirm_delay = 60ms;
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return h.store.runs(check.series_key()) >= 1; }));
  EXPECT_FALSE(h.series("tight")->up);
  EXPECT_EQ(h.series("tight")->transient_failures, 0u);
  EXPECT_EQ(h.health.skipped_runs.load(), 0u);
}

TEST(Scheduler, StopEndsEveryLoopAndReportsIt) {
  Harness h;
  Observations seen;
  std::vector<CheckConfig> checks;
  checks.reserve(5);
  for (int i = 0; i < 5; ++i)
    checks.push_back(scripted_check("s" + std::to_string(i), std::make_shared<ScriptedProbe>(seen, std::nullopt), 100ms, 100ms));
  h.scheduler->apply(checks);
  ASSERT_TRUE(h.run_until([&] { return seen.running >= 1; }));
  bool ended = false;
  h.scheduler->stop([&] { ended = true; });
  ASSERT_TRUE(h.run_until([&] { return ended; }));
  EXPECT_EQ(h.scheduler->running_loops(), 0u);
  EXPECT_EQ(seen.running, 0);
}

// A check name whose first run comes within `slot` of the scheduler starting.
std::string name_scheduled_within(Clock::duration slot, Clock::duration interval) {
  for (int i = 0; i < 100000; ++i) {
    std::string name = "early-" + std::to_string(i);
    if (spread_offset(name, interval) < slot) return name;
  }
  throw std::logic_error("no early name");
}

// Fails at once the first time, then never answers (until cancelled).
class FailsThenHangsProbe final : public Probe {
 public:
  explicit FailsThenHangsProbe(Observations& seen) : seen_(seen) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override {
    const bool first = seen_.starts.empty();
    seen_.starts.push_back(Clock::now());
    ctx.begin_phase("work");
    if (first) co_return ProbeResult{reason::refused, "scripted"};
    seen_.max_running = std::max(seen_.max_running, ++seen_.running);
    asio::steady_timer forever(ctx.executor(), Clock::time_point::max());
    co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
    --seen_.running;
    ++seen_.cancelled;
    co_return ProbeResult{reason::timeout, "cancelled"};
  }

 private:
  Observations& seen_;
};

// SIGTERM while a failure is being confirmed: the re-runs in flight (here with a 20 s timeout)
// are cancelled, the loop ends, and nothing is recorded.
TEST(Scheduler, StoppingDuringReRunsCancelsThemAndEndsTheLoop) {
  Harness h;
  Observations seen;
  auto check = scripted_check(name_scheduled_within(100ms, 60s), std::make_shared<FailsThenHangsProbe>(seen), 60s, 20s);
  check.confirm_delay = 10ms;
  h.scheduler->apply({check});
  ASSERT_TRUE(h.run_until([&] { return seen.running == 4; }, 5s));
  bool ended = false;
  h.scheduler->stop([&] { ended = true; });
  ASSERT_TRUE(h.run_until([&] { return ended; }, 5s));  // far sooner than the re-runs' 20 s timeout
  EXPECT_EQ(seen.running, 0);
  EXPECT_EQ(seen.cancelled, 4);
  EXPECT_EQ(h.store.runs(check.series_key()), 0u);  // nothing recorded from a stopped check
}

// An http check whose probe is busy reading a body that never ends, as fast as it can.
struct EndlessBodyCheck {
  testing::HttpPeer peer{[](testing::HttpPeer::Connection& c) {
    const std::string block(std::size_t{64} * 1024, 'x');
    if (!c.send("HTTP/1.1 200 OK\r\n\r\n")) return;
    while (c.send(block)) {
    }
  }};
  CheckConfig check = testing::make_check("http", peer.url(), "address_family = \"ipv4\"\nmax_body_bytes = 1073741824", "10s");

  EndlessBodyCheck() {
    check.name = name_scheduled_within(50ms, check.interval);
  }
  // Runs the io_context until the probe is well into the body: 16 MiB, or 4 MiB under wine,
  // whose sockets carry some 3 MB/s (a round trip to wineserver per overlapped receive), so
  // that 16 MiB could take longer than run_until's 10 s on a loaded machine.
  bool busy(Harness& h) const {
    const std::uint64_t well_into = std::uint64_t{testing::under_wine() ? 4u : 16u} * 1024 * 1024;
    return h.run_until([&] { return peer.bytes_sent() > well_into; });
  }
};

// Cancellation of the check loops is what shutdown waits for: a probe reading a body that
// never pauses must still see it at once (it did not: every read completed before the
// cancellation could land, and teardown left frames that outlived the scheduler).
TEST(Scheduler, StopEndsAProbeReadingAnEndlessBodyPromptly) {
  Harness h;
  EndlessBodyCheck endless;
  h.scheduler->apply({endless.check});
  ASSERT_TRUE(endless.busy(h));
  bool ended = false;
  h.scheduler->stop([&] { ended = true; });
  // The bound is the defect's own (loops that never ended): generous against a loaded machine.
  EXPECT_TRUE(h.run_until([&] { return ended; }, 1s));
  EXPECT_EQ(h.scheduler->running_loops(), 0u);
}

TEST(Scheduler, DestroyingItWhileAProbeReadsAnEndlessBodyEndsPromptly) {
  Harness h;
  EndlessBodyCheck endless;
  h.scheduler->apply({endless.check});
  ASSERT_TRUE(endless.busy(h));
  const auto started = Clock::now();
  h.scheduler.reset();
  EXPECT_LT(Clock::now() - started, 1s);
}

// A probe that ignores cancellation (a bug, but one the scheduler must survive): it works on
// between polls of the io_context, for ever.
class DeafProbe final : public Probe {
 public:
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override {
    co_await asio::this_coro::throw_if_cancelled(false);
    ctx.begin_phase("work");
    for (;;) co_await asio::post(ctx.executor(), asio::as_tuple(asio::use_awaitable));
  }
};

TEST(Scheduler, TeardownIsBoundedAndSafeWhenAProbeIgnoresCancellation) {
  auto h = std::make_unique<Harness>(1);
  const auto name = name_scheduled_within(20ms, 1s);
  h->scheduler->apply({scripted_check(name, std::make_shared<DeafProbe>(), 1s, 1s)});
  ASSERT_TRUE(h->run_until([&] { return h->health.probes_in_flight.load() == 1; }));
  const auto started = Clock::now();
  h->scheduler.reset();
  EXPECT_LT(Clock::now() - started, 3s);  // its own bound (2 s) with slack for a loaded machine
  // The deaf probe's frame is still in the io_context: destroying that (and the store and
  // health the scheduler used, before it) must not touch the scheduler that is gone.
  h.reset();
}

}  // namespace
}  // namespace connectivity

#include "agent/scheduler.h"

#include "agent/log.h"
#include "probes/resolver.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <iterator>
#include <memory>
#include <vector>
#include <utility>
#include <boost/asio/post.hpp>
#include <variant>

namespace connectivity {

namespace {

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  // FNV leaves the high bits of short, similar names ("check-1", "check-2") alike: mix them
  // (the splitmix64 finalizer) before taking a fraction from the top bits.
  hash ^= hash >> 30;
  hash *= 0xbf58476d1ce4e5b9ull;
  hash ^= hash >> 27;
  hash *= 0x94d049bb133111ebull;
  hash ^= hash >> 31;
  return hash;
}

// A probe that throws is a bug in the probe, not a network outcome: report it as `error`
// rather than losing the run. A probe cut off at its deadline may throw operation_aborted from
// its next wait: that is caught here too, and the run reported as the timeout it was.
asio::awaitable<ProbeResult> run_guarded(const Probe& probe, ProbeContext& ctx) {
  try {
    co_return co_await probe.run(ctx);
  } catch (const std::exception& e) {
    co_return ProbeResult{reason::error, std::string("probe failed: ") + e.what()};
  }
}

}  // namespace

namespace {

// A run's deadline: one timer whose expiry emits the cancellation the probe's operations are
// bound to. Racing the probe against a timer with `probe || timer` did the same at the price of
// a coroutine spawned for each side and a parallel group to join them, on every run. Shared with
// the timer's handler, which may already be queued when the probe ends.
struct Deadline {
  Deadline(const asio::any_io_executor& executor, Clock::time_point at) : timer(executor, at) {}
  asio::steady_timer timer;
  asio::cancellation_signal signal;
  bool expired = false;
};

}  // namespace

asio::awaitable<RunRecord> run_probe(const CheckConfig& check, Resolver& resolver) {
  const auto started = Clock::now();
  const auto deadline = started + check.timeout;
  const auto executor = co_await asio::this_coro::executor;
  ProbeContext ctx(executor, check.target, deadline, resolver);
  auto limit = std::make_shared<Deadline>(executor, deadline);
  limit->timer.async_wait([limit](const boost::system::error_code& error) {
    if (error) return;  // cancelled: the probe ended first
    limit->expired = true;
    limit->signal.emit(asio::cancellation_type::terminal);
  });
  // A stop of the check (the scheduler's cancellation of this coroutine) reaches the probe too,
  // as through the same signal: no probe outlives its run.
  asio::cancellation_slot stop = (co_await asio::this_coro::cancellation_state).slot();
  if (stop.is_connected())
    stop.assign([limit](asio::cancellation_type type) { limit->signal.emit(type); });
  ProbeResult result = co_await asio::co_spawn(executor, run_guarded(*check.probe, ctx),
                                               asio::bind_cancellation_slot(limit->signal.slot(), asio::use_awaitable));
  if (stop.is_connected()) stop.clear();
  limit->timer.cancel();
  RunRecord run;
  if (!limit->expired) {
    run.reason = result.reason;
    run.detail = std::move(result.detail);
    run.facts = std::move(result.facts);
  } else {
    ctx.end_phase_at(deadline);
    run.reason = reason::timeout;
    run.detail = "no result within " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(check.timeout).count()) + "ms";
    if (!ctx.phases().empty()) run.detail += " (in phase " + std::string(ctx.phases().back().name) + ")";
    run.facts = ctx.facts_so_far();
  }
  ctx.end_phase();
  run.phases = ctx.phases();
  run.total = std::max(Clock::now() - started, Clock::duration::zero());
  run.finished_at = std::chrono::system_clock::now();
  co_return run;
}

Clock::duration spread_offset(std::string_view check_name, Clock::duration interval) {
  const double fraction = static_cast<double>(fnv1a(check_name) >> 11) / static_cast<double>(1ull << 53);
  return std::chrono::duration_cast<Clock::duration>(interval * fraction);
}

struct ConcurrencyLimit::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : wakeup(ex, Clock::time_point::max()) {}
  asio::steady_timer wakeup;
  bool granted = false;
};

ConcurrencyLimit::ConcurrencyLimit(asio::any_io_executor executor, std::size_t limit)
    : executor_(std::move(executor)), limit_(std::max<std::size_t>(limit, 1)) {}

asio::awaitable<bool> ConcurrencyLimit::acquire() {
  if (in_use_ < limit_ && waiters_.empty()) {
    ++in_use_;
    co_return true;
  }
  Waiter waiter(executor_);
  waiters_.push_back(&waiter);
  // However the wait ends (granted, cancelled, or the coroutine destroyed), the queue must not
  // keep a pointer to this frame.
  struct Unqueue {
    ConcurrencyLimit& limit;
    Waiter& waiter;
    ~Unqueue() { std::erase(limit.waiters_, &waiter); }
  } unqueue{*this, waiter};
  co_await waiter.wakeup.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return waiter.granted;
}

void ConcurrencyLimit::release() {
  if (!waiters_.empty()) {
    // Hand the slot straight to the next waiter: in_use_ stays the same.
    Waiter* next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;
    next->wakeup.cancel();
    return;
  }
  if (in_use_ > 0) --in_use_;
}

Scheduler::Scheduler(asio::io_context& io, ResultsStore& store, AgentHealth& health, Resolver& resolver,
                     std::size_t max_concurrent_probes)
    : io_(io),
      store_(store),
      health_(health),
      resolver_(resolver),
      limit_(io.get_executor(), max_concurrent_probes),
      turn_timer_(io) {}

Scheduler::~Scheduler() {
  stop();
  *alive_ = false;  // a turn timer handler already queued must not touch this object
  // Coroutine frames refer to this object: let them unwind while it is alive. They end at
  // their next suspension point, so this is quick; the bound guards against a stuck probe.
  const auto give_up = Clock::now() + std::chrono::seconds(2);
  io_.restart();
  while (!loops_.empty() && Clock::now() < give_up) io_.run_one_for(std::chrono::milliseconds(50));
  if (loops_.empty()) return;
  log::error("check loops still running at shutdown", {{"count", std::to_string(loops_.size())}});
  // Such a loop is inside its probe (every other wait of a loop ends on cancellation), holding
  // a concurrency slot: disowned, it gives nothing back and reports nothing when it ends.
  for (const auto& job : loops_) job->disowned = true;
}

void Scheduler::apply(const std::vector<CheckConfig>& checks) {
  // One copy of each check's config, shared by its job and its series.
  std::vector<std::shared_ptr<CheckConfig>> fresh;
  fresh.reserve(checks.size());
  for (const auto& c : checks) fresh.push_back(std::make_shared<CheckConfig>(c));
  std::map<std::string_view, const std::shared_ptr<CheckConfig>*, std::less<>> wanted;
  for (const auto& c : fresh) wanted.emplace(c->name, &c);

  for (auto it = jobs_.begin(); it != jobs_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && (*w->second)->same_schedule_as(*it->second->check)) {
      // Runs on as it is: the new config differs at most in what the schedule does not read
      // (warnings, run_from). It keeps its probe object, which holds what the probe learned
      // across runs (the DNS probe's address set and its change counter); the freshly loaded
      // one would start that over at every reload.
      (*w->second)->probe = it->second->check->probe;
      it->second->check = *w->second;
      ++it;
      continue;
    }
    cancel(it->second);
    it = jobs_.erase(it);
  }
  if (jobs_.empty()) clear_turn_queue();
  const std::vector<std::shared_ptr<const CheckConfig>> shared(fresh.begin(), fresh.end());
  store_.configure(shared);
  for (const auto& c : shared)
    if (!jobs_.contains(c->name)) start(c);
  health_.checks_configured = static_cast<std::int64_t>(jobs_.size());
}

Scheduler::OutOfTurnRun Scheduler::run_now(std::string_view name) {
  auto it = jobs_.find(std::string(name));
  if (it == jobs_.end() || it->second->stopped) return {};
  const Job& job = *it->second;
  OutOfTurnRun run{.outcome = OutOfTurn::busy,
                   .series_key = job.series_key,
                   .results_before = store_.runs(job.series_key),
                   .longest = 2 * job.check->timeout + job.check->confirm_runs * job.check->confirm_delay};
  if (!job.waiting) return run;
  const std::shared_ptr<Job>& waiting = it->second;
  waiting->out_of_turn = true;
  leave_turn_queue(*waiting);  // its turn still ahead: take_turn() waits for it again after this run
  // Started from the queue, as a turn is: the caller has its answer before the run begins.
  asio::post(io_, [this, waiting] {
    if (waiting->finished || waiting->disowned) return;  // (then this scheduler may be gone)
    begin_turn(waiting);
  });
  run.outcome = OutOfTurn::started;
  return run;
}

void Scheduler::stop(std::function<void()> all_ended) {
  for (auto& [name, job] : jobs_) cancel(job);
  jobs_.clear();
  health_.checks_configured = 0;
  clear_turn_queue();  // the cancels above end each waiting loop; nothing is left to wake
  all_ended_ = std::move(all_ended);
  if (loops_.empty() && all_ended_) asio::post(io_, std::exchange(all_ended_, {}));
}

void Scheduler::start(const std::shared_ptr<const CheckConfig>& check) {
  auto job = std::make_shared<Job>();
  job->check = check;
  job->series_key = check->series_key();
  job->next = Clock::now() + spread_offset(check->name, check->interval);
  jobs_.emplace(check->name, job);
  loops_.insert(job);
  wait_for_turn(job);
}

// Between its runs a check is its Job and a place in the turn queue, and no coroutine: a loop
// coroutine suspended between runs kept about 1.8 KiB of frames for every check (heaptrack,
// 10,000 checks), the largest part of a check's memory. Each turn is a coroutine of its own.
void Scheduler::wait_for_turn(const std::shared_ptr<Job>& job) {
  job->waiting = true;
  turn_queue_.push_back(Place{job->next, job, ++job->ticket});
  std::push_heap(turn_queue_.begin(), turn_queue_.end(), LaterPlace{});
  arm_turn_timer();
}

void Scheduler::leave_turn_queue(Job& job) {
  job.waiting = false;
  ++job.ticket;  // its place is void now
  // Void places go when they come up, or all at once when they are most of the queue, so a
  // reload that replaces every check does not keep the old jobs for a whole interval.
  if (++void_places_ >= turn_queue_.size() / 2) {
    std::erase_if(turn_queue_, [](const Place& place) { return place.ticket != place.job->ticket; });
    std::make_heap(turn_queue_.begin(), turn_queue_.end(), LaterPlace{});
    void_places_ = 0;
  }
}

void Scheduler::arm_turn_timer() {
  if (turn_queue_.empty()) return;
  const Clock::time_point earliest = turn_queue_.front().at;
  if (turn_timer_at_ && *turn_timer_at_ <= earliest) return;  // it wakes in time for this one
  turn_timer_at_ = earliest;
  turn_timer_.expires_at(earliest);  // a wait for a later place, if any, ends as aborted
  turn_timer_.async_wait([this, alive = alive_](const boost::system::error_code& error) {
    if (error || !*alive) return;  // re-armed, cleared, or the scheduler is gone
    on_turn_timer();
  });
}

void Scheduler::on_turn_timer() {
  turn_timer_at_.reset();
  const Clock::time_point now = Clock::now();
  while (!turn_queue_.empty() && turn_queue_.front().at <= now) {
    std::pop_heap(turn_queue_.begin(), turn_queue_.end(), LaterPlace{});
    Place place = std::move(turn_queue_.back());
    turn_queue_.pop_back();
    if (place.ticket != place.job->ticket) {
      if (void_places_ > 0) --void_places_;
      continue;
    }
    begin_turn(place.job);
  }
  arm_turn_timer();
}

void Scheduler::clear_turn_queue() {
  turn_queue_.clear();
  turn_queue_.shrink_to_fit();
  void_places_ = 0;
  turn_timer_.cancel();
  turn_timer_at_.reset();
}

void Scheduler::begin_turn(const std::shared_ptr<Job>& job) {
  // Its turn came, run_now() asked for it, or cancel() ended the wait.
  job->waiting = false;
  if (job->stopped) {
    loop_ended(job, nullptr);
    return;
  }
  job->running = true;
  asio::co_spawn(io_, take_turn(job),
                 asio::bind_cancellation_slot(job->stop_signal.slot(), [this, job](const std::exception_ptr& e, bool go_on) {
                   if (job->disowned) return;  // the scheduler is gone
                   job->running = false;
                   if (e || !go_on || job->stopped)
                     loop_ended(job, e);
                   else
                     wait_for_turn(job);
                 }));
}

void Scheduler::loop_ended(const std::shared_ptr<Job>& job, const std::exception_ptr& e) {
  job->finished = true;
  loops_.erase(job);
  if (loops_.empty() && all_ended_) asio::post(io_, std::exchange(all_ended_, {}));
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& error) {
    if (error.code() == asio::error::operation_aborted) return;  // cancelled: expected
    log::error("check loop ended", {{"check", job->check->name}, {"error", error.what()}});
  } catch (const std::exception& error) {
    log::error("check loop ended", {{"check", job->check->name}, {"error", error.what()}});
  }
}

void Scheduler::cancel(const std::shared_ptr<Job>& job) {
  job->stopped = true;
  // co_spawn forwards an emit to the coroutine by dispatch, through a handler that lives in
  // the job's signal. Emitted from outside the io thread, that becomes a post which can run
  // after the loop (and the job) are gone. Emitting from a handler on the io thread that holds
  // the job, and only while its loop runs, keeps every piece alive.
  // A job not finished is in loops_, which the scheduler's destructor waits to empty (or
  // disowns): `this` is alive whenever the handler goes past its first line.
  asio::post(io_, [this, job] {
    if (job->finished || job->disowned) return;
    if (job->running) {
      job->stop_signal.emit(asio::cancellation_type::terminal);
    } else if (job->waiting) {  // waiting for its turn: its place goes, and the loop ends
      leave_turn_queue(*job);
      loop_ended(job, nullptr);
    }
    // Otherwise a turn is about to begin (run_now): begin_turn() sees `stopped` and ends it.
  });
}

asio::awaitable<std::optional<RunRecord>> Scheduler::run_limited(std::shared_ptr<Job> job,
                                                                 std::optional<Clock::time_point> scheduled) {
  if (!co_await limit_.acquire()) co_return std::nullopt;
  struct Slot {
    ConcurrencyLimit& limit;
    AgentHealth& health;
    const Job& job;
    ~Slot() {
      if (job.disowned) return;  // both belong to a scheduler that is gone
      --health.probes_in_flight;
      limit.release();
    }
  } slot{limit_, health_, *job};
  ++health_.probes_in_flight;
  if (job->stopped) co_return std::nullopt;

  if (scheduled) health_.scheduler_lag.Observe(std::chrono::duration<double>(Clock::now() - *scheduled).count());
  // Held for the run: a reload may give the job a new config meanwhile.
  const std::shared_ptr<const CheckConfig> check = job->check;
  RunRecord run = co_await run_probe(*check, resolver_);
  if (job->stopped) co_return std::nullopt;  // removed or replaced while running: its result is not reported
  co_return run;
}

asio::awaitable<std::vector<RunRecord>> Scheduler::rerun(std::shared_ptr<Job> job, Clock::time_point failed_at,
                                                         unsigned index, unsigned last,
                                                         std::shared_ptr<bool> contradicted) {
  using namespace asio::experimental::awaitable_operators;
  std::vector<RunRecord> runs;
  asio::steady_timer timer(io_);
  timer.expires_at(failed_at + index * job->check->confirm_delay);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (job->stopped || *contradicted) co_return runs;

  auto this_one = [](Scheduler& self, std::shared_ptr<Job> job,
                     std::shared_ptr<bool> contradicted) -> asio::awaitable<std::optional<RunRecord>> {
    std::optional<RunRecord> run = co_await self.run_limited(std::move(job), std::nullopt);
    if (run && run->reason == reason::success) *contradicted = true;
    co_return run;
  };
  if (index == last) {
    if (auto run = co_await this_one(*this, job, contradicted)) runs.push_back(std::move(*run));
    co_return runs;
  }
  // This re-run and the later ones at once: the next starts at its own time, not after this ends.
  auto [mine, later] =
      co_await (this_one(*this, job, contradicted) && rerun(job, failed_at, index + 1, last, contradicted));
  if (!mine) co_return runs;  // cancelled
  runs.push_back(std::move(*mine));
  std::move(later.begin(), later.end(), std::back_inserter(runs));
  co_return runs;
}

// One turn of a check: its run, the re-runs that confirm a failure, the record, and when the
// next turn is due. False when the check was stopped meanwhile.
asio::awaitable<bool> Scheduler::take_turn(std::shared_ptr<Job> job) {
  // Woken before its turn by run_now(): this run is extra, and the turn still comes at `next`.
  // A turn that came meanwhile is this run.
  const bool extra = std::exchange(job->out_of_turn, false) && Clock::now() < job->next;
  const Clock::time_point scheduled = extra ? Clock::now() : job->next;

  std::optional<RunRecord> run = co_await run_limited(job, scheduled);
  if (!run) co_return false;
  // A check that was up goes down only when its re-runs fail too. They overlap, so a failure
  // that took the whole timeout is confirmed in one more timeout plus the delays, not one
  // timeout per re-run; and only those that can end before the next scheduled run start (the
  // schedule is never delayed). The slot is released while they wait, so a wide outage does
  // not hold the limit idle.
  bool confirmed = false;
  if (run->reason != reason::success && !job->down && job->check->confirm_runs > 0) {
    const Clock::time_point failed_at = Clock::now();
    if (const unsigned fit = job->check->confirm_runs_that_fit(failed_at - scheduled); fit > 0) {
      store_.record_run_only(job->series_key, *run);
      std::vector<RunRecord> reruns = co_await rerun(job, failed_at, 1, fit, std::make_shared<bool>(false));
      if (job->stopped || reruns.empty()) co_return false;
      // The verdict: a success if any (the failure was transient), else the latest re-run.
      auto verdict = std::find_if(reruns.begin(), reruns.end(),
                                  [](const RunRecord& r) { return r.reason == reason::success; });
      if (verdict == reruns.end())
        verdict = std::prev(reruns.end());
      else
        log::debug("transient failure: a re-run succeeded", {{"check", job->check->name}, {"reason", run->reason}});
      for (auto it = reruns.begin(); it != reruns.end(); ++it)
        if (it != verdict) store_.record_run_only(job->series_key, *it);
      run = std::move(*verdict);
      confirmed = true;
    }
  }

  const Transition change = store_.record(job->series_key, *run, confirmed);
  job->down = run->reason != reason::success;
  if (change == Transition::went_down || (change == Transition::first_result && job->down))
    log::warn("check down", {{"check", job->check->name}, {"target", job->check->target.to_string()},
                             {"reason", run->reason}, {"detail", run->detail}});
  else if (change == Transition::went_up || change == Transition::first_result)
    log::info("check up", {{"check", job->check->name}, {"target", job->check->target.to_string()}});

  if (extra) co_return true;  // the schedule as it was; a turn passed during the run starts at once
  // Fixed rate: the next run is due one interval after this one was due. Slots already missed
  // (the agent was starved) are skipped and counted, never run in a burst.
  const Clock::duration interval = job->check->interval;
  job->next = scheduled + interval;
  const auto now = Clock::now();
  if (job->next <= now) {
    const auto missed = (now - job->next) / interval + 1;
    health_.skipped_runs += static_cast<std::uint64_t>(missed);
    job->next += missed * interval;
  }
  co_return true;
}

}  // namespace connectivity

// Runs every configured check on its interval, on one io_context.
#pragma once

#include "agent/config.h"
#include "agent/results.h"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace connectivity {

class Resolver;

// One run of `check`'s probe, cut off at its timeout. Never throws for probe outcomes; a
// probe cancelled by its caller (terminal cancellation) returns promptly too.
asio::awaitable<RunRecord> run_probe(const CheckConfig& check, Resolver& resolver);

// Where in its interval a check first runs: a fixed fraction from a hash of its name, the way
// Prometheus offsets scrapes. Stable across restarts and reloads; spreads checks that share an
// interval instead of starting them all at once.
Clock::duration spread_offset(std::string_view check_name, Clock::duration interval);

// At most `limit` probes in flight; the rest wait their turn in order. Used from one thread.
class ConcurrencyLimit {
 public:
  ConcurrencyLimit(asio::any_io_executor executor, std::size_t limit);
  // True when a slot is held (release it), false when the wait was cancelled.
  asio::awaitable<bool> acquire();
  void release();
  std::size_t in_use() const { return in_use_; }

 private:
  struct Waiter;
  asio::any_io_executor executor_;
  std::size_t limit_;
  std::size_t in_use_ = 0;
  std::deque<Waiter*> waiters_;
};

class Scheduler {
 public:
  Scheduler(asio::io_context& io, ResultsStore& store, AgentHealth& health, Resolver& resolver,
            std::size_t max_concurrent_probes);
  // Cancels what is left and runs the io_context (bounded) until every check loop has ended.
  // A loop still running after that (its probe ignores cancellation) is disowned: whenever its
  // frame later resumes or is destroyed with the io_context, it touches nothing of this
  // scheduler's (its slot, the limit, the health counters). The probe itself still holds the
  // Resolver: the io_context must not run again once the resolver is gone (the Agent destroys
  // it last, and only the io_context's destruction follows).
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Makes the running set equal `checks`: unchanged checks keep their schedule, removed ones
  // are cancelled (a probe in flight included), changed and new ones start. Call on the
  // io_context's thread (or before it runs).
  void apply(const std::vector<CheckConfig>& checks);
  // Cancels every check. `all_ended` (optional) is called on the io thread once every loop
  // has unwound: the io_context then has no scheduler work left.
  void stop(std::function<void()> all_ended = {});
  std::size_t running_loops() const { return loops_.size(); }

  enum class OutOfTurn { started, busy, not_found };
  struct OutOfTurnRun {
    OutOfTurn outcome = OutOfTurn::not_found;
    std::string series_key;          // of the check, when found
    std::uint64_t results_before = 0;  // its results recorded so far (ResultsStore::runs)
    Clock::duration longest{};       // how long the run and its confirmation re-runs may take
  };
  // Runs the check named `name` now rather than at its turn ("run now" on the status page);
  // its schedule stays as it was. busy: it is running or confirming a failure now. Call on the
  // io_context's thread.
  OutOfTurnRun run_now(std::string_view name);

 private:
  struct Job {
    std::shared_ptr<const CheckConfig> check;  // the same object its series holds
    std::string series_key;
    asio::cancellation_signal stop_signal;
    bool stopped = false;   // removed: its results are no longer wanted
    bool finished = false;  // its loop has ended
    bool down = false;      // its last recorded result was a failure
    bool disowned = false;  // outlived the scheduler: its frames must not touch it
    Clock::time_point next;        // when its next turn is due
    std::uint32_t ticket = 0;      // of its current place in the turn queue; older places are void
    bool waiting = false;          // it has a place in the turn queue
    bool running = false;          // a turn (run and re-runs) is under way
    bool out_of_turn = false;      // run_now() asked for a run before the turn
  };

  void start(const std::shared_ptr<const CheckConfig>& check);
  void cancel(const std::shared_ptr<Job>& job);
  // Gives the job its place in the turn queue, at job->next.
  void wait_for_turn(const std::shared_ptr<Job>& job);
  // Starts the job's turn (or ends its loop, if it was stopped meanwhile).
  void begin_turn(const std::shared_ptr<Job>& job);
  // Arms the turn timer for the earliest place in the queue, if it is not armed for it already.
  void arm_turn_timer();
  void on_turn_timer();
  // Makes the job's place void: it is no longer waiting.
  void leave_turn_queue(Job& job);
  void clear_turn_queue();
  asio::awaitable<bool> take_turn(std::shared_ptr<Job> job);
  void loop_ended(const std::shared_ptr<Job>& job, const std::exception_ptr& e);
  // One run under the concurrency limit; empty when cancelled or the check was removed. The
  // scheduler's lag is observed for scheduled runs, not for confirmation re-runs.
  asio::awaitable<std::optional<RunRecord>> run_limited(std::shared_ptr<Job> job,
                                                        std::optional<Clock::time_point> scheduled);
  // Confirmation re-runs `index` to `last` of a failure at `failed_at`: re-run k starts at
  // failed_at + k * confirm_delay, whether or not the ones before it have ended, and none starts
  // once one has succeeded (`contradicted`). Results in start order; empty when cancelled.
  asio::awaitable<std::vector<RunRecord>> rerun(std::shared_ptr<Job> job, Clock::time_point failed_at, unsigned index,
                                                unsigned last, std::shared_ptr<bool> contradicted);

  asio::io_context& io_;
  ResultsStore& store_;
  AgentHealth& health_;
  Resolver& resolver_;
  ConcurrencyLimit limit_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // by check name
  // Every job whose loop has not ended, removed ones too. A set: a reload or shutdown ending
  // 100,000 loops must not scan a list for each.
  std::unordered_set<std::shared_ptr<Job>> loops_;
  std::function<void()> all_ended_;
  // Every waiting check's place, earliest first, under one timer. A timer per check cost its
  // pending wait (about 400 bytes a check, heaptrack of 10,000) besides the timer itself; a
  // place here is 32 bytes. A place whose ticket is not its job's current one is void (the job
  // was run now, cancelled, or waits again) and is dropped when it comes up.
  struct Place {
    Clock::time_point at;
    std::shared_ptr<Job> job;
    std::uint32_t ticket;
  };
  struct LaterPlace {
    bool operator()(const Place& a, const Place& b) const { return a.at > b.at; }
  };
  std::vector<Place> turn_queue_;  // a heap under LaterPlace
  asio::steady_timer turn_timer_;
  std::optional<Clock::time_point> turn_timer_at_;  // what the timer waits for; none: not armed
  std::size_t void_places_ = 0;  // about how many places are void (exact after a compaction)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once the destructor ran
};

}  // namespace connectivity

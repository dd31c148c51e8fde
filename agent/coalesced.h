// A job run on a thread of its own for whoever asks, where requests that arrive together share
// one run: the config reload (a flood of POST /-/reload does the work once, not once per
// request) and the scrape's rendering (one thread's memory, not every web worker's).
//
// A caller is answered by a run that started after it asked, never by one already under way
// (that one may have read the old config file or the old results). So at most one run is in
// progress and at most one more is wanted: every caller that asks during a run shares the next.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace connectivity {

template <class T>
class CoalescedJob {
 public:
  // `job` runs on the object's own thread; it must not throw.
  explicit CoalescedJob(std::function<T()> job) : job_(std::move(job)), thread_([this] { loop(); }) {}
  ~CoalescedJob() {
    close();
    thread_.join();  // after the run in progress, if any
  }
  CoalescedJob(const CoalescedJob&) = delete;
  CoalescedJob& operator=(const CoalescedJob&) = delete;

  // Waits for the result of a run that starts after this call. nullopt when closed first, or
  // when `bound` passes first (the run still happens).
  std::optional<T> run(std::chrono::milliseconds bound) {
    std::unique_lock lock(mutex_);
    if (closed_) return std::nullopt;
    const std::uint64_t wanted = next_;
    wanted_ = true;
    ++waiting_next_;
    changed_.notify_all();
    if (!changed_.wait_for(lock, bound, [&] { return finished_ >= wanted || closed_; }) || finished_ < wanted) {
      --(wanted == next_ ? waiting_next_ : waiting_running_);
      return std::nullopt;
    }
    // The result of our run or (woken late) of a later one, which is as fresh.
    std::optional<T> result = result_;
    if (--untaken_ == 0) result_.reset();  // kept no longer than someone waits for it
    return result;
  }

  // Asks for a run without waiting for it.
  void request() {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    wanted_ = true;
    changed_.notify_all();
  }

  // No run starts after this; every caller waiting gets nullopt now.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }

  // Runs started so far.
  std::uint64_t runs() const {
    std::lock_guard lock(mutex_);
    return next_ - 1;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return wanted_ || closed_; });
      if (closed_) return;
      const std::uint64_t run = next_++;  // callers from now on wait for the one after
      wanted_ = false;
      waiting_running_ = std::exchange(waiting_next_, 0);
      lock.unlock();
      T result = job_();
      lock.lock();
      finished_ = run;
      untaken_ += std::exchange(waiting_running_, 0);
      if (untaken_ > 0) result_ = std::move(result);
      changed_.notify_all();
    }
  }

  std::function<T()> job_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t next_ = 1;      // the number the next run will have
  std::uint64_t finished_ = 0;  // the number of the last run that finished; its result,
  std::optional<T> result_;     // until every caller waiting for it (or an earlier run) has it:
  std::uint64_t untaken_ = 0;
  std::uint64_t waiting_next_ = 0;     // callers waiting for run `next_`
  std::uint64_t waiting_running_ = 0;  // callers waiting for the run in progress
  bool wanted_ = false;                // someone asked for run `next_`
  bool closed_ = false;
  std::thread thread_;  // last: starts once everything above is set up
};

}  // namespace connectivity

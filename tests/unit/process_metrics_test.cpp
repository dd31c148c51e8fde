// process_* series: each figure read from the running test process, and moving the way the
// process makes it move (more CPU, one more thread, one more open file).
#include "exporters/process_metrics.h"
#include "exporters/prometheus_exposition.h"

#include <gtest/gtest.h>

#if defined(_WIN32)
#include <windows.h>
#endif

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

namespace connectivity {
namespace {

// Wine keeps no handle count (GetProcessHandleCount answers 0): there process_open_fds is left
// out, as the collector leaves out any figure it cannot read. Windows itself has one.
bool under_wine() {
#if defined(_WIN32)
  const HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  return ntdll && GetProcAddress(ntdll, "wine_get_version");
#else
  return false;
#endif
}

TEST(ProcessMetrics, EveryFigureIsReadOnThisPlatform) {
  ProcessStats stats = read_process_stats();
  if (under_wine()) {
    EXPECT_FALSE(stats.open_fds);
    stats.open_fds = 1;  // for the checks below
  }
  ASSERT_TRUE(stats.cpu_seconds && stats.resident_bytes && stats.virtual_bytes && stats.open_fds && stats.max_fds &&
              stats.start_time_seconds && stats.threads);
  EXPECT_GE(*stats.cpu_seconds, 0);
  EXPECT_GT(*stats.resident_bytes, 1024 * 1024);  // a gtest binary holds more than 1 MiB
  EXPECT_GT(*stats.virtual_bytes, 0);
  EXPECT_GT(*stats.open_fds, 0);
  EXPECT_GE(*stats.max_fds, *stats.open_fds);
  EXPECT_GE(*stats.threads, 1);
  // Started in the last day, and not in the future (a unit or epoch mistake is far off both).
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(*stats.start_time_seconds, now + 1);
  EXPECT_GT(*stats.start_time_seconds, now - 86400);
}

TEST(ProcessMetrics, CpuTimeGrowsWithWork) {
  const double before = *read_process_stats().cpu_seconds;
  // Bounded: stops at 0.2 s more CPU time or 20 s of wall time, whichever comes first.
  volatile std::uint64_t sink = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  double after = before;
  while (after < before + 0.2 && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 10'000'000; ++i) sink = sink + static_cast<std::uint64_t>(i);
    after = *read_process_stats().cpu_seconds;
  }
  EXPECT_GE(after, before + 0.2);
}

TEST(ProcessMetrics, AThreadAndAFileShowInTheCounts) {
  const ProcessStats before = read_process_stats();
  std::mutex mutex;
  std::condition_variable changed;
  bool started = false, release = false;
  std::thread extra([&] {
    std::unique_lock lock(mutex);
    started = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
  });
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return started; });
  }
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  const ProcessStats during = read_process_stats();
  std::fclose(file);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  changed.notify_all();
  extra.join();
  EXPECT_GE(*during.threads, *before.threads + 1);
  if (!under_wine()) {
    EXPECT_GE(*during.open_fds, *before.open_fds + 1);
  }
}

TEST(ProcessMetrics, TheSeriesAreExportedWithTheirTypes) {
  const std::string text = render_text_exposition(ProcessCollector{});
  for (const char* line : {"# TYPE process_cpu_seconds_total counter\n", "# TYPE process_resident_memory_bytes gauge\n",
                           "# TYPE process_virtual_memory_bytes gauge\n", "# TYPE process_open_fds gauge\n",
                           "# TYPE process_max_fds gauge\n", "# TYPE process_start_time_seconds gauge\n",
                           "# TYPE process_threads gauge\n"}) {
    if (under_wine() && std::string(line).find("open_fds") != std::string::npos) {
      EXPECT_EQ(text.find(line), std::string::npos) << "Wine has no handle count: the series is left out";
      continue;
    }
    EXPECT_NE(text.find(line), std::string::npos) << line << "in:\n" << text;
  }
  EXPECT_NE(text.find("\nprocess_threads "), std::string::npos) << text;
}

}  // namespace
}  // namespace connectivity

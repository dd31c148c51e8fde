#include "exporters/process_metrics.h"

#include <cstdint>
#include <string>
#include <utility>

#if defined(_WIN32)
#include <windows.h>
// windows.h first: these need its types.
#include <psapi.h>
#include <tlhelp32.h>
#else
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#endif

namespace connectivity {

#if defined(_WIN32)

namespace {

// FILETIME counts 100 ns steps; as an absolute time, since 1601-01-01.
double filetime_seconds(const FILETIME& t) {
  const std::uint64_t ticks = (static_cast<std::uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
  return static_cast<double>(ticks) / 1e7;
}
constexpr double kUnixEpochAsFiletimeSeconds = 11644473600.0;
// Windows has no descriptor limit; a process can hold at most 2^24 handles (the figure
// client_golang reports too).
constexpr double kMaxHandles = 16.0 * 1024 * 1024;

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const HANDLE self = GetCurrentProcess();
  FILETIME created, exited, kernel, user;
  if (GetProcessTimes(self, &created, &exited, &kernel, &user)) {
    stats.cpu_seconds = filetime_seconds(kernel) + filetime_seconds(user);
    stats.start_time_seconds = filetime_seconds(created) - kUnixEpochAsFiletimeSeconds;
  }
  PROCESS_MEMORY_COUNTERS memory{};
  if (GetProcessMemoryInfo(self, &memory, sizeof(memory))) stats.resident_bytes = static_cast<double>(memory.WorkingSetSize);
  // The user-mode address space this process has in use: total less what is still free.
  MEMORYSTATUSEX address_space{};
  address_space.dwLength = sizeof(address_space);
  if (GlobalMemoryStatusEx(&address_space))
    stats.virtual_bytes = static_cast<double>(address_space.ullTotalVirtual - address_space.ullAvailVirtual);
  // A running process always holds handles: 0 means the count is not kept (Wine's stub).
  DWORD handles = 0;
  if (GetProcessHandleCount(self, &handles) && handles > 0) stats.open_fds = static_cast<double>(handles);
  stats.max_fds = kMaxHandles;
  const HANDLE snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snapshot != INVALID_HANDLE_VALUE) {
    const DWORD pid = GetCurrentProcessId();
    THREADENTRY32 entry{};
    entry.dwSize = sizeof(entry);
    double threads = 0;
    for (BOOL more = Thread32First(snapshot, &entry); more; more = Thread32Next(snapshot, &entry))
      if (entry.th32OwnerProcessID == pid) ++threads;
    CloseHandle(snapshot);
    if (threads > 0) stats.threads = threads;
  }
  return stats;
}

#else

namespace {

// The system's boot time (Unix seconds): /proc/self/stat gives the start in ticks since boot.
std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  std::ifstream stat_file("/proc/self/stat");
  std::string line;
  if (std::getline(stat_file, line)) {
    // The command name, field 2, is in parentheses and may hold spaces: fields are counted
    // from after its closing one (field 3, the state).
    const auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(line.substr(close + 2));
      std::vector<std::string> f;
      for (std::string field; fields >> field;) f.push_back(field);
      // Field n of proc(5) is f[n - 3].
      if (f.size() >= 22) {
        const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
        const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
        stats.cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
        stats.threads = std::stod(f[20 - 3]);
        if (auto boot = boot_time()) stats.start_time_seconds = *boot + std::stod(f[22 - 3]) / ticks;
        stats.virtual_bytes = std::stod(f[23 - 3]);
        stats.resident_bytes = std::stod(f[24 - 3]) * page;
      }
    }
  }
  std::error_code error;
  double open = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end; it.increment(error))
    ++open;
  if (!error) stats.open_fds = open;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    stats.max_fds = static_cast<double>(limit.rlim_cur);
  return stats;
}

#endif

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  const ProcessStats stats = read_process_stats();
  std::vector<prometheus::MetricFamily> out;
  auto add = [&out](std::string name, std::string help, prometheus::MetricType type, const std::optional<double>& value) {
    if (!value) return;
    prometheus::MetricFamily family{std::move(name), std::move(help), type, {}};
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter)
      metric.counter.value = *value;
    else
      metric.gauge.value = *value;
    family.metric.push_back(std::move(metric));
    out.push_back(std::move(family));
  };
  using prometheus::MetricType;
  add("process_cpu_seconds_total", "CPU time the agent has used, user and system together.", MetricType::Counter, stats.cpu_seconds);
  add("process_resident_memory_bytes", "Memory the agent holds in RAM (on Windows its working set).", MetricType::Gauge, stats.resident_bytes);
  add("process_virtual_memory_bytes", "The agent's address space (on Windows its private bytes).", MetricType::Gauge, stats.virtual_bytes);
  add("process_open_fds", "Descriptors the agent has open: sockets and files (on Windows, handles).", MetricType::Gauge, stats.open_fds);
  add("process_max_fds", "How many descriptors the agent may open (its soft limit).", MetricType::Gauge, stats.max_fds);
  add("process_start_time_seconds", "Unix time the agent started.", MetricType::Gauge,
      stats.start_time_seconds);
  add("process_threads", "Threads the agent runs.", MetricType::Gauge, stats.threads);
  return out;
}

}  // namespace connectivity

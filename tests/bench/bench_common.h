// Small helpers shared by the benchmark drivers: they are measuring instruments, so they
// stay plain POSIX (no Asio) and cost as little as the kernel lets them.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bench {

// The drivers are single-threaded, so strerror and exit are safe here.
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
  std::exit(1);                                                  // NOLINT(concurrency-mt-unsafe)
}

inline std::int64_t now_ns(clockid_t clock = CLOCK_MONOTONIC) {
  timespec t{};
  clock_gettime(clock, &t);
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// CPU (user + system) this process has used, in nanoseconds, threads included.
inline std::int64_t process_cpu_ns() { return now_ns(CLOCK_PROCESS_CPUTIME_ID); }

// Many sockets at once need many descriptors: take the hard limit.
inline void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// "--name value" arguments; every driver takes only those.
inline const char* option(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

inline long option_long(int argc, char** argv, const char* name, long fallback) {
  const char* value = option(argc, argv, name, nullptr);
  return value ? std::strtol(value, nullptr, 10) : fallback;
}

inline double option_double(int argc, char** argv, const char* name, double fallback) {
  const char* value = option(argc, argv, name, nullptr);
  return value ? std::strtod(value, nullptr) : fallback;
}

}  // namespace bench

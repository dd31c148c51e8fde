// The raw floor: what the kernel itself charges a process for a TCP connect and close to a
// loopback listener, with nothing around it. Two shapes:
//   --mode loop  --count N          back-to-back socket/connect/close (the bare cost)
//   --mode paced --rate R --seconds S  the same at R per second, sleeping between connects
//                                   (what any prober at that rate pays at least: a wake-up each)
// Targets cycle over 127.0.0.1:[base-port, base-port + ports). Prints one JSON object.
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace {

bool connect_and_close(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return connected;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = bench::option(argc, argv, "--mode", "loop");
  const long base_port = bench::option_long(argc, argv, "--base-port", 20000);
  const long ports = bench::option_long(argc, argv, "--ports", 100);
  const bool paced = std::strcmp(mode, "paced") == 0;
  const double rate = bench::option_double(argc, argv, "--rate", 1000);
  const double seconds = bench::option_double(argc, argv, "--seconds", 5);
  const long count = paced ? static_cast<long>(rate * seconds) : bench::option_long(argc, argv, "--count", 100000);
  if (ports <= 0 || count <= 0 || rate <= 0) {
    std::fprintf(stderr, "bench_floor: --ports, --count and --rate must be positive\n");
    return 2;
  }

  const std::int64_t period_ns = static_cast<std::int64_t>(1e9 / rate);
  long failures = 0;
  const std::int64_t cpu_start = bench::process_cpu_ns();
  const std::int64_t wall_start = bench::now_ns();
  for (long i = 0; i < count; ++i) {
    if (paced) {
      const std::int64_t due = wall_start + i * period_ns;
      const timespec at{static_cast<time_t>(due / 1'000'000'000), static_cast<long>(due % 1'000'000'000)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
      }
    }
    if (!connect_and_close(static_cast<std::uint16_t>(base_port + i % ports))) ++failures;
  }
  const std::int64_t cpu_ns = bench::process_cpu_ns() - cpu_start;
  const std::int64_t wall_ns = bench::now_ns() - wall_start;
  std::printf("{\"mode\": \"%s\", \"connects\": %ld, \"failures\": %ld, \"cpu_ns\": %lld, \"wall_ns\": %lld}\n", mode,
              count, failures, static_cast<long long>(cpu_ns), static_cast<long long>(wall_ns));
  return failures == 0 ? 0 : 1;
}

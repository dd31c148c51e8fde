// Drives blackbox_exporter the way Prometheus would, at a fixed rate: GET
// /probe?module=M&target=HOST:PORT over a pool of keep-alive connections, the targets cycling
// over [base-port, base-port + ports). Between --warmup and --warmup + --seconds it also reads
// the CPU ticks of --measure-pid (/proc/PID/stat), so the probes completed and the CPU they
// cost are counted over exactly the same window. Prints one JSON object.
//
//   bench_loadgen --port 9115 --module tcp_connect --target-host 127.0.0.1 --base-port 20000
//                 --ports 1000 --rate 1000 --warmup 3 --seconds 15 --measure-pid 1234
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Connection {
  int fd = -1;
  std::string buffer;  // the response read so far
};

// Sum of utime and stime (fields 14 and 15) of /proc/PID/stat, in clock ticks; -1 if gone.
long long cpu_ticks(long pid) {
  if (pid <= 0) return -1;
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(file, line)) return -1;
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoll(field);
    if (index == 15) {
      stime = std::stoll(field);
      break;
    }
  }
  return utime + stime;
}

int connect_to(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) bench::die("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) bench::die("connect to the exporter");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// The length of the complete HTTP/1.1 response at the start of `data`, or 0 while incomplete.
// Content-Length and chunked bodies (Go switches to chunked above about 2 KiB) both occur.
std::size_t complete_response(std::string_view data) {
  const std::size_t header_end = data.find("\r\n\r\n");
  if (header_end == std::string_view::npos) return 0;
  std::string headers(data.substr(0, header_end));
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t at = header_end + 4;
  if (const std::size_t length = headers.find("\r\ncontent-length:"); length != std::string::npos) {
    const std::size_t body = std::stoul(headers.substr(length + 17));
    return data.size() >= at + body ? at + body : 0;
  }
  if (headers.find("transfer-encoding: chunked") == std::string::npos) return 0;
  for (;;) {  // bounded by the data: every pass consumes at least one line
    const std::size_t line_end = data.find("\r\n", at);
    if (line_end == std::string_view::npos) return 0;
    const std::size_t size = std::stoul(std::string(data.substr(at, line_end - at)), nullptr, 16);
    at = line_end + 2 + size + 2;
    if (data.size() < at) return 0;
    if (size == 0) return at;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto exporter_port = static_cast<std::uint16_t>(bench::option_long(argc, argv, "--port", 9115));
  const std::string module = bench::option(argc, argv, "--module", "tcp_connect");
  const std::string target_host = bench::option(argc, argv, "--target-host", "127.0.0.1");
  const long base_port = bench::option_long(argc, argv, "--base-port", 20000);
  const long ports = bench::option_long(argc, argv, "--ports", 100);
  const double rate = bench::option_double(argc, argv, "--rate", 100);
  const double warmup = bench::option_double(argc, argv, "--warmup", 1);
  const double seconds = bench::option_double(argc, argv, "--seconds", 5);
  const long pool_size = bench::option_long(argc, argv, "--connections", 64);
  const long measured_pid = bench::option_long(argc, argv, "--measure-pid", 0);
  if (rate <= 0 || ports <= 0 || pool_size <= 0 || seconds <= 0) {
    std::fprintf(stderr, "bench_loadgen: --rate, --ports, --connections and --seconds must be positive\n");
    return 2;
  }
  bench::raise_fd_limit();

  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Connection> pool(static_cast<std::size_t>(pool_size));
  std::vector<std::size_t> idle;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    pool[i].fd = connect_to(exporter_port);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    epoll_ctl(epoll, EPOLL_CTL_ADD, pool[i].fd, &event);
    idle.push_back(i);
  }
  const int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const auto period_ns = static_cast<long>(1e9 / rate);
  itimerspec schedule{};
  schedule.it_interval = {period_ns / 1'000'000'000, period_ns % 1'000'000'000};
  schedule.it_value = {0, 1};
  timerfd_settime(timer, 0, &schedule, nullptr);
  epoll_event timer_event{};
  timer_event.events = EPOLLIN;
  timer_event.data.u64 = pool.size();
  epoll_ctl(epoll, EPOLL_CTL_ADD, timer, &timer_event);

  const std::int64_t start = bench::now_ns();
  const std::int64_t window_start = start + static_cast<std::int64_t>(warmup * 1e9);
  const std::int64_t window_end = window_start + static_cast<std::int64_t>(seconds * 1e9);
  const std::int64_t drain_limit = window_end + 10'000'000'000;  // in-flight probes get 10 s
  long long sent = 0, succeeded = 0, failed = 0, due = 0, max_backlog = 0;
  long long window_first = -1, window_last = -1, ticks_first = -1, ticks_last = -1;
  long next_port = 0;
  bool issuing = true;

  std::array<epoll_event, 128> events{};
  while (bench::now_ns() < drain_limit && (issuing || static_cast<long>(idle.size()) < pool_size)) {
    const int ready = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 100);
    const std::int64_t now = bench::now_ns();
    if (window_first < 0 && now >= window_start) {
      window_first = succeeded + failed;
      ticks_first = cpu_ticks(measured_pid);
    }
    if (window_last < 0 && now >= window_end) {
      window_last = succeeded + failed;
      ticks_last = cpu_ticks(measured_pid);
      issuing = false;
      due = 0;
    }
    for (int i = 0; i < ready; ++i) {
      const std::size_t index = events[i].data.u64;
      if (index == pool.size()) {
        std::uint64_t expirations = 0;
        if (read(timer, &expirations, sizeof expirations) == sizeof expirations && issuing)
          due += static_cast<long long>(expirations);
        continue;
      }
      Connection& connection = pool[index];
      std::array<char, 16384> chunk{};
      const ssize_t got = read(connection.fd, chunk.data(), chunk.size());
      if (got <= 0) {
        std::fprintf(stderr, "bench_loadgen: the exporter closed a connection\n");
        return 1;
      }
      connection.buffer.append(chunk.data(), static_cast<std::size_t>(got));
      if (const std::size_t length = complete_response(connection.buffer)) {
        const std::string_view response(connection.buffer.data(), length);
        if (response.starts_with("HTTP/1.1 200") && response.find("\nprobe_success 1") != std::string_view::npos)
          ++succeeded;
        else
          ++failed;
        connection.buffer.erase(0, length);
        idle.push_back(index);
      }
    }
    max_backlog = std::max(max_backlog, due);
    while (due > 0 && !idle.empty()) {
      Connection& connection = pool[idle.back()];
      idle.pop_back();
      std::string request = "GET /probe?module=" + module;
      request += "&target=" + target_host;
      request += ":" + std::to_string(base_port + next_port);
      request += " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      next_port = (next_port + 1) % ports;
      if (write(connection.fd, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
        bench::die("write to the exporter");
      ++sent;
      --due;
    }
  }
  const double elapsed = static_cast<double>(bench::now_ns() - start) / 1e9;
  std::printf(
      "{\"sent\": %lld, \"succeeded\": %lld, \"failed\": %lld, \"unanswered\": %lld, \"max_backlog\": %lld, "
      "\"window_completed\": %lld, \"window_cpu_ticks\": %lld, \"clock_ticks_per_second\": %ld, "
      "\"window_seconds\": %.3f, \"elapsed_seconds\": %.3f}\n",
      sent, succeeded, failed, sent - succeeded - failed, max_backlog, window_last - window_first,
      ticks_first >= 0 && ticks_last >= 0 ? ticks_last - ticks_first : -1LL, sysconf(_SC_CLK_TCK), seconds, elapsed);
  return 0;
}

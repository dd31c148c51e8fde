// The benchmark's loopback peer: K listening ports on 127.0.0.1 that accept and close at once
// (the TCP targets), and optionally one port that answers a TDS PRELOGIN only after a fixed
// delay (the accuracy target: the agent's reported `prelogin` phase should be that delay).
//
//   bench_listener --base-port 20000 --ports 1000 [--tds-port 19999 --tds-delay-ms 100]
//
// Prints "ready" on stdout once every port listens (the runner waits for that line), then
// serves until SIGTERM/SIGINT or stdin closes, and prints what it served.
#include "bench_common.h"
#include "tests/support/tds_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <cstdio>
#include <string_view>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

namespace {

volatile sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }

int listen_on(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) bench::die("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::fprintf(stderr, "bind 127.0.0.1:%u: %s\n", port, std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): single-threaded
  }
  if (listen(fd, 4096) != 0) bench::die("listen");
  return fd;
}

// A TDS connection waiting for its PRELOGIN (reading) or for its delay to pass (answering).
struct TdsConnection {
  std::int64_t answer_at_ns = 0;  // 0 while the PRELOGIN has not fully arrived
  std::size_t header_bytes = 0;
  std::array<std::uint8_t, 8> header{};
  std::size_t body_left = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const long base_port = bench::option_long(argc, argv, "--base-port", 20000);
  const long port_count = bench::option_long(argc, argv, "--ports", 100);
  const long tds_port = bench::option_long(argc, argv, "--tds-port", 0);
  const std::int64_t tds_delay_ns = bench::option_long(argc, argv, "--tds-delay-ms", 100) * 1'000'000;
  // --tds-log FILE: a line per answer, "<monotonic ns when written> <ns past its due time>", so
  // the harness can set the peer's own lateness in a window beside what the agent reported.
  FILE* tds_log = nullptr;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string_view(argv[i]) == "--tds-log" && !(tds_log = std::fopen(argv[i + 1], "w"))) bench::die("--tds-log");
  bench::raise_fd_limit();
  signal(SIGTERM, request_stop);
  signal(SIGINT, request_stop);
  signal(SIGPIPE, SIG_IGN);

  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) bench::die("epoll_create1");
  auto watch = [&](int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) bench::die("epoll_ctl");
  };
  std::vector<int> listeners;
  for (long i = 0; i < port_count; ++i) {
    listeners.push_back(listen_on(static_cast<std::uint16_t>(base_port + i)));
    watch(listeners.back(), EPOLLIN);
  }
  const int tds_listener = tds_port > 0 ? listen_on(static_cast<std::uint16_t>(tds_port)) : -1;
  if (tds_listener >= 0) watch(tds_listener, EPOLLIN);
  watch(STDIN_FILENO, EPOLLIN);  // the runner closing our stdin also stops us
  // Answers fall due on a timerfd, not on epoll_wait's millisecond timeout: rounding that up
  // would add up to 1 ms to the delay the accuracy section measures against.
  const int answer_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (answer_timer < 0) bench::die("timerfd_create");
  watch(answer_timer, EPOLLIN);

  // SQL Server 2019's answer (MS-TDS 2.2.6.5), encryption required, from the tests' own builder.
  connectivity::testing::PreloginAnswer answer;
  answer.encryption = 0x03;
  const connectivity::testing::Bytes prelogin_answer = answer.packet();
  std::unordered_map<int, TdsConnection> tds;
  std::deque<int> answer_queue;  // a fixed delay: answers fall due in arrival order
  std::uint64_t accepted = 0, tds_answered = 0, tds_dropped = 0;
  std::int64_t late_ns_max = 0;  // the most any answer went out past its due time
  std::printf("ready\n");
  std::fflush(stdout);

  std::array<epoll_event, 256> events{};
  while (!stop_requested) {
    const int ready = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
    if (ready < 0 && errno != EINTR) bench::die("epoll_wait");
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == answer_timer) {
        std::uint64_t expirations = 0;
        [[maybe_unused]] const auto drained = read(answer_timer, &expirations, sizeof expirations);
      } else if (fd == STDIN_FILENO) {
        char byte;
        if (read(STDIN_FILENO, &byte, 1) <= 0) stop_requested = 1;
      } else if (fd == tds_listener) {
        for (int client; (client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          tds.emplace(client, TdsConnection{});
          watch(client, EPOLLIN);
        }
      } else if (auto found = tds.find(fd); found != tds.end()) {
        TdsConnection& connection = found->second;
        std::array<std::uint8_t, 4096> buffer{};
        const ssize_t got = read(fd, buffer.data(), buffer.size());
        if (got <= 0 || connection.answer_at_ns != 0) {
          // The prober gave up (or sent more than one packet): forget the connection.
          epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
          if (connection.answer_at_ns == 0) {
            ++tds_dropped;
            tds.erase(found);
            close(fd);
          }
          continue;
        }
        std::size_t used = 0;
        while (connection.header_bytes < 8 && used < static_cast<std::size_t>(got)) {
          connection.header[connection.header_bytes++] = buffer[used++];
          if (connection.header_bytes == 8) {
            const std::size_t length = (std::size_t{connection.header[2]} << 8) | connection.header[3];
            connection.body_left = length > 8 ? length - 8 : 0;
          }
        }
        const std::size_t rest = static_cast<std::size_t>(got) - used;
        connection.body_left -= std::min(rest, connection.body_left);
        if (connection.header_bytes == 8 && connection.body_left == 0) {
          connection.answer_at_ns = bench::now_ns() + tds_delay_ns;
          answer_queue.push_back(fd);
        }
      } else {
        for (int client; (client = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
          close(client);
          ++accepted;
        }
      }
    }
    while (!answer_queue.empty() && tds[answer_queue.front()].answer_at_ns <= bench::now_ns()) {
      const int fd = answer_queue.front();
      answer_queue.pop_front();
      const std::int64_t written_at = bench::now_ns();  // each answer's own time, not the batch's
      late_ns_max = std::max(late_ns_max, written_at - tds[fd].answer_at_ns);
      if (write(fd, prelogin_answer.data(), prelogin_answer.size()) == static_cast<ssize_t>(prelogin_answer.size()))
        ++tds_answered;
      else
        ++tds_dropped;
      if (tds_log) {
        std::fprintf(tds_log, "%lld %lld\n", static_cast<long long>(written_at),
                     static_cast<long long>(written_at - tds[fd].answer_at_ns));
        std::fflush(tds_log);
      }
      tds.erase(fd);
      close(fd);
    }
    if (!answer_queue.empty()) {
      const std::int64_t due = tds[answer_queue.front()].answer_at_ns;
      itimerspec at{};
      at.it_value = {static_cast<time_t>(due / 1'000'000'000), static_cast<long>(due % 1'000'000'000)};
      timerfd_settime(answer_timer, TFD_TIMER_ABSTIME, &at, nullptr);
    }
  }
  if (tds_log) std::fclose(tds_log);
  std::printf("{\"accepted\": %llu, \"tds_answered\": %llu, \"tds_dropped\": %llu, \"tds_late_max_ns\": %lld}\n",
              static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(tds_answered),
              static_cast<unsigned long long>(tds_dropped), static_cast<long long>(late_ns_max));
  return 0;
}

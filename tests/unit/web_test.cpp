// The web server's parts that need no running agent: exact routes, the coalesced job that
// reloads and renders, and shutting down the connections the server holds.
#include "agent/coalesced.h"
#include "exporters/http_server.h"
#include "tests/support/platform.h"
#include "tests/support/sockets.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace connectivity {
namespace {

using namespace std::chrono_literals;

TEST(HttpRoute, ExactPathsOnly) {
  EXPECT_EQ(route_of("/"), Route::index);
  EXPECT_EQ(route_of("/metrics"), Route::metrics);
  EXPECT_EQ(route_of("/-/healthy"), Route::healthy);
  EXPECT_EQ(route_of("/-/ready"), Route::ready);
  EXPECT_EQ(route_of("/-/reload"), Route::reload);
  for (const char* path : {"", "/metricsXYZ", "/metrics/", "/metrics/foo", "/-/reload/x", "/-/reloadx",
                           "/-/healthyx", "/-/healthy/", "/-/readyx", "//metrics", "/METRICS", "/index.html", "/-/"})
    EXPECT_EQ(route_of(path), Route::not_found) << path;
}

// A job whose runs are numbered, and which can be held in progress.
struct NumberedJob {
  std::atomic<int> runs{0};
  std::atomic<bool> hold{false};
  std::atomic<bool> started{false};
  int operator()() {
    started = true;
    while (hold) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);
    return ++runs;
  }
};

TEST(CoalescedJob, ConcurrentCallersShareRuns) {
  NumberedJob numbered;
  numbered.hold = true;
  CoalescedJob<int> job([&] { return numbered(); });
  std::vector<std::future<std::optional<int>>> results;
  for (int i = 0; i < 16; ++i) results.push_back(std::async(std::launch::async, [&] { return job.run(10s); }));
  while (!numbered.started) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);  // every caller has asked by now
  numbered.hold = false;
  for (auto& r : results) {
    const auto result = r.get();
    ASSERT_TRUE(result);
    EXPECT_GE(*result, 1);
  }
  // One run for whoever came first, and one more for everyone who came while it ran.
  EXPECT_LE(numbered.runs.load(), 2);
  EXPECT_EQ(job.runs(), static_cast<std::uint64_t>(numbered.runs.load()));
}

TEST(CoalescedJob, ACallerDuringARunGetsTheNextRunNotThatOne) {
  NumberedJob numbered;
  numbered.hold = true;
  CoalescedJob<int> job([&] { return numbered(); });
  auto first = std::async(std::launch::async, [&] { return job.run(10s); });
  while (!numbered.started) std::this_thread::sleep_for(1ms);
  // Run 1 is in progress (it may have read the old config): these three arrive during it.
  std::vector<std::future<std::optional<int>>> during;
  for (int i = 0; i < 3; ++i) during.push_back(std::async(std::launch::async, [&] { return job.run(10s); }));
  std::this_thread::sleep_for(50ms);
  numbered.hold = false;
  EXPECT_EQ(first.get(), 1);
  for (auto& r : during) EXPECT_EQ(r.get(), 2);  // one run, shared, that started after they asked
  EXPECT_EQ(numbered.runs.load(), 2);
}

TEST(CoalescedJob, CloseAnswersWaitingCallersAtOnce) {
  NumberedJob numbered;
  numbered.hold = true;
  CoalescedJob<int> job([&] { return numbered(); });
  auto first = std::async(std::launch::async, [&] { return job.run(10s); });
  while (!numbered.started) std::this_thread::sleep_for(1ms);
  auto queued = std::async(std::launch::async, [&] { return job.run(10s); });
  std::this_thread::sleep_for(20ms);
  const auto started = std::chrono::steady_clock::now();
  job.close();
  EXPECT_FALSE(first.get());
  EXPECT_FALSE(queued.get());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_FALSE(job.run(10s));  // nothing runs after close
  numbered.hold = false;       // the destructor waits for the run in progress
}

TEST(CoalescedJob, ABoundedCallerGivesUpAndTheNextOneIsServed) {
  NumberedJob numbered;
  numbered.hold = true;
  CoalescedJob<int> job([&] { return numbered(); });
  EXPECT_FALSE(job.run(30ms));  // still held
  numbered.hold = false;
  EXPECT_EQ(job.run(10s), 2);
}

TEST(CoalescedJob, TheResultIsNotKeptOnceEveryCallerHasIt) {
  std::weak_ptr<int> last;
  CoalescedJob<std::shared_ptr<int>> job([&] {
    auto result = std::make_shared<int>(7);
    last = result;
    return result;
  });
  {
    const auto result = job.run(10s);
    ASSERT_TRUE(result && *result);
    EXPECT_EQ(**result, 7);
  }
  EXPECT_TRUE(last.expired());  // a scrape's text is freed when the last writer is done with it
}

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

bool sees_end_of_stream(tcp::socket& socket, std::chrono::milliseconds within) {
  const int fd = static_cast<int>(socket.native_handle());
  if (!testing::wait_readable(fd, static_cast<int>(within.count()))) return false;
  char byte;
  return testing::recv_bytes(fd, &byte, 1) == 0;  // readable: does not block
}

TEST(AcceptedConnections, OnlyThoseAcceptedOnTheGivenPortsAreShutDown) {
  SKIP_ON_WINDOWS("shut_down_accepted_connections finds CivetWeb's sockets in /proc/self/fd; Windows has no such "
                  "list, so it shuts none down there (exporters/http_server.cpp)");
  asio::io_context io;
  const auto loopback = asio::ip::make_address("127.0.0.1");
  tcp::acceptor ours(io, {loopback, 0}), other(io, {loopback, 0});
  const int our_port = ours.local_endpoint().port();
  tcp::socket client(io), accepted(io), other_client(io), other_accepted(io);
  client.connect(ours.local_endpoint());
  ours.accept(accepted);
  other_client.connect(other.local_endpoint());
  other.accept(other_accepted);

  EXPECT_EQ(shut_down_accepted_connections({our_port}), 1);
  EXPECT_TRUE(sees_end_of_stream(client, 1s));             // the connection accepted on our port
  EXPECT_FALSE(sees_end_of_stream(other_client, 100ms));   // one accepted on another port
  EXPECT_FALSE(sees_end_of_stream(other_accepted, 100ms));
  // The client end (a connection *to* our port, like a probe of our own /metrics) is left
  // alone: it can still send.
  EXPECT_EQ(testing::send_bytes(static_cast<int>(client.native_handle()), "x", 1), 1);
  // And the listener still accepts.
  tcp::socket again(io), again_accepted(io);
  again.connect(ours.local_endpoint());
  ours.accept(again_accepted);
  EXPECT_TRUE(again_accepted.is_open());
}

}  // namespace
}  // namespace connectivity

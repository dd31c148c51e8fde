#include "probes/connect.h"
#include "tests/support/loopback.h"
#include "tests/support/run_once.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

namespace connectivity {
namespace {

using testing::LoopbackListener;
using testing::NetworkNamespace;
using testing::RefusedPort;
using testing::run_once;
using testing::tcp_check;

double phase_seconds(const RunRecord& run, std::string_view name) {
  for (const auto& p : run.phases)
    if (p.name == name) return std::chrono::duration<double>(p.took).count();
  return -1;
}

TEST(TcpProbe, OpenPortSucceeds) {
  LoopbackListener listener;
  const RunRecord run = run_once(tcp_check("127.0.0.1:" + std::to_string(listener.port())));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  ASSERT_EQ(run.phases.size(), 2u);
  EXPECT_EQ(run.phases[0].name, "resolve");
  EXPECT_EQ(run.phases[1].name, "connect");
  EXPECT_GT(phase_seconds(run, "connect"), 0.0);
}

TEST(TcpProbe, OpenIPv6PortSucceeds) {
  LoopbackListener listener(/*ipv6=*/true);
  const RunRecord run = run_once(tcp_check("[::1]:" + std::to_string(listener.port())));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
}

TEST(TcpProbe, ClosedPortIsRefused) {
  RefusedPort closed;
  const RunRecord run = run_once(tcp_check("127.0.0.1:" + std::to_string(closed.port())));
  EXPECT_EQ(run.reason, reason::refused) << run.detail;
  EXPECT_NE(run.detail.find("127.0.0.1"), std::string::npos) << run.detail;
}

TEST(TcpProbe, LocalhostResolvesFromHostsFile) {
  LoopbackListener listener;
  const RunRecord run = run_once(tcp_check("localhost:" + std::to_string(listener.port()), "2s",
                                           "address_family = \"ipv4\""));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_GE(phase_seconds(run, "resolve"), 0.0);
}

TEST(TcpProbe, WrongAddressFamilyIsADnsError) {
  LoopbackListener listener;
  const RunRecord run = run_once(tcp_check("127.0.0.1:" + std::to_string(listener.port()), "2s",
                                           "address_family = \"ipv6\""));
  EXPECT_EQ(run.reason, reason::dns_error) << run.detail;
}

class TcpProbeInNamespace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ns_.ok()) GTEST_SKIP() << "network namespace tests skipped: " << ns_.why();
    // Rules on input, so the SYN leaves the socket and is dropped or answered on arrival: a drop
    // on output would fail connect() locally with EPERM instead of timing out.
    ASSERT_TRUE(ns_.nft(
        "table inet connectivity_test {\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        "    tcp dport 7001 drop\n"
        "    tcp dport 7002 reject with icmpx type host-unreachable\n"
        "    tcp dport 7003 reject with tcp reset\n"
        "  }\n"
        "}\n"));
  }
  NetworkNamespace ns_;
};

TEST_F(TcpProbeInNamespace, DroppedPortTimesOutInConnect) {
  RunRecord run;
  ns_.run_inside([&] { run = run_once(tcp_check("127.0.0.1:7001", "300ms")); });
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_NE(run.detail.find("in phase connect"), std::string::npos) << run.detail;
  // The phase it died in carries the time it spent there, bounded by the timeout.
  EXPECT_GT(phase_seconds(run, "connect"), 0.0);
  EXPECT_LE(phase_seconds(run, "connect"), 0.3);
}

TEST_F(TcpProbeInNamespace, IcmpRejectIsUnreachable) {
  RunRecord run;
  ns_.run_inside([&] { run = run_once(tcp_check("127.0.0.1:7002")); });
  EXPECT_EQ(run.reason, reason::unreachable) << run.detail;
}

TEST_F(TcpProbeInNamespace, TcpResetRejectIsRefused) {
  RunRecord run;
  ns_.run_inside([&] { run = run_once(tcp_check("127.0.0.1:7003")); });
  EXPECT_EQ(run.reason, reason::refused) << run.detail;
}

// Inside a namespace with only `lo`, the system resolver is unreachable, so the lookup fails
// locally: no DNS packet leaves this machine's test sandbox.
TEST_F(TcpProbeInNamespace, UnresolvableNameIsADnsError) {
  RunRecord run;
  ns_.run_inside([&] { run = run_once(tcp_check("no-such-host.invalid:443", "5s")); });
  EXPECT_EQ(run.reason, reason::dns_error) << run.detail;
  EXPECT_EQ(run.phases.size(), 1u);  // never reached connect
}

// A DNS server that never answers must not hold a probe past its deadline: the run ends as a
// timeout in phase resolve while the lookup is still blocked.
TEST(TcpProbe, ASlowLookupDoesNotHoldTheProbe) {
  // Shared with the resolver's worker, which outlives this test's frame if it is still blocked.
  struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool released = false;
  };
  auto gate = std::make_shared<Gate>();
  asio::io_context io;  // outlives the resolver, as in the agent
  Resolver resolver(1, [gate](const std::string&, std::uint16_t, AddressFamily) {
    std::unique_lock lock(gate->mutex);
    gate->changed.wait_for(lock, std::chrono::seconds(10), [&] { return gate->released; });  // bounded
    return ResolveOutcome{boost::asio::error::host_not_found, {}};
  });
  const CheckConfig check = tcp_check("slow-dns.example:443", "100ms");
  RunRecord run;
  bool done = false;
  bool lookup_was_blocked = false;
  asio::co_spawn(io, run_probe(check, resolver), [&](std::exception_ptr, RunRecord r) {
    run = std::move(r);
    std::lock_guard lock(gate->mutex);
    lookup_was_blocked = !gate->released;
    done = true;
  });
  io.run();
  {
    std::lock_guard lock(gate->mutex);
    gate->released = true;
  }
  gate->changed.notify_all();
  ASSERT_TRUE(done);
  EXPECT_TRUE(lookup_was_blocked);
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_NE(run.detail.find("in phase resolve"), std::string::npos) << run.detail;
}

TEST(NetworkErrors, AreClassifiedByCause) {
  namespace e = boost::asio::error;
  using boost::system::errc::make_error_code;
  EXPECT_EQ(classify_network_error(e::connection_refused), reason::refused);
  EXPECT_EQ(classify_network_error(e::timed_out), reason::timeout);
  EXPECT_EQ(classify_network_error(e::host_unreachable), reason::unreachable);
  EXPECT_EQ(classify_network_error(e::network_unreachable), reason::unreachable);
  EXPECT_EQ(classify_network_error(make_error_code(boost::system::errc::operation_not_permitted)), reason::unreachable);
  EXPECT_EQ(classify_network_error(e::connection_reset), reason::reset);
  EXPECT_EQ(classify_network_error(e::no_descriptors), reason::resource_exhausted);
  EXPECT_EQ(classify_network_error(make_error_code(boost::system::errc::too_many_files_open_in_system)), reason::resource_exhausted);
  EXPECT_EQ(classify_network_error(e::no_buffer_space), reason::resource_exhausted);
  EXPECT_EQ(classify_network_error(e::host_not_found), reason::dns_error);
  EXPECT_EQ(classify_network_error(e::host_not_found_try_again), reason::dns_error);
  EXPECT_EQ(classify_network_error(make_error_code(boost::system::errc::io_error)), reason::error);
}

}  // namespace
}  // namespace connectivity

// The dns probe: its query and reply codec against RFC 1035 layouts, and the probe against a
// loopback DNS server (tests/support/dns_server.h) whose answers change between runs.
#include "probes/dns/dns_message.h"
#include "probes/dns/dns_probe.h"
#include "tests/support/dns_server.h"
#include "tests/support/loopback.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"
#include "tests/support/sockets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

namespace connectivity {
namespace {

using testing::DnsBehaviour;
using testing::DnsRecord;
using testing::DnsResponse;
using testing::DnsTestServer;
using testing::fact_value;
using testing::make_check;
using testing::run_once;
using Bytes = std::vector<std::uint8_t>;

constexpr std::string_view kInfo = "connectivity_dns_address_info";
constexpr std::string_view kChanges = "connectivity_dns_address_changes_total";
constexpr std::string_view kIgnored = "connectivity_dns_ignored_replies_total";
constexpr std::string_view kCount = "connectivity_dns_addresses";
constexpr std::uint16_t A = 1, AAAA = 28, CNAME = 5;
const std::string kName = "www.example.org";

std::set<std::string> addresses_of(const RunRecord& run) {
  std::set<std::string> out;
  for (const auto& fact : run.facts)
    if (fact.metric == kInfo) out.insert(fact.labels.at(0).second);
  return out;
}

DnsResponse records(std::vector<DnsRecord> list) { return {DnsBehaviour::answer, std::move(list)}; }
DnsResponse behaving(DnsBehaviour behaviour) { return {behaviour, {}}; }

CheckConfig dns_check(const DnsTestServer& server, const std::string& extra = "", const std::string& timeout = "2s",
                      const std::string& name = kName) {
  return make_check("dns", name, "server = \"" + server.address() + "\"\n" + extra, timeout);
}

// ---- The codec ------------------------------------------------------------------------------

TEST(DnsMessage, QueryIsRfc1035WithRecursionAndEdns) {
  const auto query = dns::encode_query("www.Example.org.", AAAA, 0xBEEF);
  ASSERT_TRUE(query);
  const Bytes expected = {0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,                 // RD, QD 1, AR 1
                          3, 'w', 'w', 'w', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0,
                          0, 28, 0, 1,                                                     // AAAA IN
                          0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0};                         // OPT, 1232 bytes
  EXPECT_EQ(*query, expected);
  EXPECT_FALSE(dns::encode_query(std::string(64, 'a') + ".org", A, 1));
}

// A reply to `id`/www.example.org A, with the answer records' bytes appended as given.
Bytes reply_bytes(std::uint16_t id, std::uint8_t ancount, const Bytes& answers, std::uint8_t flags3 = 0x80) {
  Bytes out = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x81, flags3, 0, 1, 0, ancount, 0, 0, 0, 0,
               3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0, 0, 1, 0, 1};
  for (const auto byte : answers) out.push_back(byte);  // (insert trips gcc 12's -Warray-bounds here)
  return out;
}

TEST(DnsMessage, DecodesACompressedAnswerAndItsTtl) {
  const Bytes a = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 192, 0, 2, 10};
  const auto decoded = dns::decode_reply(reply_bytes(7, 1, a), 7, "WWW.example.org.", A);
  const auto* reply = std::get_if<dns::Reply>(&decoded);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->addresses.size(), 1u);
  EXPECT_EQ(reply->addresses[0].to_string(), "192.0.2.10");
  EXPECT_EQ(reply->min_ttl, 3600u);
}

TEST(DnsMessage, ForeignDatagramsAreNotOursAndBrokenBodiesAreMalformed) {
  const Bytes a = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 192, 0, 2, 10};
  auto kind = [](const dns::Decoded& d) { return d.index(); };  // 0 Reply, 1 NotOurs, 2 Malformed
  EXPECT_EQ(kind(dns::decode_reply(Bytes{1, 2, 3}, 7, kName, A)), 1u);
  EXPECT_EQ(kind(dns::decode_reply(reply_bytes(8, 1, a), 7, kName, A)), 1u);            // another ID
  EXPECT_EQ(kind(dns::decode_reply(reply_bytes(7, 1, a), 7, "other.example.org", A)), 1u);  // another question
  EXPECT_EQ(kind(dns::decode_reply(reply_bytes(7, 1, a), 7, kName, AAAA)), 1u);         // another type
  Bytes query = reply_bytes(7, 1, a);
  query[2] = 0x01;  // QR clear: our own query reflected
  EXPECT_EQ(kind(dns::decode_reply(query, 7, kName, A)), 1u);
  EXPECT_EQ(kind(dns::decode_reply(reply_bytes(7, 2, a), 7, kName, A)), 2u);            // ANCOUNT past the end
  const Bytes short_a = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 3, 192, 0, 2};
  const auto odd = dns::decode_reply(reply_bytes(7, 1, short_a), 7, kName, A);
  ASSERT_EQ(kind(odd), 2u);
  EXPECT_EQ(std::get<dns::Malformed>(odd).why, "an A record of 3 bytes, not 4");
  // CNAME www -> www (a loop).
  const Bytes loop = {0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 0x0C};
  const auto looped = dns::decode_reply(reply_bytes(7, 1, loop), 7, kName, A);
  ASSERT_EQ(kind(looped), 2u);
  EXPECT_NE(std::get<dns::Malformed>(looped).why.find("CNAME loop"), std::string::npos);
  // A compression pointer pointing at itself.
  const Bytes self = {0xC0, 0x21, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4};
  EXPECT_EQ(kind(dns::decode_reply(reply_bytes(7, 1, self), 7, kName, A)), 2u);
}

TEST(DnsMessage, RcodesWithoutAQuestionAreStillOurs) {
  const Bytes refused = {0, 7, 0x81, 0x85, 0, 0, 0, 0, 0, 0, 0, 0};
  const auto decoded = dns::decode_reply(refused, 7, kName, A);
  ASSERT_TRUE(std::holds_alternative<dns::Reply>(decoded));
  EXPECT_EQ(std::get<dns::Reply>(decoded).rcode, 5);
  EXPECT_EQ(dns::rcode_name(5), "REFUSED");
}

TEST(DnsPrefixes, AddressesAndCidrsContainWhatTheyShould) {
  std::string why;
  auto v4 = parse_address_prefix("198.51.100.0/24", why);
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains(asio::ip::make_address("198.51.100.255")));
  EXPECT_FALSE(v4->contains(asio::ip::make_address("198.51.101.0")));
  EXPECT_FALSE(v4->contains(asio::ip::make_address("2001:db8::1")));
  auto v6 = parse_address_prefix("2001:db8::/32", why);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(asio::ip::make_address("2001:db8:ffff::1")));
  EXPECT_FALSE(v6->contains(asio::ip::make_address("2001:db9::1")));
  auto one = parse_address_prefix("192.0.2.10", why);
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains(asio::ip::make_address("192.0.2.10")));
  EXPECT_FALSE(one->contains(asio::ip::make_address("192.0.2.11")));
  EXPECT_TRUE(parse_address_prefix("0.0.0.0/0", why)->contains(asio::ip::make_address("203.0.113.1")));
  EXPECT_FALSE(parse_address_prefix("198.51.100.7/24", why));
  EXPECT_EQ(why, "\"198.51.100.7/24\" has bits set past the /24 prefix (did you mean 198.51.100.0/24?)");
}

// ---- The probe against a loopback DNS server ---------------------------------------------------

TEST(DnsProbe, OneNameGivesItsAddresses) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, A, "192.0.2.10", 600}, {kName, A, "192.0.2.11", 300}}));
  server.set(kName, AAAA, records({{kName, AAAA, "2001:db8::10", 900}}));
  const auto run = run_once(dns_check(server));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"192.0.2.10", "192.0.2.11", "2001:db8::10"}));
  EXPECT_EQ(fact_value(run, kCount), 3);
  EXPECT_EQ(fact_value(run, kChanges), 0);
  EXPECT_EQ(fact_value(run, "connectivity_dns_answer_ttl_seconds"), 300);
  EXPECT_EQ(server.queries(), 2u);
  ASSERT_EQ(run.phases.size(), 2u);
  EXPECT_EQ(run.phases[0].name, "query_a");
  EXPECT_EQ(run.phases[1].name, "query_aaaa");
  EXPECT_EQ(run.detail, "3 addresses from " + server.address());
}

TEST(DnsProbe, AChangedSetIsCountedOnceAndTheFactsFollow) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, A, "192.0.2.10"}}));
  const auto check = dns_check(server, "record_types = [\"A\"]");
  const auto first = run_once(check);
  EXPECT_EQ(first.reason, reason::success) << first.detail;
  EXPECT_EQ(fact_value(first, kChanges), 0);  // the baseline, not a change

  server.set(kName, A, records({{kName, A, "192.0.2.20"}}));
  const auto second = run_once(check);
  EXPECT_EQ(second.reason, reason::success) << second.detail;
  EXPECT_EQ(fact_value(second, kChanges), 1);
  EXPECT_EQ(addresses_of(second), (std::set<std::string>{"192.0.2.20"}));
  EXPECT_EQ(second.detail, "address set changed from 192.0.2.10 to 192.0.2.20; 1 address from " + server.address());

  const auto third = run_once(check);
  EXPECT_EQ(fact_value(third, kChanges), 1);

  // A failed run neither counts as a change nor moves the baseline.
  server.set(kName, A, behaving(DnsBehaviour::servfail));
  EXPECT_EQ(fact_value(run_once(check), kChanges), 1);
  server.set(kName, A, records({{kName, A, "192.0.2.20"}}));
  EXPECT_EQ(fact_value(run_once(check), kChanges), 1);
}

TEST(DnsProbe, TheSameSetInAnotherOrderIsNoChange) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, A, "192.0.2.1"}, {kName, A, "192.0.2.2"}, {kName, A, "192.0.2.3"}}));
  const auto check = dns_check(server, "record_types = [\"A\"]");
  EXPECT_EQ(run_once(check).reason, reason::success);
  server.set(kName, A, records({{kName, A, "192.0.2.3"}, {kName, A, "192.0.2.1"}, {kName, A, "192.0.2.2"}}));
  const auto run = run_once(check);
  EXPECT_EQ(run.reason, reason::success);
  EXPECT_EQ(fact_value(run, kChanges), 0);
}

TEST(DnsProbe, AnAddressOutsideExpectedIsDriftNamingIt) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, A, "198.51.100.7"}, {kName, A, "192.0.2.10"}}));
  server.set(kName, AAAA, records({{kName, AAAA, "2001:db8:1::5"}}));
  const auto check =
      dns_check(server, "expected_addresses = [\"192.0.2.10\", \"198.51.100.0/24\", \"2001:db8::/32\"]");
  const auto good = run_once(check);
  EXPECT_EQ(good.reason, reason::success) << good.detail;

  server.set(kName, A, records({{kName, A, "198.51.100.7"}, {kName, A, "203.0.113.5"}}));
  server.set(kName, AAAA, records({{kName, AAAA, "2001:db9::5"}}));
  const auto drift = run_once(check);
  EXPECT_EQ(drift.reason, reason::address_drift);
  EXPECT_TRUE(drift.detail.starts_with("www.example.org resolved to 203.0.113.5, 2001:db9::5, outside expected_addresses"))
      << drift.detail;
  EXPECT_EQ(addresses_of(drift), (std::set<std::string>{"198.51.100.7", "203.0.113.5", "2001:db9::5"}));
  EXPECT_EQ(fact_value(drift, kChanges), 1);
}

TEST(DnsProbe, ServerErrorsAreDnsErrorsNamingTheRcode) {
  DnsTestServer server;
  const auto check = dns_check(server, "record_types = [\"A\"]");
  const auto unknown = run_once(check);  // a name the server does not know
  EXPECT_EQ(unknown.reason, reason::dns_error);
  EXPECT_EQ(unknown.detail, "www.example.org A: NXDOMAIN from " + server.address());
  EXPECT_EQ(fact_value(unknown, kChanges), 0);  // the counter is there on failure too
  EXPECT_TRUE(addresses_of(unknown).empty());

  server.set(kName, A, behaving(DnsBehaviour::servfail));
  const auto servfail = run_once(check);
  EXPECT_EQ(servfail.reason, reason::dns_error);
  EXPECT_EQ(servfail.detail, "www.example.org A: SERVFAIL from " + server.address());

  server.set(kName, A, behaving(DnsBehaviour::refused));
  const auto refused = run_once(check);
  EXPECT_EQ(refused.reason, reason::dns_error);
  EXPECT_EQ(refused.detail, "www.example.org A: REFUSED from " + server.address());

}

TEST(DnsProbe, ATruncatedAnswerIsAskedAgainOverTcp) {
  DnsTestServer server;
  server.set(kName, A, {DnsBehaviour::truncated, {{kName, A, "192.0.2.80"}, {kName, A, "192.0.2.81"}}});
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"192.0.2.80", "192.0.2.81"}));
  EXPECT_EQ(server.tcp_queries(), 1u);
  ASSERT_EQ(run.phases.size(), 2u);
  EXPECT_EQ(run.phases[1].name, "query_tcp");
}

TEST(DnsProbe, ATruncatedAnswerWithoutTcpIsRefusedSayingWhy) {
  DnsTestServer server(/*ipv6=*/false, /*tcp=*/false);
  server.set(kName, A, {DnsBehaviour::truncated, {{kName, A, "192.0.2.80"}}});
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::refused);
  EXPECT_EQ(run.detail, "A query over TCP to " + server.address() + " (the UDP answer was truncated): Connection refused");
}

TEST(DnsProbe, NoRecordsOfAnyAskedTypeIsNoAddresses) {
  DnsTestServer server;
  server.set(kName, 16, records({}));  // TXT: the name exists, with neither A nor AAAA
  const auto run = run_once(dns_check(server));
  EXPECT_EQ(run.reason, reason::dns_error);
  EXPECT_EQ(run.detail, "no addresses: " + server.address() + " has no A/AAAA records for www.example.org (NODATA)");
}

TEST(DnsProbe, ASilentServerTimesOutInItsPhase) {
  DnsTestServer server;
  server.set(kName, A, behaving(DnsBehaviour::silence));
  const auto run = run_once(dns_check(server, "", "300ms"));
  EXPECT_EQ(run.reason, reason::timeout);
  EXPECT_EQ(run.detail, "no result within 300ms (in phase query_a)");
  EXPECT_EQ(fact_value(run, kChanges), 0);
}

TEST(DnsProbe, GarbageIsIgnoredAndCountedThenTimesOut) {
  // A datagram that is no answer to our query (any host can send one) must not decide the run:
  // it is dropped and counted, and the probe waits for the real answer until the deadline.
  DnsTestServer server;
  server.set(kName, A, behaving(DnsBehaviour::garbage));
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]", "300ms"));
  EXPECT_EQ(run.reason, reason::timeout);
  EXPECT_EQ(fact_value(run, kIgnored), 1);
}

TEST(DnsProbe, OurQuestionWithABrokenBodyIsAProtocolError) {
  DnsTestServer server;
  server.set(kName, A, behaving(DnsBehaviour::malformed));
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail, "A query to " + server.address() + ": malformed reply: an A record of 5 bytes, not 4");
}

TEST(DnsProbe, AWrongIdIsIgnoredAndTheRightAnswerTaken) {
  DnsTestServer server;
  server.set(kName, A, {DnsBehaviour::wrong_id_first, {{kName, A, "192.0.2.10"}}});
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"192.0.2.10"}));
  EXPECT_EQ(fact_value(run, kIgnored), 1);
}

TEST(DnsProbe, AForgedAnswerFromAnotherPortNeverReachesTheProbe) {
  DnsTestServer server;
  server.set(kName, A, {DnsBehaviour::forged_first, {{kName, A, "192.0.2.10"}}});
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"192.0.2.10"}));  // never 203.0.113.66
}

TEST(DnsProbe, ACnameChainIsFollowed) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, CNAME, "edge.example.net", 120},
                                {"edge.example.net", CNAME, "e1.cdn.example", 60},
                                {"e1.cdn.example", A, "192.0.2.44", 20},
                                {"unrelated.example", A, "203.0.113.9", 300}}));
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"192.0.2.44"}));
  EXPECT_EQ(fact_value(run, "connectivity_dns_answer_ttl_seconds"), 20);
  EXPECT_EQ(run.detail, "1 address from " + server.address() + " via CNAME e1.cdn.example");
}

TEST(DnsProbe, AaaaOnlyAsksForAaaaOnly) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, A, "192.0.2.10"}}));
  server.set(kName, AAAA, records({{kName, AAAA, "2001:db8::abcd"}}));
  const auto run = run_once(dns_check(server, "record_types = [\"AAAA\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"2001:db8::abcd"}));
  EXPECT_EQ(server.queries(), 1u);
  const auto query = server.last_query();
  ASSERT_GE(query.size(), 12u);
  EXPECT_EQ(query[2] & 0x01, 0x01);  // recursion desired
}

TEST(DnsProbe, AServerOnIpv6Loopback) {
  DnsTestServer server(/*ipv6=*/true);
  if (!server.ok()) GTEST_SKIP() << "::1 is not available";
  server.set(kName, A, records({{kName, A, "192.0.2.10"}}));
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run), (std::set<std::string>{"192.0.2.10"}));
}

TEST(DnsProbe, NoServerOnThePortIsRefused) {
  if (testing::under_wine())
    GTEST_SKIP() << "under wine: a connected UDP socket never learns of the ICMP port unreachable (wine 8 neither fails "
                    "the receive, as Windows does with WSAECONNRESET, nor passes on Linux's ECONNREFUSED), so the "
                    "query times out instead of being refused";
  const auto bound = testing::bind_loopback(SOCK_DGRAM);
  testing::close_socket(bound.fd);  // free again: the kernel answers ICMP port unreachable
  const auto run = run_once(make_check("dns", kName, "server = \"127.0.0.1:" + std::to_string(bound.port) + "\""));
  EXPECT_EQ(run.reason, reason::refused) << run.detail;
}

TEST(DnsProbe, ManyAddressesAreCappedAndSaySo) {
  DnsTestServer server;
  std::vector<DnsRecord> list;
  for (int i = 1; i <= 40; ++i) list.push_back({kName, A, "192.0.2." + std::to_string(i)});
  server.set(kName, A, records(list));
  const auto run = run_once(dns_check(server, "record_types = [\"A\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(addresses_of(run).size(), DnsProbe::kMaxAddressFacts);
  EXPECT_EQ(fact_value(run, kCount), 40);
  EXPECT_NE(run.detail.find("only the first 32"), std::string::npos) << run.detail;
}

// The scheduler never overlaps runs of one check, but the probe's state across runs is locked
// anyway: two threads running the same check at once (TSan watches this one).
TEST(DnsProbe, ConcurrentRunsOfOneCheckShareTheBaselineSafely) {
  DnsTestServer server;
  server.set(kName, A, records({{kName, A, "192.0.2.10"}}));
  const auto check = dns_check(server, "record_types = [\"A\"]");
  std::atomic<int> successes{0};
  auto runs = [&] {
    for (int i = 0; i < 5; ++i)
      if (run_once(check).reason == reason::success) ++successes;
  };
  std::thread other(runs);
  runs();
  other.join();
  EXPECT_EQ(successes.load(), 10);
  server.set(kName, A, records({{kName, A, "192.0.2.11"}}));
  EXPECT_EQ(fact_value(run_once(check), kChanges), 1);
}

TEST(DnsProbeConfig, BadOptionsAreConfigErrorsAtTheirPlace) {
  auto error = [](const std::string& target, const std::string& options) {
    return testing::config_error("dns", target, options);
  };
  EXPECT_EQ(error(kName, "expected_addresses = [\"192.0.2.1\", \"198.51.100.0/33\"]"),
            "test.toml:8:36: check \"t\": key \"expected_addresses\": \"198.51.100.0/33\": the prefix length must be 0 to 32");
  EXPECT_EQ(error(kName, "expected_addresses = [\"192.0.2.1/24\"]"),
            "test.toml:8:23: check \"t\": key \"expected_addresses\": \"192.0.2.1/24\" has bits set past the /24 prefix "
            "(did you mean 192.0.2.0/24?)");
  EXPECT_EQ(error(kName, "expected_addresses = [\"oclc.org\"]"),
            "test.toml:8:23: check \"t\": key \"expected_addresses\": \"oclc.org\" is not an IP address or CIDR prefix");
  EXPECT_EQ(error(kName, "expected_addresses = []"),
            "test.toml:8:22: check \"t\": key \"expected_addresses\": is empty, so every address would be drift: list "
            "some or drop the key");
  EXPECT_EQ(error(kName, "server = \"dns.example.org\""),
            "test.toml:8:10: check \"t\": key \"server\": \"dns.example.org\" must be an IP address with an optional "
            "port: \"192.0.2.53\", \"127.0.0.1:5353\", \"[::1]:53\"; a DNS server is given by address, not by name");
  EXPECT_NE(error(kName, "server = \"127.0.0.1:99999\"").find("port must be a number"), std::string::npos);
  EXPECT_EQ(error(kName, "record_types = [\"A\", \"MX\"]"),
            "test.toml:8:22: check \"t\": key \"record_types\": unknown record type \"MX\" (the probe asks for \"A\" "
            "and \"AAAA\")");
  EXPECT_EQ(error(kName, "record_types = [\"A\", \"a\"]"),
            "test.toml:8:22: check \"t\": key \"record_types\": \"A\" is listed twice");
  EXPECT_EQ(error("webservices.oclc.org:443", ""),
            "test.toml:4:10: check \"t\": key \"target\": bad target \"webservices.oclc.org:443\": expected a bare DNS "
            "name such as webservices.oclc.org, without :port");
  EXPECT_EQ(error("192.0.2.1", ""),
            "test.toml:4:10: check \"t\": key \"target\": bad target \"192.0.2.1\": an IP address is not a name to "
            "resolve: give the DNS name");
  EXPECT_EQ(error(kName, "server = \"[::1]:5353\"\nrecord_types = [\"aaaa\"]"), "<no error>");
  EXPECT_EQ(error(kName, "server = \"2001:db8::53\""), "<no error>");
}

}  // namespace
}  // namespace connectivity

// [[inbound]]: the frame parser against header layouts (RFC 791, RFC 8200, RFC 9293, Linux
// cooked capture), the tally's rules, the config, and real captures in network namespaces
// the test creates: a "vendor" namespace with documentation-range addresses connects to a
// "catalogue" namespace where the watch runs. No packet leaves the machine. The watches across
// reloads, and without capture, are in inbound_watches_test.cpp (no Linux needed).
#include "agent/config.h"
#include "agent/inbound_watches.h"
#include "exporters/prometheus_exposition.h"
#include "probes/inbound/capture_backend.h"
#include "probes/inbound/captured_frame.h"
#include "probes/inbound/inbound_watch.h"
#include "tests/support/loopback.h"
#include "tests/support/sockets.h"  // inet_pton, and the socket calls below (Linux: its headers)

#include <gtest/gtest.h>

#ifndef _WIN32
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <thread>

namespace connectivity {
namespace {

using namespace std::chrono_literals;
using inbound::TcpSegment;
namespace tcp_flag = inbound::tcp_flag;
using Bytes = std::vector<std::uint8_t>;

// --- Frames --------------------------------------------------------------------------------

Bytes tcp_header(std::uint16_t source_port, std::uint16_t destination_port, std::uint8_t flags) {
  Bytes tcp(20, 0);
  tcp[0] = source_port >> 8, tcp[1] = source_port & 0xff;
  tcp[2] = destination_port >> 8, tcp[3] = destination_port & 0xff;
  tcp[12] = 5 << 4;  // data offset: 5 words
  tcp[13] = flags;
  return tcp;
}

Bytes ipv4_packet(const std::string& source, const std::string& destination, const Bytes& payload, std::uint8_t protocol = 6) {
  Bytes ip(20, 0);
  ip[0] = 0x45;
  const std::size_t total = 20 + payload.size();
  ip[2] = static_cast<std::uint8_t>(total >> 8), ip[3] = total & 0xff;
  ip[8] = 64;
  ip[9] = protocol;
  inet_pton(AF_INET, source.c_str(), ip.data() + 12);
  inet_pton(AF_INET, destination.c_str(), ip.data() + 16);
  ip.insert(ip.end(), payload.begin(), payload.end());
  return ip;
}

Bytes ipv6_packet(const std::string& source, const std::string& destination, const Bytes& payload, std::uint8_t next = 6) {
  Bytes ip(40, 0);
  ip[0] = 0x60;
  ip[4] = static_cast<std::uint8_t>(payload.size() >> 8), ip[5] = payload.size() & 0xff;
  ip[6] = next;
  ip[7] = 64;
  inet_pton(AF_INET6, source.c_str(), ip.data() + 8);
  inet_pton(AF_INET6, destination.c_str(), ip.data() + 24);
  ip.insert(ip.end(), payload.begin(), payload.end());
  return ip;
}

// Linux cooked capture v1 (DLT_LINUX_SLL): packet type, ARPHRD, address length, address, protocol.
Bytes cooked(const Bytes& packet, std::uint16_t ether_type) {
  // Sized at once: gcc 12 at -O3 (the Windows Release build) takes an insert after the 16 bytes
  // for a copy out of bounds (-Warray-bounds, a false positive).
  Bytes frame(16 + packet.size(), 0);
  frame[14] = ether_type >> 8, frame[15] = ether_type & 0xff;
  std::copy(packet.begin(), packet.end(), frame.begin() + 16);
  return frame;
}

TEST(CapturedFrame, ReadsTcpOverIpv4AndIpv6InEveryLinkType) {
  const Bytes syn = tcp_header(40000, 210, tcp_flag::syn);
  const auto v4 = inbound::parse_captured_frame(inbound::kLinkLinuxCooked, cooked(ipv4_packet("192.0.2.10", "192.0.2.1", syn), 0x0800));
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->source.to_string(), "192.0.2.10");
  EXPECT_EQ(v4->destination.to_string(), "192.0.2.1");
  EXPECT_EQ(v4->source_port, 40000);
  EXPECT_EQ(v4->destination_port, 210);
  EXPECT_EQ(v4->flags, tcp_flag::syn);

  // Hop-by-hop options (8 bytes) before TCP.
  Bytes hop(8, 0);
  hop[0] = 6;
  hop.insert(hop.end(), syn.begin(), syn.end());
  const auto v6 = inbound::parse_captured_frame(inbound::kLinkLinuxCooked, cooked(ipv6_packet("2001:db8::10", "2001:db8::1", hop, 0), 0x86dd));
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->source.to_string(), "2001:db8::10");
  EXPECT_EQ(v6->destination_port, 210);

  Bytes ethernet(18, 0xaa);  // addresses, one VLAN tag (0x8100, VLAN 7), then IPv4 (0x0800)
  ethernet[12] = 0x81, ethernet[13] = 0x00, ethernet[14] = 0x00, ethernet[15] = 0x07, ethernet[16] = 0x08, ethernet[17] = 0x00;
  const Bytes v4_packet = ipv4_packet("198.51.100.7", "198.51.100.1", tcp_header(210, 40000, tcp_flag::syn | tcp_flag::ack));
  ethernet.insert(ethernet.end(), v4_packet.begin(), v4_packet.end());
  const auto tagged = inbound::parse_captured_frame(inbound::kLinkEthernet, ethernet);
  ASSERT_TRUE(tagged);
  EXPECT_EQ(tagged->flags, tcp_flag::syn | tcp_flag::ack);

  Bytes sll2(20, 0);
  sll2[0] = 0x08;  // protocol first in v2
  sll2.insert(sll2.end(), v4_packet.begin(), v4_packet.end());
  EXPECT_TRUE(inbound::parse_captured_frame(inbound::kLinkLinuxCooked2, sll2));
  EXPECT_TRUE(inbound::parse_captured_frame(inbound::kLinkRaw, v4_packet));

  // Cut at the snap length past the TCP header: still read.
  Bytes with_payload = ipv4_packet("192.0.2.10", "192.0.2.1", [&] { Bytes t = syn; t.resize(200, 0); return t; }());
  with_payload.resize(60);
  EXPECT_TRUE(inbound::parse_captured_frame(inbound::kLinkRaw, with_payload));
}

TEST(CapturedFrame, AnythingElseIsIgnored) {
  const Bytes syn = tcp_header(40000, 210, tcp_flag::syn);
  const Bytes good = ipv4_packet("192.0.2.10", "192.0.2.1", syn);
  auto udp = ipv4_packet("192.0.2.10", "192.0.2.1", syn, 17);
  auto fragment = good;
  fragment[7] = 0x10;  // fragment offset 16: no TCP header here
  auto short_ihl = good;
  short_ihl[0] = 0x44;
  auto long_ihl = good;
  long_ihl[0] = 0x4f;
  auto total_under_header = good;
  total_under_header[2] = 0, total_under_header[3] = 10;
  auto tcp_offset_past_end = good;
  tcp_offset_past_end[20 + 12] = 0xf0;
  Bytes v6_fragment = ipv6_packet("2001:db8::10", "2001:db8::1", syn, 44);
  const std::vector<std::pair<const char*, Bytes>> cases{
      {"udp", udp}, {"fragment", fragment}, {"ihl 4", short_ihl}, {"ihl 15", long_ihl},
      {"total under header", total_under_header}, {"tcp offset past end", tcp_offset_past_end},
      {"ipv6 fragment header", v6_fragment}, {"truncated tcp", Bytes(good.begin(), good.begin() + 30)},
      {"empty", {}}, {"version 5", [&] { auto b = good; b[0] = 0x55; return b; }()}};
  for (const auto& [what, packet] : cases) EXPECT_FALSE(inbound::parse_captured_frame(inbound::kLinkRaw, packet)) << what;
  EXPECT_FALSE(inbound::parse_captured_frame(inbound::kLinkLinuxCooked, Bytes(10, 0))) << "short cooked header";
  EXPECT_FALSE(inbound::parse_captured_frame(inbound::kLinkLinuxCooked, cooked(good, 0x0806))) << "ARP";
  EXPECT_FALSE(inbound::parse_captured_frame(147, good)) << "unknown link type";
}

// --- The tally -----------------------------------------------------------------------------

InboundWatchConfig watch_config(std::chrono::milliseconds expect_within = 1h) {
  InboundWatchConfig config;
  config.name = "talis";
  config.port = 210;
  config.expect_within = expect_within;
  std::string why;
  config.sources = {{"talis-eu-1", *parse_address_prefix("192.0.2.10", why)},
                    {"talis-ca", *parse_address_prefix("198.51.100.0/24", why)}};
  return config;
}

TcpSegment segment(const std::string& from, std::uint16_t from_port, const std::string& to, std::uint16_t to_port, std::uint8_t flags) {
  return {boost::asio::ip::make_address(from), boost::asio::ip::make_address(to), from_port, to_port, flags};
}

TEST(InboundTally, CountsAttemptsAnswersAndRefusalsPerSource) {
  InboundTally tally(watch_config());
  const auto t0 = std::chrono::system_clock::from_time_t(1'800'000'000);
  tally.observe(segment("192.0.2.10", 40000, "192.0.2.1", 210, tcp_flag::syn), t0);
  tally.observe(segment("192.0.2.1", 210, "192.0.2.10", 40000, tcp_flag::syn | tcp_flag::ack), t0 + 1ms);
  tally.observe(segment("198.51.100.7", 40001, "192.0.2.1", 210, tcp_flag::syn), t0 + 2ms);
  tally.observe(segment("192.0.2.1", 210, "198.51.100.7", 40001, tcp_flag::rst | tcp_flag::ack), t0 + 3ms);
  // Not attempts: the RST ending an established connection, a SYN-ACK nobody asked for (in
  // the capture), another port, and a stranger.
  tally.observe(segment("192.0.2.1", 210, "192.0.2.10", 40000, tcp_flag::rst), t0 + 4ms);
  tally.observe(segment("192.0.2.1", 210, "198.51.100.8", 5, tcp_flag::syn | tcp_flag::ack), t0 + 5ms);
  tally.observe(segment("192.0.2.10", 40002, "192.0.2.1", 211, tcp_flag::syn), t0 + 6ms);
  tally.observe(segment("203.0.113.5", 40003, "192.0.2.1", 210, tcp_flag::syn), t0 + 7ms);

  const auto& eu = tally.sources()[0];
  EXPECT_EQ(eu.syn, 1u);
  EXPECT_EQ(eu.answered, 1u);
  EXPECT_EQ(eu.rejected, 0u);
  EXPECT_EQ(eu.last_seen, t0);
  const auto& ca = tally.sources()[1];
  EXPECT_EQ(ca.syn, 1u);
  EXPECT_EQ(ca.answered, 0u);
  EXPECT_EQ(ca.rejected, 1u);
  EXPECT_EQ(tally.unexpected_syn(), 1u);
  EXPECT_TRUE(tally.up(0, t0 + 1s));
  EXPECT_FALSE(tally.up(1, t0 + 1s)) << "refused is not up";
}

TEST(InboundTally, UpNeedsARecentAnswerAndNoLatestAttemptLeftUnanswered) {
  InboundTally tally(watch_config(10s));
  const auto t0 = std::chrono::system_clock::from_time_t(1'800'000'000);
  EXPECT_FALSE(tally.up(0, t0)) << "nothing seen yet";
  tally.observe(segment("192.0.2.10", 40000, "192.0.2.1", 210, tcp_flag::syn), t0);
  tally.observe(segment("192.0.2.1", 210, "192.0.2.10", 40000, tcp_flag::syn | tcp_flag::ack), t0);
  EXPECT_TRUE(tally.up(0, t0 + 10s));
  EXPECT_FALSE(tally.up(0, t0 + 11s)) << "silence past expect_within";
  // A new attempt nobody answers: up until the grace for the SYN-ACK has passed, then down.
  tally.observe(segment("192.0.2.10", 40001, "192.0.2.1", 210, tcp_flag::syn), t0 + 5s);
  EXPECT_TRUE(tally.up(0, t0 + 5s + 1s));
  EXPECT_FALSE(tally.up(0, t0 + 5s + InboundTally::kAnswerGrace));
  tally.observe(segment("192.0.2.1", 210, "192.0.2.10", 40001, tcp_flag::syn | tcp_flag::ack), t0 + 8s);
  EXPECT_TRUE(tally.up(0, t0 + 9s));
}

TEST(InboundTally, IPv4MappedPeersMatchTheirIpv4Source) {
  InboundTally tally(watch_config());
  tally.observe(segment("::ffff:192.0.2.10", 40000, "::ffff:192.0.2.1", 210, tcp_flag::syn), std::chrono::system_clock::now());
  EXPECT_EQ(tally.sources()[0].syn, 1u);
}

// --- Config ---------------------------------------------------------------------------------

TEST(InboundConfig, ReadsAWatchAndNamesEveryMistake) {
  const Config config = parse_config(R"([agent]
labels = { site = "main" }
[[inbound]]
name = "talis"
port = 210
expect_within = "6h"
interface = "eth0"
sources = [ { source = "talis-eu-1", address = "54.171.115.177" }, { source = "talis-ca", address = "15.222.112.0/24" } ]
labels = { vendor = "talis" }
)",
                                     "site.toml");
  ASSERT_EQ(config.inbound.size(), 1u);
  const auto& watch = config.inbound[0];
  EXPECT_EQ(watch.name, "talis");
  EXPECT_EQ(watch.port, 210);
  EXPECT_EQ(watch.expect_within, 6h);
  EXPECT_EQ(watch.interface, "eth0");
  ASSERT_EQ(watch.sources.size(), 2u);
  EXPECT_EQ(watch.sources[1].prefix.length, 24u);
  EXPECT_EQ(watch.labels, (Labels{{"site", "main"}, {"vantage", "any"}, {"vendor", "talis"}}));
  EXPECT_EQ(parse_config("[[inbound]]\nname = \"w\"\nport = \"210\"\nsources = [{ source = \"a\", address = \"192.0.2.1\" }]\n", "s.toml")
                .inbound[0]
                .expect_within,
            6h);

  const std::string head = "[[inbound]]\nname = \"w\"\n";
  const std::string one = "sources = [{ source = \"a\", address = \"192.0.2.1\" }]\n";
  const std::vector<std::pair<std::string, std::string>> cases{
      {head + one, "site.toml:1:1: inbound \"w\": missing required key \"port\""},
      {head + "port = 0\n" + one, "site.toml:3:8: inbound \"w\": key \"port\": must be a port number from 1 to 65535"},
      {head + "port = 210\n", "site.toml:1:1: inbound \"w\": missing required key \"sources\""},
      {head + "port = 210\nsources = []\n", "site.toml:4:11: inbound \"w\": key \"sources\": must be a list of 1 to 64 tables"},
      {head + "port = 210\nsources = [{ source = \"a\", address = \"192.0.2.1/8\" }]\n", "site.toml:4:38: inbound \"w\": key \"address\": \"192.0.2.1/8\" has bits set past the /8 prefix"},
      {head + "port = 210\nsources = [{ source = \"a\", address = \"talis.example\" }]\n", "key \"address\": \"talis.example\" is not an IP address"},
      {head + "port = 210\nsources = [{ source = \"a\", address = \"192.0.2.1\" }, { source = \"a\", address = \"192.0.2.2\" }]\n", "key \"source\": duplicate source \"a\""},
      {head + "port = 210\nsources = [{ source = \"a\", addr = \"192.0.2.1\" }]\n", "inbound \"w\": missing required key \"address\""},
      {head + "port = 210\n" + one + "labels = { source = \"x\" }\n", "label name \"source\" is set by the watch itself"},
      {head + "port = 210\n" + one + "expect_within = \"soon\"\n", "key \"expect_within\": bad duration"},
      {head + "port = 210\n" + one + "interfaces = \"any\"\n", "site.toml:5:1: inbound \"w\": unknown key \"interfaces\""},
      {"[[check]]\nname = \"w\"\nprobe = \"tcp\"\ntarget = \"h:1\"\n" + head + "port = 210\n" + one, "site.toml:6:8: inbound \"w\": the name of a check or watch already"},
      {"inbound = 3\n", "site.toml:1:11: \"inbound\" must be an array of tables: write each as [[inbound]]"},
  };
  for (const auto& [text, expected] : cases) {
    std::string message = "<no error>";
    try {
      parse_config(text, "site.toml");
    } catch (const ConfigError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(expected), std::string::npos) << text << "\n  got:      " << message << "\n  expected: " << expected;
  }
}

TEST(InboundConfig, TheTalisProfileWatchesItsFiveAddresses) {
  const Config config = parse_config("", "site.toml", builtin_probes(), {{"talis-courseflow"}, {{"catalogue_host", "localhost"}, {"catalogue_port", "2200"}}});
  ASSERT_EQ(config.inbound.size(), 1u);
  EXPECT_EQ(config.inbound[0].port, 2200);
  std::vector<std::string> addresses;
  for (const auto& source : config.inbound[0].sources) addresses.push_back(source.name + "=" + source.prefix.base.to_string());
  EXPECT_EQ(addresses, (std::vector<std::string>{"talis-eu-1=54.171.115.177", "talis-eu-2=63.32.50.41", "talis-eu-3=63.34.44.221",
                                                 "talis-ca-1=15.222.112.22", "talis-ca-2=15.222.179.147"}));
}

// --- Real captures in namespaces -----------------------------------------------------------

enum class Connected { yes, refused, timed_out, other };

#ifdef _WIN32
// No network namespaces on Windows (InboundCapture skips, NetworkNamespace says why): never called.
Connected connect_from(const std::string&, const std::string&, std::uint16_t, std::chrono::milliseconds) { return Connected::other; }
int listen_on(std::uint16_t) { return -1; }
#else
// A TCP connect from `source` to `destination`:`port`, bounded by `limit`.
Connected connect_from(const std::string& source, const std::string& destination, std::uint16_t port, std::chrono::milliseconds limit) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in local{}, remote{};
  local.sin_family = remote.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  inet_pton(AF_INET, destination.c_str(), &remote.sin_addr);
  remote.sin_port = htons(port);
  Connected result = Connected::other;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0 || errno == EINPROGRESS) {
      pollfd wait{fd, POLLOUT, 0};
      if (poll(&wait, 1, static_cast<int>(limit.count())) == 0) {
        result = Connected::timed_out;
      } else {
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        result = error == 0 ? Connected::yes : error == ECONNREFUSED ? Connected::refused : Connected::other;
      }
    }
  }
  close(fd);
  return result;
}

// A listening socket on every address of the namespace it is made in (the kernel answers the
// handshake from its backlog; nothing needs to accept).
int listen_on(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 || listen(fd, 64) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}
#endif

class InboundCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!catalogue_.ok()) GTEST_SKIP() << catalogue_.why();
    ASSERT_TRUE(vendor_.ok());
    // Documentation ranges only (RFC 5737): 192.0.2.10 and 198.51.100.10 are expected sources,
    // 192.0.2.99 is a stranger.
    ASSERT_TRUE(catalogue_.link_to(vendor_, {"192.0.2.1/24", "198.51.100.1/24"}, {"192.0.2.10/24", "192.0.2.99/24", "198.51.100.10/24"}));
    // Started inside, so the capture is the catalogue's.
    catalogue_.run_inside([&] { watches_.apply({watch_config(2s)}); });
    const InboundSnapshot started = now();
    ASSERT_TRUE(started.running) << started.why_not_running;
  }
  void TearDown() override {
    watches_.apply({});
    if (listener_ >= 0) testing::close_socket(listener_);
  }
  void listen() {
    catalogue_.run_inside([&] { listener_ = listen_on(210); });
    ASSERT_GE(listener_, 0);
  }
  Connected connect(const std::string& source, std::chrono::milliseconds limit = 2s) {
    Connected result = Connected::other;
    vendor_.run_inside([&] { result = connect_from(source, "192.0.2.1", 210, limit); });
    return result;
  }
  bool wait_for(const std::function<bool(const InboundSnapshot&)>& ready) { return watches_.wait_until("talis", ready, 5s); }
  InboundSnapshot at(std::chrono::system_clock::time_point when) const { return watches_.snapshots(when).at(0); }
  InboundSnapshot now() const { return at(std::chrono::system_clock::now()); }

  testing::NetworkNamespace catalogue_, vendor_;
  InboundWatches watches_{inbound::make_platform_capture_backend()};
  int listener_ = -1;
};

TEST_F(InboundCapture, AnsweredCallsAdvanceTheCountsAndAreUp) {
  listen();
  const auto before = std::chrono::system_clock::now();
  ASSERT_EQ(connect("192.0.2.10"), Connected::yes);
  ASSERT_TRUE(wait_for([](const InboundSnapshot& s) { return s.sources[0].answered >= 1; }));
  const InboundSnapshot s = now();
  EXPECT_EQ(s.sources[0].syn, 1u);
  EXPECT_EQ(s.sources[0].answered, 1u);
  EXPECT_EQ(s.sources[0].rejected, 0u);
  ASSERT_TRUE(s.sources[0].last_seen);
  EXPECT_GE(*s.sources[0].last_seen, before);
  EXPECT_TRUE(s.up[0]);
  EXPECT_EQ(s.sources[1].syn, 0u);
  EXPECT_FALSE(s.up[1]);

  ASSERT_EQ(connect("198.51.100.10"), Connected::yes) << "a source given as a CIDR prefix";
  ASSERT_TRUE(wait_for([](const InboundSnapshot& s) { return s.sources[1].answered >= 1; }));

  // Silence past expect_within (2 s in this test): down, seen from a clock moved past it.
  EXPECT_FALSE(at(std::chrono::system_clock::now() + 3s).up[0]);
}

TEST_F(InboundCapture, DroppedByTheHostFirewallIsSeenButNotAnswered) {
  listen();
  ASSERT_EQ(connect("192.0.2.10"), Connected::yes);
  ASSERT_TRUE(wait_for([](const InboundSnapshot& s) { return s.sources[0].answered == 1; }));
  ASSERT_TRUE(catalogue_.nft("table inet host_firewall {\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
                             "    tcp dport 210 drop\n  }\n}\n"));
  ASSERT_EQ(connect("192.0.2.10", 1500ms), Connected::timed_out);
  ASSERT_TRUE(wait_for([](const InboundSnapshot& s) { return s.sources[0].syn >= 2; }));
  const InboundSnapshot s = at(std::chrono::system_clock::now() + InboundTally::kAnswerGrace);
  EXPECT_GE(s.sources[0].syn, 2u);  // the kernel may have retransmitted the SYN
  EXPECT_EQ(s.sources[0].answered, 1u);
  EXPECT_EQ(s.sources[0].rejected, 0u);
  EXPECT_FALSE(s.up[0]) << "its latest SYN went unanswered";
}

TEST_F(InboundCapture, AClosedPortCountsAsRejected) {
  ASSERT_EQ(connect("192.0.2.10"), Connected::refused);
  ASSERT_TRUE(wait_for([](const InboundSnapshot& s) { return s.sources[0].rejected >= 1; }));
  const InboundSnapshot s = now();
  EXPECT_EQ(s.sources[0].syn, 1u);
  EXPECT_EQ(s.sources[0].answered, 0u);
  EXPECT_EQ(s.sources[0].rejected, 1u);
  EXPECT_FALSE(s.up[0]);
}

TEST_F(InboundCapture, AStrangerOnlyMovesTheAggregateCounter) {
  listen();
  ASSERT_EQ(connect("192.0.2.99"), Connected::yes);
  ASSERT_TRUE(wait_for([](const InboundSnapshot& s) { return s.unexpected_syn >= 1; }));
  const InboundSnapshot s = now();
  EXPECT_EQ(s.unexpected_syn, 1u);
  ASSERT_EQ(s.sources.size(), 2u) << "no series per stranger";
  EXPECT_EQ(s.sources[0].syn + s.sources[1].syn, 0u);

  // And what a scrape shows of it.
  ResultsStore store;
  AgentHealth health;
  ExpositionCollector collector(store, health, "test", &watches_);
  const std::string text = render_text_exposition(collector);
  EXPECT_NE(text.find("connectivity_inbound_unexpected_syn_total{check=\"talis\",port=\"210\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("connectivity_inbound_syn_total{check=\"talis\",port=\"210\",source=\"talis-eu-1\"} 0"), std::string::npos);
  EXPECT_NE(text.find("connectivity_inbound_watch_running{check=\"talis\",port=\"210\"} 1"), std::string::npos);
  EXPECT_NE(text.find("# TYPE connectivity_inbound_answered_total counter"), std::string::npos);
  EXPECT_EQ(text.find("192.0.2.99"), std::string::npos);
}

// Capabilities are per thread on Linux: this thread gives up CAP_NET_RAW, as an agent started
// without AmbientCapabilities=CAP_NET_RAW would not have it.
TEST(InboundWatchPermission, WithoutCapNetRawItSaysSoAndDoesNotRun) {
#ifdef _WIN32
  GTEST_SKIP() << "on Windows: Linux's capabilities (CAP_NET_RAW); Windows has no packet capture for the watch";
#else
  if (geteuid() != 0) GTEST_SKIP() << "runs as root and drops the capability itself";
  const auto backend = inbound::make_platform_capture_backend();
  std::unique_ptr<InboundWatch> watch;
  std::thread unprivileged([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ASSERT_EQ(syscall(SYS_capget, &header, data), 0);
    data[0].effective &= ~(1u << CAP_NET_RAW);
    ASSERT_EQ(syscall(SYS_capset, &header, data), 0);
    watch = std::make_unique<InboundWatch>(watch_config(), *backend);
  });
  unprivileged.join();
  ASSERT_TRUE(watch);
  EXPECT_FALSE(watch->running());
  EXPECT_NE(watch->why_not_running().find("CAP_NET_RAW"), std::string::npos) << watch->why_not_running();
  EXPECT_FALSE(watch->capture_unavailable()) << "the host's setup, not the platform";
  EXPECT_FALSE(watch->snapshot(std::chrono::system_clock::now()).running);
#endif
}

}  // namespace
}  // namespace connectivity

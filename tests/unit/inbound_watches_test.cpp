// The [[inbound]] watches as the agent runs them, with no packet capture needed (so on every
// platform): across reloads on a capture the test feeds by hand, and an agent given the
// backend of a platform without capture (the Windows build's). The real captures are in
// inbound_test.cpp.
#include "agent/config.h"
#include "agent/inbound_watches.h"
#include "agent/runtime.h"
#include "exporters/prometheus_exposition.h"
#include "probes/inbound/capture_backend.h"
#include "probes/inbound/captured_frame.h"
#include "tests/support/http_client.h"
#include "tests/support/loopback.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/address_v4.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace connectivity {
namespace {

using namespace std::chrono_literals;
namespace tcp_flag = inbound::tcp_flag;
using Bytes = std::vector<std::uint8_t>;

InboundWatchConfig watch_config() {
  InboundWatchConfig config;
  config.name = "talis";
  config.port = 210;
  std::string why;
  config.sources = {{"talis-eu-1", *parse_address_prefix("192.0.2.10", why)}};
  return config;
}

// An IPv4 packet holding a bare TCP header, as a raw-IP capture hands it over.
Bytes tcp_packet(const std::string& from, std::uint16_t from_port, const std::string& to, std::uint16_t to_port, std::uint8_t flags) {
  Bytes packet(40, 0);
  packet[0] = 0x45;  // IPv4, 5-word header
  packet[3] = 40;    // total length
  packet[8] = 64;
  packet[9] = 6;  // TCP
  const auto source = boost::asio::ip::make_address_v4(from).to_bytes();
  const auto destination = boost::asio::ip::make_address_v4(to).to_bytes();
  std::copy(source.begin(), source.end(), packet.begin() + 12);
  std::copy(destination.begin(), destination.end(), packet.begin() + 16);
  packet[20] = from_port >> 8, packet[21] = from_port & 0xff;
  packet[22] = to_port >> 8, packet[23] = to_port & 0xff;
  packet[32] = 5 << 4;  // data offset: 5 words
  packet[33] = flags;
  return packet;
}

// A capture backend the test drives: each capture's frames are handed in by the test, and the
// backend counts the captures started and still open.
class HandFedCaptures final : public inbound::CaptureBackend {
 public:
  std::optional<std::string> unavailable() const override { return std::nullopt; }
  inbound::CaptureStart start(const inbound::CaptureSpec& spec, inbound::CaptureSink& sink) override {
    ++started_;
    open_[spec.port] = &sink;
    return {.capture = std::make_unique<Capture>(open_, spec.port), .why_not = {}};
  }
  // As if the capture of `port` saw this IPv4 packet.
  void feed(std::uint16_t port, const Bytes& packet) { open_.at(port)->on_frame(inbound::kLinkRaw, packet); }
  void fail(std::uint16_t port, const std::string& why) { open_.at(port)->on_capture_failed(why); }
  int started() const { return started_; }
  std::size_t open() const { return open_.size(); }

 private:
  class Capture final : public inbound::PacketCapture {
   public:
    Capture(std::map<std::uint16_t, inbound::CaptureSink*>& open, std::uint16_t port) : open_(open), port_(port) {}
    ~Capture() override { open_.erase(port_); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;

   private:
    std::map<std::uint16_t, inbound::CaptureSink*>& open_;
    std::uint16_t port_;
  };
  int started_ = 0;
  std::map<std::uint16_t, inbound::CaptureSink*> open_;  // by port
};

// A call from 192.0.2.10 (talis-eu-1) to `port`, answered.
void answered_call(HandFedCaptures& captures, std::uint16_t port) {
  captures.feed(port, tcp_packet("192.0.2.10", 40000, "192.0.2.1", port, tcp_flag::syn));
  captures.feed(port, tcp_packet("192.0.2.1", port, "192.0.2.10", 40000, tcp_flag::syn | tcp_flag::ack));
}

std::string scrape(const InboundWatches& watches) {
  const ResultsStore store;
  const AgentHealth health;
  return render_text_exposition(ExpositionCollector(store, health, "test", &watches));
}

TEST(InboundWatches, AReloadKeepsAnUnchangedWatchWithItsCountsAndRestartsAChangedOne) {
  const auto captures = std::make_shared<HandFedCaptures>();
  InboundWatches watches(captures);
  const auto counts = [&] { return watches.snapshots(std::chrono::system_clock::now()); };
  watches.apply({watch_config()});
  ASSERT_EQ(captures->open(), 1u);
  answered_call(*captures, 210);
  ASSERT_EQ(counts().size(), 1u);
  EXPECT_TRUE(counts()[0].running);
  EXPECT_EQ(counts()[0].sources[0].answered, 1u);
  const std::string text = scrape(watches);
  EXPECT_NE(text.find("connectivity_inbound_watch_running{check=\"talis\",port=\"210\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("connectivity_inbound_answered_total{check=\"talis\",port=\"210\",source=\"talis-eu-1\"} 1\n"), std::string::npos);

  watches.apply({watch_config()});
  EXPECT_EQ(captures->started(), 1) << "the unchanged watch goes on capturing";
  EXPECT_EQ(counts()[0].sources[0].answered, 1u) << "with its counts";

  InboundWatchConfig moved = watch_config();
  moved.port = 2200;
  InboundWatchConfig added = watch_config();
  added.name = "talis-ca";
  added.port = 2210;
  watches.apply({moved, added});
  EXPECT_EQ(captures->started(), 3);
  EXPECT_EQ(captures->open(), 2u) << "the capture of port 210 stopped";
  ASSERT_EQ(counts().size(), 2u);
  EXPECT_EQ(counts()[0].port, 2200);
  EXPECT_EQ(counts()[0].sources[0].syn, 0u) << "a changed watch starts from zero";
  answered_call(*captures, 2210);
  EXPECT_EQ(counts()[1].sources[0].answered, 1u);

  watches.apply({});
  EXPECT_EQ(captures->open(), 0u);
  EXPECT_TRUE(counts().empty());
}

TEST(InboundWatches, ACaptureThatEndsByItselfIsExportedNotRunning) {
  const auto captures = std::make_shared<HandFedCaptures>();
  InboundWatches watches(captures);
  watches.apply({watch_config()});
  captures->fail(210, "the capture stopped (interface gone?)");
  const InboundSnapshot s = watches.snapshots(std::chrono::system_clock::now()).at(0);
  EXPECT_FALSE(s.running);
  EXPECT_EQ(s.why_not_running, "the capture stopped (interface gone?)");
  const std::string text = scrape(watches);
  EXPECT_NE(text.find("connectivity_inbound_watch_running{check=\"talis\",port=\"210\"} 0\n"), std::string::npos) << text;
}

// --- An agent on a platform without packet capture -----------------------------------------

// stderr (the agent's log) from construction until take().
class CapturedStderr {
 public:
  CapturedStderr() { ::testing::internal::CaptureStderr(); }
  ~CapturedStderr() {
    if (!taken_) ::testing::internal::GetCapturedStderr();
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;
  std::string take() {
    taken_ = true;
    return ::testing::internal::GetCapturedStderr();
  }

 private:
  bool taken_ = false;
};

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
  return count;
}

// What the Windows build does (its backend is this one), run anywhere: the watch is accepted
// and exported as not running, the log says why once, and the check beside it goes on.
TEST(InboundWithoutCapture, TheWatchIsExportedNotRunningSaysWhyOnceAndEveryCheckGoesOn) {
  testing::LoopbackListener catalogue;
  const std::string dir = testing::make_temp_dir("connectivity-inbound-test");
  const std::string config_path = dir + "/agent.toml";
  const std::string config_text = "[[check]]\nname = \"catalogue\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:" +
                                  std::to_string(catalogue.port()) + "\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n\n"
                                  "[[inbound]]\nname = \"talis-watch\"\nport = 210\n"
                                  "sources = [{ source = \"talis-eu-1\", address = \"54.171.115.177\" }]\n";
  std::ofstream(config_path) << config_text;
  const std::string check_key = parse_config(config_text, config_path).checks.at(0).series_key();

  CapturedStderr log;
  auto agent = std::make_unique<Agent>(AgentOptions{
      .config_path = config_path,
      .listen = {"127.0.0.1:0"},
      .handle_signals = false,
      .capture_backend = inbound::make_unavailable_capture_backend(
          "packet capture is not available on Windows; run the inbound watch on the catalogue host")});
  std::thread running([&] { agent->run(); });
  EXPECT_TRUE(agent->results().wait_for_runs(check_key, 2, 10s)) << "the check runs beside the watch";

  const auto reply = testing::http_request(agent->listening_ports().at(0), "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_NE(reply.body.find("\nconnectivity_inbound_watch_running{check=\"talis-watch\",vantage=\"any\",port=\"210\"} 0\n"), std::string::npos)
      << reply.body;
  const auto samples = testing::parse_exposition(reply.body);
  EXPECT_EQ(testing::value_of(samples, "connectivity_up", {{"check", "catalogue"}}), 1.0);
  EXPECT_EQ(testing::value_of(samples, "connectivity_inbound_syn_total", {{"check", "talis-watch"}, {"source", "talis-eu-1"}}), 0.0);

  // A reload keeps the unchanged watch: it does not start again, so it does not warn again.
  const auto reload_error = agent->reload();
  EXPECT_FALSE(reload_error) << reload_error.value_or("");
  const std::uint64_t runs = agent->results().runs(check_key);
  EXPECT_TRUE(agent->results().wait_for_runs(check_key, runs + 1, 10s)) << "the check goes on after the reload";

  agent->stop();
  running.join();
  agent.reset();
  std::filesystem::remove_all(dir);
  const std::string text = log.take();
  EXPECT_EQ(occurrences(text, "level=warn msg=\"packet capture is not available on Windows; run the inbound watch on the catalogue host\" "
                              "check=talis-watch port=210\n"),
            1u)
      << text;
  EXPECT_EQ(occurrences(text, "level=error"), 0u) << text;
}

}  // namespace
}  // namespace connectivity

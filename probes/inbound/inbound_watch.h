// [[inbound]]: watch that a vendor's calls into the library still arrive and are answered.
// No outbound probe can send from Talis Courseflow's addresses; the host that runs the
// catalogue can see their SYNs arrive and its own SYN-ACKs (or RSTs) leave. A capture for the
// port (probes/inbound/capture_backend.h: libpcap on Linux, none on Windows) counts them per
// expected source.
#pragma once

#include "probes/address_prefix.h"
#include "probes/inbound/capture_backend.h"
#include "probes/inbound/captured_frame.h"
#include "probes/probe.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace connectivity {

struct InboundSource {
  std::string name;  // the `source` label, e.g. "talis-eu-1"
  AddressPrefix prefix;
};

struct InboundWatchConfig {
  std::string name;  // the `check` label
  std::uint16_t port = 0;
  std::vector<InboundSource> sources;
  std::chrono::milliseconds expect_within{std::chrono::hours(6)};
  std::string interface = "any";
  Labels labels;  // configured labels, the agent's merged in
  // Two watches with the same identity are the same watch: a reload keeps it (and its counts).
  std::string identity() const;
};

struct InboundSourceCounts {
  std::string source;
  std::uint64_t syn = 0;       // connection attempts from the source to the port
  std::uint64_t answered = 0;  // SYN-ACKs the host sent back
  std::uint64_t rejected = 0;  // RSTs the host sent back
  std::optional<std::chrono::system_clock::time_point> last_seen{};      // last SYN
  std::optional<std::chrono::system_clock::time_point> last_answered{};  // last SYN-ACK
};

// Which segments count, and for which source: a pure function of what was captured, so it is
// tested (and fuzzed) without a capture.
class InboundTally {
 public:
  explicit InboundTally(const InboundWatchConfig& config);
  void observe(const inbound::TcpSegment& segment, std::chrono::system_clock::time_point when);

  const std::vector<InboundSourceCounts>& sources() const { return sources_; }
  std::uint64_t unexpected_syn() const { return unexpected_; }
  // True when the source's calls were answered within expect_within before `now`, and its
  // latest SYN was not left unanswered (a SYN-ACK follows in milliseconds; kAnswerGrace allows
  // for a scrape between the two).
  bool up(std::size_t source, std::chrono::system_clock::time_point now) const;
  static constexpr std::chrono::seconds kAnswerGrace{2};

 private:
  // The index of the first source containing `address`.
  std::optional<std::size_t> match(const boost::asio::ip::address& address) const;
  InboundWatchConfig config_;
  std::vector<InboundSourceCounts> sources_;
  std::uint64_t unexpected_ = 0;
  // Attempts (source address and port) not yet answered; bounded: a flood evicts entries
  // rather than growing memory.
  static constexpr std::size_t kMaxPending = 4096;
  std::set<std::pair<boost::asio::ip::address, std::uint16_t>> pending_;
};

struct InboundSnapshot {
  std::string name;
  std::uint16_t port = 0;
  Labels labels;
  bool running = false;
  std::string why_not_running;  // when not running; not exported (the log says it)
  std::vector<InboundSourceCounts> sources;
  std::vector<bool> up;  // parallel to sources
  std::uint64_t unexpected_syn = 0;
};

// A capture on one interface (default "any") for one port, on the capture's own thread.
// Starts the capture in the constructor, in the caller's network namespace; never throws for a
// capture that cannot start: it reports itself not running, with the reason (no CAP_NET_RAW,
// no such interface, no capture on this platform), and the agent keeps going.
class InboundWatch final : private inbound::CaptureSink {
 public:
  InboundWatch(InboundWatchConfig config, inbound::CaptureBackend& backend);
  ~InboundWatch();
  InboundWatch(const InboundWatch&) = delete;
  InboundWatch& operator=(const InboundWatch&) = delete;

  const InboundWatchConfig& config() const { return config_; }
  bool running() const { return running_; }
  // True when the platform has no capture at all (not a fault of this host's setup).
  bool capture_unavailable() const { return capture_unavailable_; }
  std::string why_not_running() const;
  InboundSnapshot snapshot(std::chrono::system_clock::time_point now) const;
  // Waits (bounded by `limit`) until `ready` holds for a snapshot; for tests and tools.
  bool wait_until(const std::function<bool(const InboundSnapshot&)>& ready, std::chrono::milliseconds limit) const;

 private:
  void on_frame(int link_type, std::span<const std::uint8_t> frame) override;
  void on_capture_failed(std::string why) override;

  InboundWatchConfig config_;
  bool capture_unavailable_ = false;
  std::atomic<bool> running_{false};  // false again if the capture fails later (interface gone)
  mutable std::mutex mutex_;          // guards why_not_, tally_ and observed_
  std::string why_not_;
  mutable std::condition_variable changed_;
  InboundTally tally_;
  std::uint64_t observed_ = 0;  // segments parsed: what wait_until waits on
  std::unique_ptr<inbound::PacketCapture> capture_;  // last: it calls into the members above
};

}  // namespace connectivity

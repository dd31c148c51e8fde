#include "probes/inbound/inbound_watch.h"

#include <utility>

namespace connectivity {

std::string InboundWatchConfig::identity() const {
  std::string key = name + '\0' + std::to_string(port) + '\0' + interface + '\0' + std::to_string(expect_within.count());
  for (const auto& source : sources) key += '\0' + source.name + '=' + source.prefix.base.to_string() + '/' + std::to_string(source.prefix.length);
  for (const auto& [k, v] : labels) {
    key += '\0';
    key += k;
    key += '=';
    key += v;
  }
  return key;
}

InboundTally::InboundTally(const InboundWatchConfig& config) : config_(config) {
  for (const auto& source : config_.sources) sources_.push_back(InboundSourceCounts{.source = source.name});
}

std::optional<std::size_t> InboundTally::match(const boost::asio::ip::address& address) const {
  // A v4-mapped IPv6 address is the IPv4 peer of a dual-stack listener.
  const auto plain = address.is_v6() && address.to_v6().is_v4_mapped()
                         ? boost::asio::ip::address(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()))
                         : address;
  for (std::size_t index = 0; index < config_.sources.size(); ++index)
    if (config_.sources[index].prefix.contains(plain)) return index;
  return std::nullopt;
}

void InboundTally::observe(const inbound::TcpSegment& segment, std::chrono::system_clock::time_point when) {
  using namespace inbound;
  const bool syn = segment.flags & tcp_flag::syn;
  const bool ack = segment.flags & tcp_flag::ack;
  const bool rst = segment.flags & tcp_flag::rst;
  // Each packet counts once per interface that shows it. On the catalogue's own host that is
  // once; a host that forwards the traffic would show it twice on "any" (README: set interface).
  if (syn && !ack && !rst && segment.destination_port == config_.port) {
    const auto index = match(segment.source);
    if (!index) {
      ++unexpected_;
      return;
    }
    ++sources_[*index].syn;
    sources_[*index].last_seen = when;
    if (pending_.size() >= kMaxPending) pending_.erase(pending_.begin());
    pending_.insert({segment.source, segment.source_port});
    return;
  }
  if (segment.source_port != config_.port) return;
  const auto index = match(segment.destination);
  if (!index) return;
  // Only an answer to an attempt counts: the RST that ends an established connection is not
  // a refusal, and a SYN-ACK for an attempt made before the capture started is not ours.
  const bool attempt = pending_.erase({segment.destination, segment.destination_port}) > 0;
  if (!attempt) return;
  if (syn && ack) {
    ++sources_[*index].answered;
    sources_[*index].last_answered = when;
  } else if (rst) {
    ++sources_[*index].rejected;
  } else {
    pending_.insert({segment.destination, segment.destination_port});  // neither: still waiting
  }
}

bool InboundTally::up(std::size_t source, std::chrono::system_clock::time_point now) const {
  const auto& s = sources_.at(source);
  if (!s.last_answered || now - *s.last_answered > config_.expect_within) return false;
  const bool latest_unanswered = s.last_seen && *s.last_seen > *s.last_answered && now - *s.last_seen >= kAnswerGrace;
  return !latest_unanswered;
}

InboundWatch::InboundWatch(InboundWatchConfig config, inbound::CaptureBackend& backend)
    : config_(std::move(config)), tally_(config_) {
  if (auto why = backend.unavailable()) {
    capture_unavailable_ = true;
    why_not_ = std::move(*why);
    return;
  }
  // Running before the capture starts: a capture that fails at once, on its own thread, must
  // leave it false.
  running_ = true;
  auto started = backend.start({.interface = config_.interface, .port = config_.port}, *this);
  if (!started.capture) {
    running_ = false;
    why_not_ = std::move(started.why_not);
    return;
  }
  capture_ = std::move(started.capture);
}

// Stopped first: the capture's thread calls into the tally and the condition variable.
InboundWatch::~InboundWatch() { capture_.reset(); }

void InboundWatch::on_frame(int link_type, std::span<const std::uint8_t> frame) {
  const auto segment = inbound::parse_captured_frame(link_type, frame);
  if (!segment) return;
  {
    std::lock_guard lock(mutex_);
    tally_.observe(*segment, std::chrono::system_clock::now());
    ++observed_;
  }
  changed_.notify_all();
}

void InboundWatch::on_capture_failed(std::string why) {
  std::lock_guard lock(mutex_);
  why_not_ = std::move(why);
  running_ = false;
}

std::string InboundWatch::why_not_running() const {
  std::lock_guard lock(mutex_);
  return why_not_;
}

InboundSnapshot InboundWatch::snapshot(std::chrono::system_clock::time_point now) const {
  InboundSnapshot out;
  out.name = config_.name;
  out.port = config_.port;
  out.labels = config_.labels;
  out.running = running_;
  std::lock_guard lock(mutex_);
  if (!out.running) out.why_not_running = why_not_;
  out.sources = tally_.sources();
  for (std::size_t i = 0; i < out.sources.size(); ++i) out.up.push_back(tally_.up(i, now));
  out.unexpected_syn = tally_.unexpected_syn();
  return out;
}

bool InboundWatch::wait_until(const std::function<bool(const InboundSnapshot&)>& ready, std::chrono::milliseconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    std::uint64_t seen = 0;
    {
      std::lock_guard lock(mutex_);
      seen = observed_;
    }
    if (ready(snapshot(std::chrono::system_clock::now()))) return true;
    std::unique_lock lock(mutex_);
    if (!changed_.wait_until(lock, deadline, [&] { return observed_ != seen; })) return false;
  }
}

}  // namespace connectivity

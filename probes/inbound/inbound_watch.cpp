#include "probes/inbound/inbound_watch.h"

#include <pcap/pcap.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace connectivity {

std::string InboundWatchConfig::identity() const {
  std::string key = name + '\0' + std::to_string(port) + '\0' + interface + '\0' + std::to_string(expect_within.count());
  for (const auto& source : sources) key += '\0' + source.name + '=' + source.prefix.base.to_string() + '/' + std::to_string(source.prefix.length);
  for (const auto& [k, v] : labels) key += '\0' + k + '=' + v;
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

InboundWatch::InboundWatch(InboundWatchConfig config) : config_(std::move(config)), tally_(config_) {
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pcap = pcap_create(config_.interface.c_str(), error);
  if (!pcap) {
    why_not_ = std::string("cannot capture on ") + config_.interface + ": " + error;
    return;
  }
  // Only the headers are read: 256 bytes hold a cooked header, IPv6 with options and TCP.
  pcap_set_snaplen(pcap, 256);
  pcap_set_promisc(pcap, 0);
  pcap_set_immediate_mode(pcap, 1);
  const int activated = pcap_activate(pcap);
  if (activated < 0) {
    if (activated == PCAP_ERROR_PERM_DENIED)
      why_not_ = "no permission to capture: the agent needs CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW)";
    else if (activated == PCAP_ERROR_NO_SUCH_DEVICE)
      why_not_ = "no interface \"" + config_.interface + "\"";
    else
      why_not_ = std::string("cannot capture on ") + config_.interface + ": " + pcap_geterr(pcap);
    pcap_close(pcap);
    return;
  }
  bpf_program program{};
  const std::string filter = "tcp port " + std::to_string(config_.port);
  if (pcap_compile(pcap, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(pcap, &program) != 0 ||
      pcap_setnonblock(pcap, 1, error) != 0 || pcap_get_selectable_fd(pcap) < 0) {
    why_not_ = std::string("cannot set up the capture filter \"") + filter + "\": " + pcap_geterr(pcap);
    pcap_freecode(&program);
    pcap_close(pcap);
    return;
  }
  pcap_freecode(&program);
  wakeup_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeup_fd_ < 0) {
    why_not_ = "eventfd failed";
    pcap_close(pcap);
    return;
  }
  pcap_ = pcap;
  link_type_ = pcap_datalink(pcap);
  running_ = true;
  thread_ = std::thread([this] { capture_loop(); });
}

InboundWatch::~InboundWatch() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = write(wakeup_fd_, &one, sizeof one);
    thread_.join();
  }
  if (pcap_) pcap_close(static_cast<pcap_t*>(pcap_));
  if (wakeup_fd_ >= 0) close(wakeup_fd_);
}

void InboundWatch::deliver(std::span<const std::uint8_t> frame) {
  const auto segment = inbound::parse_captured_frame(link_type_, frame);
  if (!segment) return;
  {
    std::lock_guard lock(mutex_);
    tally_.observe(*segment, std::chrono::system_clock::now());
    ++observed_;
  }
  changed_.notify_all();
}

void InboundWatch::capture_loop() {
  auto* pcap = static_cast<pcap_t*>(pcap_);
  pollfd fds[2] = {{pcap_get_selectable_fd(pcap), POLLIN, 0}, {wakeup_fd_, POLLIN, 0}};
  const auto on_packet = [](u_char* self, const pcap_pkthdr* header, const u_char* bytes) {
    reinterpret_cast<InboundWatch*>(self)->deliver({bytes, header->caplen});
  };
  const auto fail = [this](std::string why) {
    std::lock_guard lock(mutex_);
    why_not_ = std::move(why);
    running_ = false;
  };
  while (true) {
    const int ready = poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready >= 0 && (fds[1].revents & POLLIN)) return;  // stopped
    if (ready < 0 || (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))) return fail("the capture stopped (interface gone?)");
    // Bounded per wakeup: a flood on the port cannot keep the loop from seeing a stop.
    if (pcap_dispatch(pcap, 256, on_packet, reinterpret_cast<u_char*>(this)) == PCAP_ERROR)
      return fail(std::string("the capture failed: ") + pcap_geterr(pcap));
  }
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

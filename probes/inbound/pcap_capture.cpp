#include "probes/inbound/pcap_capture.h"

#include <pcap/pcap.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace connectivity::inbound {

namespace {

// An activated, filtered, non-blocking capture, read on a thread of its own until destroyed.
class PcapCapture final : public PacketCapture {
 public:
  PcapCapture(pcap_t* pcap, int wakeup_fd, CaptureSink& sink)
      : pcap_(pcap), link_type_(pcap_datalink(pcap)), wakeup_fd_(wakeup_fd), sink_(sink), thread_([this] { capture_loop(); }) {}
  ~PcapCapture() override {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = write(wakeup_fd_, &one, sizeof one);
    thread_.join();
    pcap_close(pcap_);
    close(wakeup_fd_);
  }
  PcapCapture(const PcapCapture&) = delete;
  PcapCapture& operator=(const PcapCapture&) = delete;

 private:
  void capture_loop() {
    pollfd fds[2] = {{pcap_get_selectable_fd(pcap_), POLLIN, 0}, {wakeup_fd_, POLLIN, 0}};
    const auto on_packet = [](u_char* self, const pcap_pkthdr* header, const u_char* bytes) {
      auto* capture = reinterpret_cast<PcapCapture*>(self);
      capture->sink_.on_frame(capture->link_type_, {bytes, header->caplen});
    };
    while (true) {
      const int ready = poll(fds, 2, -1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready >= 0 && (fds[1].revents & POLLIN)) return;  // stopped
      if (ready < 0 || (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))) return sink_.on_capture_failed("the capture stopped (interface gone?)");
      // Bounded per wakeup: a flood on the port cannot keep the loop from seeing a stop.
      if (pcap_dispatch(pcap_, 256, on_packet, reinterpret_cast<u_char*>(this)) == PCAP_ERROR)
        return sink_.on_capture_failed(std::string("the capture failed: ") + pcap_geterr(pcap_));
    }
  }

  pcap_t* pcap_;
  int link_type_;
  int wakeup_fd_;  // eventfd: stops the capture thread at once
  CaptureSink& sink_;
  std::thread thread_;  // last: starts once the rest is set
};

class PcapCaptureBackend final : public CaptureBackend {
 public:
  std::optional<std::string> unavailable() const override { return std::nullopt; }

  CaptureStart start(const CaptureSpec& spec, CaptureSink& sink) override {
    const auto not_started = [](std::string why) { return CaptureStart{.capture = nullptr, .why_not = std::move(why)}; };
    char error[PCAP_ERRBUF_SIZE] = {};
    pcap_t* pcap = pcap_create(spec.interface.c_str(), error);
    if (!pcap) return not_started(std::string("cannot capture on ") + spec.interface + ": " + error);
    // Only the headers are read: 256 bytes hold a cooked header, IPv6 with options and TCP.
    pcap_set_snaplen(pcap, 256);
    pcap_set_promisc(pcap, 0);
    pcap_set_immediate_mode(pcap, 1);
    const int activated = pcap_activate(pcap);
    if (activated < 0) {
      std::string why;
      if (activated == PCAP_ERROR_PERM_DENIED)
        why = "no permission to capture: the agent needs CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW)";
      else if (activated == PCAP_ERROR_NO_SUCH_DEVICE)
        why = "no interface \"" + spec.interface + "\"";
      else
        why = std::string("cannot capture on ") + spec.interface + ": " + pcap_geterr(pcap);
      pcap_close(pcap);
      return not_started(std::move(why));
    }
    bpf_program program{};
    const std::string filter = "tcp port " + std::to_string(spec.port);
    if (pcap_compile(pcap, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(pcap, &program) != 0 ||
        pcap_setnonblock(pcap, 1, error) != 0 || pcap_get_selectable_fd(pcap) < 0) {
      std::string why = std::string("cannot set up the capture filter \"") + filter + "\": " + pcap_geterr(pcap);
      pcap_freecode(&program);
      pcap_close(pcap);
      return not_started(std::move(why));
    }
    pcap_freecode(&program);
    const int wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeup_fd < 0) {
      pcap_close(pcap);
      return not_started("eventfd failed");
    }
    return {.capture = std::make_unique<PcapCapture>(pcap, wakeup_fd, sink), .why_not = {}};
  }
};

}  // namespace

std::shared_ptr<CaptureBackend> make_pcap_capture_backend() { return std::make_shared<PcapCaptureBackend>(); }

}  // namespace connectivity::inbound

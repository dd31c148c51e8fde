// How the inbound watch sees packets, behind one interface: libpcap on Linux
// (probes/inbound/pcap_capture.cpp), nothing on Windows, where no capture driver may be used.
// The watch, its counts and the frame parser know nothing of either; the choice between them
// is made in one place, make_platform_capture_backend() (probes/inbound/platform_capture.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace connectivity::inbound {

// What a watch captures: TCP segments to or from `port` on `interface` ("any": every one).
struct CaptureSpec {
  std::string interface;
  std::uint16_t port = 0;
};

// Where a capture hands what it sees. Called on the capture's own thread, never after the
// capture is destroyed.
class CaptureSink {
 public:
  // One frame as captured, headers first; `link_type` says how to read it (captured_frame.h).
  virtual void on_frame(int link_type, std::span<const std::uint8_t> frame) = 0;
  // The capture ended by itself (the interface went away, say): no frame follows.
  virtual void on_capture_failed(std::string why) = 0;

 protected:
  ~CaptureSink() = default;
};

// A running capture. Destroying it stops it and waits for its thread: after that its sink is
// not called again.
class PacketCapture {
 public:
  virtual ~PacketCapture() = default;
};

struct CaptureStart {
  std::unique_ptr<PacketCapture> capture;  // null when it did not start
  std::string why_not;                     // when it did not: for the log
};

class CaptureBackend {
 public:
  virtual ~CaptureBackend() = default;
  // Why this platform cannot capture at all, or nullopt when it can. A watch on a backend
  // without capture is still configured and exported, but never runs: a warning, not a fault
  // of the host's setup.
  virtual std::optional<std::string> unavailable() const = 0;
  // Starts a capture in the calling thread's network namespace. Never throws for a capture
  // that cannot start (no CAP_NET_RAW, no such interface): it says why instead.
  virtual CaptureStart start(const CaptureSpec& spec, CaptureSink& sink) = 0;
};

inline constexpr std::string_view kNoPacketCaptureOnWindows =
    "packet capture is not available on Windows; run the inbound watch on the catalogue host";

// A backend that never captures, for `why`: the Windows build's, and the stand-in for one in tests.
std::shared_ptr<CaptureBackend> make_unavailable_capture_backend(std::string why);
// The backend of the platform this was built for.
std::shared_ptr<CaptureBackend> make_platform_capture_backend();

}  // namespace connectivity::inbound

// The one place that knows which platform has packet capture. CMake defines
// CONNECTIVITY_NO_PACKET_CAPTURE where there is none (Windows: no capture driver may be used)
// and then neither compiles nor links the libpcap backend.
#include "probes/inbound/capture_backend.h"

#ifndef CONNECTIVITY_NO_PACKET_CAPTURE
#include "probes/inbound/pcap_capture.h"
#endif

namespace connectivity::inbound {

std::shared_ptr<CaptureBackend> make_platform_capture_backend() {
#ifdef CONNECTIVITY_NO_PACKET_CAPTURE
  return make_unavailable_capture_backend(std::string(kNoPacketCaptureOnWindows));
#else
  return make_pcap_capture_backend();
#endif
}

}  // namespace connectivity::inbound

// The libpcap capture backend (Linux). Only platform_capture.cpp chooses it; libpcap's own
// headers stay in pcap_capture.cpp.
#pragma once

#include "probes/inbound/capture_backend.h"

#include <memory>

namespace connectivity::inbound {

// Captures with a kernel BPF filter for the port, headers only, each capture on a thread of
// its own.
std::shared_ptr<CaptureBackend> make_pcap_capture_backend();

}  // namespace connectivity::inbound

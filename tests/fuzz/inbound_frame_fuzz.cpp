// libFuzzer target: a frame as libpcap hands it to the inbound watch (anyone on the network can
// put bytes on the watched port). The first input byte picks the link type.
#include "probes/inbound/captured_frame.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 65536) return 0;
  namespace inbound = connectivity::inbound;
  static constexpr int kLinks[] = {inbound::kLinkLinuxCooked, inbound::kLinkLinuxCooked2, inbound::kLinkEthernet, inbound::kLinkRaw};
  const int link = kLinks[data[0] % 4];
  const std::span<const std::uint8_t> frame(data + 1, size - 1);
  const auto segment = inbound::parse_captured_frame(link, frame);
  // Both ends are of one family, and a TCP header (20 bytes) and an IP header (20) were there.
  if (segment && (segment->source.is_v4() != segment->destination.is_v4() || frame.size() < 40)) std::abort();
  return 0;
}

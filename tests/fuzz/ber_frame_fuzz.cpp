// libFuzzer target: the BER framer that decides how much of a TCP stream is one Z39.50 or ISO
// ILL APDU, before any codec sees it. Anyone who can answer on the port controls these bytes.
#include "probes/ber/ber_frame.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace connectivity::ber;
  const FrameLimits limits{.max_message = 4096, .max_depth = 8};
  const std::span<const std::uint8_t> bytes(data, size);
  const Frame frame = frame_message(bytes, limits);
  if (const auto* complete = std::get_if<Complete>(&frame)) {
    if (complete->size == 0 || complete->size > size || complete->size > limits.max_message) std::abort();
    // A message is complete exactly at its end: one byte less must still need more.
    if (!std::holds_alternative<NeedMore>(frame_message(bytes.first(complete->size - 1), limits))) std::abort();
    const Frame again = frame_message(bytes.first(complete->size), limits);
    if (!std::holds_alternative<Complete>(again) || std::get<Complete>(again).size != complete->size) std::abort();
  }
  return 0;
}

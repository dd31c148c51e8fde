// libFuzzer target: an ISO ILL responder's answer to the probe's Status-Query, framed by our
// BER framer and decoded by libyaz's ILL codec through our wrapper.
#include "probes/ber/ber_frame.h"
#include "probes/isoill/ill_codec.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace connectivity;
  const std::span<const std::uint8_t> bytes(data, size);
  const auto frame = ber::frame_message(bytes);
  if (!std::holds_alternative<ber::Complete>(frame)) return 0;
  const auto decoded = ill::decode_reply(bytes.first(std::get<ber::Complete>(frame).size));
  if (const auto* reply = std::get_if<ill::Reply>(&decoded))
    if (reply->apdu.empty() || reply->apdu.size() > 32) std::abort();  // a fixed name, never peer text
  return 0;
}

// libFuzzer target: a Z39.50 target's answer, framed by our BER framer and decoded by libyaz
// through our wrapper, which turns what the target says into label values.
#include "probes/ber/ber_frame.h"
#include "probes/z3950/z3950_codec.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

namespace {
void check_text(const std::string& text) {
  if (text.size() > 256 + 3) std::abort();  // capped at 256, an escape may straddle the cap
  for (unsigned char c : text)
    if (c < 0x20 || c >= 0x7f) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace connectivity;
  const std::span<const std::uint8_t> bytes(data, size);
  const auto frame = ber::frame_message(bytes);
  if (!std::holds_alternative<ber::Complete>(frame)) return 0;
  const auto response = z3950::decode_response(bytes.first(std::get<ber::Complete>(frame).size));
  if (const auto* init = std::get_if<z3950::InitResponse>(&response)) {
    check_text(init->implementation_id);
    check_text(init->implementation_name);
    check_text(init->implementation_version);
    if (init->protocol_versions.size() > 3) std::abort();
    if (init->diagnostic) check_text(init->diagnostic->message.substr(0, 256));
  } else if (const auto* close = std::get_if<z3950::Close>(&response)) {
    check_text(close->diagnostic_information);
  }
  return 0;
}

// libFuzzer target: a server's PRELOGIN answer as it comes off the socket (TDS packets back to
// back), through the same packet checks and option parser the probe uses. Also the option
// parser on raw bytes, so the fuzzer reaches it without first finding a valid header.
#include "probes/tds/prelogin.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

namespace {

void check_reply(std::span<const std::uint8_t> payload) {
  const auto reply = connectivity::tds::decode_prelogin_reply(payload);
  if (const auto* decoded = std::get_if<connectivity::tds::PreloginReply>(&reply)) {
    // What the probe turns into labels must be bounded and never empty.
    if (decoded->version.text().size() > 16 || connectivity::tds::encryption_name(decoded->encryption).empty()) std::abort();
    (void)connectivity::tds::product_name(decoded->version);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  static constexpr std::uint8_t kReply[] = {connectivity::tds::kReplyPacket};
  static constexpr std::uint8_t kHandshake[] = {connectivity::tds::kPreloginPacket, connectivity::tds::kReplyPacket};
  const auto message = connectivity::tds::assemble_message(input, kReply, connectivity::tds::kMaxPreloginReply);
  if (const auto* payload = std::get_if<std::vector<std::uint8_t>>(&message)) {
    if (payload->size() > connectivity::tds::kMaxPreloginReply) std::abort();
    check_reply(*payload);
  }
  (void)connectivity::tds::assemble_message(input, kHandshake, std::size_t{64} * 1024);
  check_reply(input);
  return 0;
}

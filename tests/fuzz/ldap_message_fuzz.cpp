// libFuzzer target: what an LDAP server (or whatever listens on 389/636) sends, as it comes off
// the socket: LDAPMessages back to back, framed by their BER length and decoded one by one the
// way the probe's reader does. Also the decoder on the raw input, so the fuzzer reaches it
// without first finding a valid frame.
#include "probes/ldap/ldap_codec.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

namespace {

namespace ldap = connectivity::ldap;

void check_message(std::span<const std::uint8_t> bytes) {
  const auto decoded = ldap::decode_message(bytes);
  const auto* message = std::get_if<ldap::Message>(&decoded);
  if (!message) return;
  if (message->id < 0) std::abort();
  (void)ldap::operation_name(message->op);
  if (message->result) (void)ldap::result_code_name(message->result->code);
  if (message->entry) {
    std::size_t total = message->entry->dn.size();
    for (const auto& attribute : message->entry->attributes)
      for (const auto& value : attribute.values) total += value.size();
    if (total > bytes.size()) std::abort();  // nothing decoded is bigger than what arrived
    (void)message->entry->values("namingContexts");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> input(data, size);
  for (;;) {
    const auto framed = ldap::frame_message(input);
    const auto* needed = std::get_if<std::optional<std::size_t>>(&framed);
    if (!needed || !*needed) break;
    if (**needed > ldap::kMaxMessage || **needed < 2) std::abort();
    if (**needed > input.size()) break;  // the probe would read on
    check_message(input.first(**needed));
    input = input.subspan(**needed);
  }
  check_message(std::span(data, size));
  return 0;
}

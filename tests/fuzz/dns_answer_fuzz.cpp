// libFuzzer target: a DNS reply (one UDP datagram, which anyone can send to the probe's port).
// The first input byte picks the query type; the reply's own ID is taken as the query's, so the
// fuzzer gets past the ID check to the question and the answer section.
#include "probes/dns/dns_message.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 65536) return 0;
  namespace dns = connectivity::dns;
  const std::uint16_t type = (data[0] & 1) ? dns::kTypeAaaa : dns::kTypeA;
  const std::span<const std::uint8_t> message(data + 1, size - 1);
  const std::uint16_t id = message.size() >= 2 ? static_cast<std::uint16_t>(message[0] << 8 | message[1]) : 0;
  const auto decoded = dns::decode_reply(message, id, "www.example.org", type);
  if (const auto* reply = std::get_if<dns::Reply>(&decoded)) {
    // Every address costs at least its record's 11 fixed bytes plus its data.
    if (reply->addresses.size() > message.size() / 15) std::abort();
    if (reply->chain.size() > dns::kMaxChain) std::abort();
    for (const auto& address : reply->addresses)
      if (address.is_v4() != (type == dns::kTypeA)) std::abort();
    if (reply->rcode < 0 || reply->rcode > 15) std::abort();
  }
  return 0;
}

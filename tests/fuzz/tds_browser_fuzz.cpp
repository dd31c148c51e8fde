// libFuzzer target: a SQL Server Browser answer (one UDP datagram, which anyone can send).
#include "probes/tds/browser.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto reply = connectivity::tds::decode_browser_reply(std::span<const std::uint8_t>(data, size));
  if (const auto* instances = std::get_if<std::vector<connectivity::tds::BrowserInstance>>(&reply)) {
    if (instances->size() > size) std::abort();  // every record costs at least two bytes of text
    const auto* found = connectivity::tds::find_instance(*instances, "ILLIAD");
    if (found && found->tcp_port && *found->tcp_port == 0) std::abort();
  }
  return 0;
}

// The SQL Server Browser service (MS-SQLR), UDP 1434: which TCP port a named instance listens
// on. Pure functions over bytes; the answer is a datagram anyone can send, so it is fuzzed.
#pragma once

#include "probes/tds/prelogin.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace connectivity::tds {

// CLNT_UCAST_INST (MS-SQLR 2.2.4): 0x04, the instance name, 0x00. Only ever this unicast query
// for one instance: never the broadcast forms.
std::vector<std::uint8_t> encode_browser_query(const std::string& instance);

struct BrowserInstance {
  std::string name;
  std::optional<std::uint16_t> tcp_port;  // absent when the instance has TCP disabled
  std::string version;                    // as the Browser reports it, e.g. "15.0.2000.5"
};

// SVR_RESP (MS-SQLR 2.2.5): 0x05, a little-endian 2-byte size, then `key;value;...;;` records,
// one per instance. The size must match what arrived; ports must be numbers in range.
Decoded<std::vector<BrowserInstance>> decode_browser_reply(std::span<const std::uint8_t> datagram);

// Case-insensitive, as SQL Server compares instance names.
const BrowserInstance* find_instance(const std::vector<BrowserInstance>& instances, const std::string& name);

}  // namespace connectivity::tds

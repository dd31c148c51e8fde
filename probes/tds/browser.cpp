#include "probes/tds/browser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

namespace connectivity::tds {

namespace {

constexpr std::uint8_t kUnicastInstanceQuery = 0x04;
constexpr std::uint8_t kServerResponse = 0x05;
constexpr std::size_t kResponseHeader = 3;

bool same_name(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) == std::tolower(y);
  });
}

std::optional<std::uint16_t> port_number(std::string_view text) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::vector<std::uint8_t> encode_browser_query(const std::string& instance) {
  std::vector<std::uint8_t> out;
  out.reserve(instance.size() + 2);
  out.push_back(kUnicastInstanceQuery);
  for (const char c : instance) out.push_back(static_cast<std::uint8_t>(c));
  out.push_back(0);
  return out;
}

Decoded<std::vector<BrowserInstance>> decode_browser_reply(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < kResponseHeader) return DecodeError{"Browser reply of " + std::to_string(datagram.size()) + " bytes"};
  if (datagram[0] != kServerResponse)
    return DecodeError{"Browser reply starts with " + std::to_string(datagram[0]) + ", not SVR_RESP (5)"};
  const std::size_t size = datagram[1] | (static_cast<std::size_t>(datagram[2]) << 8);
  if (size != datagram.size() - kResponseHeader)
    return DecodeError{"Browser reply announces " + std::to_string(size) + " bytes and carries " +
                       std::to_string(datagram.size() - kResponseHeader)};
  const std::string_view text(reinterpret_cast<const char*>(datagram.data() + kResponseHeader), size);

  // Records are `key;value;` pairs, each record ended by an empty key (";;").
  std::vector<BrowserInstance> instances;
  BrowserInstance current;
  bool in_record = false;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto key_end = text.find(';', at);
    if (key_end == std::string_view::npos) return DecodeError{"Browser reply ends inside a key"};
    const auto key = text.substr(at, key_end - at);
    at = key_end + 1;
    if (key.empty()) {
      if (!in_record) return DecodeError{"Browser reply has an empty record"};
      instances.push_back(std::move(current));
      current = {};
      in_record = false;
      continue;
    }
    const auto value_end = text.find(';', at);
    if (value_end == std::string_view::npos) return DecodeError{"Browser reply ends inside the value of " + std::string(key)};
    const auto value = text.substr(at, value_end - at);
    at = value_end + 1;
    in_record = true;
    if (same_name(key, "InstanceName")) {
      current.name = value;
    } else if (same_name(key, "tcp")) {
      current.tcp_port = port_number(value);
      if (!current.tcp_port) return DecodeError{"Browser reply has tcp port \"" + std::string(value.substr(0, 16)) + "\""};
    } else if (same_name(key, "Version")) {
      current.version = value;
    }
  }
  if (in_record) return DecodeError{"Browser reply's last record has no ending \";;\""};
  return instances;
}

const BrowserInstance* find_instance(const std::vector<BrowserInstance>& instances, const std::string& name) {
  const auto found = std::find_if(instances.begin(), instances.end(),
                                  [&](const BrowserInstance& instance) { return same_name(instance.name, name); });
  return found == instances.end() ? nullptr : &*found;
}

}  // namespace connectivity::tds

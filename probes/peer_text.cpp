#include "probes/peer_text.h"

namespace connectivity {

namespace {
constexpr char kHexDigits[] = "0123456789abcdef";
bool is_printable(std::uint8_t byte) { return byte >= 0x20 && byte < 0x7f; }
}  // namespace

std::string printable_text(std::string_view text, std::size_t cap) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<std::uint8_t>(c);
    if (is_printable(byte)) {
      out += c;
    } else {
      out += "\\x";
      out += kHexDigits[byte >> 4];
      out += kHexDigits[byte & 0xf];
    }
    if (out.size() >= cap) {
      out.resize(cap);
      break;
    }
  }
  return out;
}

std::string hex_byte(std::uint8_t byte) { return {'0', 'x', kHexDigits[byte >> 4], kHexDigits[byte & 0xf]}; }

std::string text_instead(std::span<const std::uint8_t> bytes, std::string_view protocol) {
  constexpr std::size_t kMaxQuoted = 40;
  std::string text;
  for (auto byte : bytes) {
    if (!is_printable(byte) || text.size() >= kMaxQuoted) break;
    text += static_cast<char>(byte);
  }
  if (text.size() < 3) return {};
  return " (\"" + text + "\": not " + std::string(protocol) + ")";
}

}  // namespace connectivity

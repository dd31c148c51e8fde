// Text a peer sent, made safe for label values and log lines: every probe that quotes a server
// (a version string, a diagnostic, the first bytes of a wrong protocol) goes through these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace connectivity {

// Control and non-ASCII bytes as \xNN, the result cut at `cap` characters.
std::string printable_text(std::string_view text, std::size_t cap = 256);

// "0x48".
std::string hex_byte(std::uint8_t byte);

// For a protocol_error's detail, when what a peer sent instead of the protocol reads as text
// ("HTTP/1.1 400", "SSH-2.0"): ` ("HTTP/1.1 400 Bad Request": not <protocol>)`, else empty.
std::string text_instead(std::span<const std::uint8_t> bytes, std::string_view protocol);

}  // namespace connectivity

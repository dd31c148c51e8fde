// Where one BER-encoded message ends, for protocols that send APDUs back to back over TCP
// with no framing of their own (Z39.50, ISO ILL). Reads only tags and lengths, never values,
// so it can tell "need more bytes" from "this is not BER" before a codec sees anything.
// yaz's own completeBER() cannot be used for this: it answers "incomplete" for input that can
// never become BER and accepts five-byte lengths, so a hostile peer could keep us reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>

namespace connectivity::ber {

struct FrameLimits {
  std::size_t max_message = 1 << 20;  // bytes; a longer message is refused, not buffered
  int max_depth = 32;                 // nesting of indefinite-length constructed values
};

struct NeedMore {};  // a prefix of a valid message: read more
struct Complete {
  std::size_t size = 0;  // the message is bytes[0, size)
};
struct Invalid {
  std::string why;
};
using Frame = std::variant<NeedMore, Complete, Invalid>;

// Looks at the start of `bytes` for one complete TLV. Handles high tag numbers, short and long
// definite lengths (at most 4 length octets) and, for constructed values, indefinite lengths
// closed by 00 00 (which yaz itself emits).
Frame frame_message(std::span<const std::uint8_t> bytes, const FrameLimits& limits = {});

}  // namespace connectivity::ber

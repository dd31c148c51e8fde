// Where one BER-encoded message ends, for protocols that send APDUs back to back over TCP
// with no framing of their own (Z39.50, ISO ILL). Reads only tags and lengths, never values,
// so it can tell "need more bytes" from "this is not BER" before a codec sees anything.
// yaz's own completeBER() cannot be used for this: it answers "incomplete" for input that can
// never become BER and accepts five-byte lengths, so a hostile peer could keep us reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <functional>
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

// Why a complete message must not reach libyaz's decoders, or nullopt when it may. libyaz 5.34
// writes through a null pointer when it decodes a string sent in BER's constructed (segmented)
// form: it collects the segments into a copy of its buffer descriptor and then terminates the
// original, still empty one (found by our fuzz target, tests/fuzz/corpus/z3950_response/
// yaz_segmented_string). Without the schema this cannot tell a segmented string from a
// constructed value that merely starts with a universal OCTET STRING, or from an empty
// SEQUENCE, so it refuses those too: the APDUs the probes read (Z39.50 Init, Search and Close
// responses, ILL Status-or-Error-Report) have neither. Also refuses inner values that do not
// fit their parent and bytes after the message.
std::optional<std::string> refuse_for_libyaz(std::span<const std::uint8_t> message, const FrameLimits& limits = {});

}  // namespace connectivity::ber

#include "probes/ber/ber_frame.h"

namespace connectivity::ber {

namespace {

constexpr std::uint8_t kConstructed = 0x20;

// Walks one TLV at `at`; returns the offset just past it. `NeedMore`/`Invalid` abort the walk.
struct Walker {
  std::span<const std::uint8_t> bytes;
  const FrameLimits& limits;
  Frame stop = NeedMore{};  // why the walk stopped, when it did

  bool fail(std::string why) {
    stop = Invalid{std::move(why)};
    return false;
  }
  bool need_more() {
    stop = NeedMore{};
    return false;
  }

  // On success `end` is the offset just past the TLV starting at `at`.
  bool tlv(std::size_t at, int depth, std::size_t& end) {
    if (depth > limits.max_depth) return fail("nested deeper than " + std::to_string(limits.max_depth) + " levels");
    if (at >= bytes.size()) return need_more();
    const std::uint8_t identifier = bytes[at++];
    if ((identifier & 0x1f) == 0x1f) {  // high tag number: base-128 digits, last one below 0x80
      int digits = 0;
      for (;;) {
        if (at >= bytes.size()) return need_more();
        const std::uint8_t digit = bytes[at++];
        if (++digits > 4) return fail("tag number longer than 4 octets");
        if (digits == 1 && digit == 0x80) return fail("tag number with a leading zero octet");
        if ((digit & 0x80) == 0) break;
      }
    }
    if (at >= bytes.size()) return need_more();
    const std::uint8_t first = bytes[at++];
    if (first == 0x80) {
      if ((identifier & kConstructed) == 0) return fail("indefinite length on a primitive value");
      for (;;) {  // contents until the end-of-contents octets 00 00
        if (at + 2 > bytes.size()) return need_more();
        if (bytes[at] == 0 && bytes[at + 1] == 0) {
          end = at + 2;
          return within_limit(end);
        }
        if (!tlv(at, depth + 1, at)) return false;
        if (!within_limit(at)) return false;
      }
    }
    std::size_t length = first;
    if (first & 0x80) {
      const int octets = first & 0x7f;
      if (octets == 0x7f) return fail("reserved length octet 0xff");
      if (octets > 4) return fail("length in " + std::to_string(octets) + " octets (at most 4 accepted)");
      length = 0;
      for (int i = 0; i < octets; ++i) {
        if (at >= bytes.size()) return need_more();
        length = (length << 8) | bytes[at++];
      }
    }
    if (length > limits.max_message || at + length > limits.max_message)
      return fail("message of " + std::to_string(at + length) + " bytes, over the limit of " +
                  std::to_string(limits.max_message));
    end = at + length;
    if (end > bytes.size()) return need_more();
    return true;
  }

  bool within_limit(std::size_t offset) {
    if (offset <= limits.max_message) return true;
    return fail("message over the limit of " + std::to_string(limits.max_message) + " bytes");
  }
};

}  // namespace

Frame frame_message(std::span<const std::uint8_t> bytes, const FrameLimits& limits) {
  Walker walker{bytes, limits};
  std::size_t end = 0;
  if (!walker.tlv(0, 0, end)) return walker.stop;
  return Complete{end};
}

}  // namespace connectivity::ber

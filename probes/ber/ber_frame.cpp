#include "probes/ber/ber_frame.h"

#include <optional>

namespace connectivity::ber {

namespace {

constexpr std::uint8_t kConstructed = 0x20;

struct Header {
  std::uint8_t identifier = 0;
  bool indefinite = false;
  std::size_t length = 0;   // definite lengths only
  std::size_t content = 0;  // offset of the first content octet
  bool constructed() const { return (identifier & kConstructed) != 0; }
};

// The identifier and length octets at `at`; NeedMore or Invalid in `stop` when there are none.
std::optional<Header> read_header(std::span<const std::uint8_t> bytes, std::size_t at, Frame& stop) {
  auto need_more = [&] {
    stop = NeedMore{};
    return std::nullopt;
  };
  auto fail = [&](std::string why) {
    stop = Invalid{std::move(why)};
    return std::nullopt;
  };
  Header h;
  if (at >= bytes.size()) return need_more();
  h.identifier = bytes[at++];
  if ((h.identifier & 0x1f) == 0x1f) {  // high tag number: base-128 digits, the last below 0x80
    for (int digits = 1;; ++digits) {
      if (at >= bytes.size()) return need_more();
      const std::uint8_t digit = bytes[at++];
      if (digits > 4) return fail("tag number longer than 4 octets");
      if (digits == 1 && digit == 0x80) return fail("tag number with a leading zero octet");
      if ((digit & 0x80) == 0) break;
    }
  }
  if (at >= bytes.size()) return need_more();
  const std::uint8_t first = bytes[at++];
  if (first == 0x80) {
    if (!h.constructed()) return fail("indefinite length on a primitive value");
    h.indefinite = true;
  } else if (first & 0x80) {
    const int octets = first & 0x7f;
    if (octets == 0x7f) return fail("reserved length octet 0xff");
    if (octets > 4) return fail("length in " + std::to_string(octets) + " octets (at most 4 accepted)");
    for (int i = 0; i < octets; ++i) {
      if (at >= bytes.size()) return need_more();
      h.length = (h.length << 8) | bytes[at++];
    }
  } else {
    h.length = first;
  }
  h.content = at;
  return h;
}

bool is_end_of_contents(std::span<const std::uint8_t> bytes, std::size_t at) {
  return at + 2 <= bytes.size() && bytes[at] == 0 && bytes[at + 1] == 0;
}

// Walks the TLV at `at` and its contents; `end` becomes the offset just past it. `visit` sees
// every constructed value with its header and contents and may refuse it (returning why).
struct Walker {
  std::span<const std::uint8_t> bytes;
  const FrameLimits& limits;
  const std::function<std::optional<std::string>(const Header&, std::span<const std::uint8_t>)>* visit = nullptr;
  Frame stop = NeedMore{};

  bool fail(std::string why) {
    stop = Invalid{std::move(why)};
    return false;
  }

  bool tlv(std::size_t at, int depth, std::size_t& end) {
    if (depth > limits.max_depth) return fail("nested deeper than " + std::to_string(limits.max_depth) + " levels");
    const auto header = read_header(bytes, at, stop);
    if (!header) return false;
    if (header->indefinite) {
      std::size_t next = header->content;
      while (!is_end_of_contents(bytes, next)) {
        if (next + 2 > bytes.size()) return need_more();
        if (!tlv(next, depth + 1, next)) return false;
        if (next > limits.max_message) return over_limit(next);
      }
      end = next + 2;
      return inspect(*header, bytes.subspan(header->content, next - header->content), depth) && within_limit(end);
    }
    end = header->content + header->length;
    if (header->length > limits.max_message || end > limits.max_message) return over_limit(end);
    if (end > bytes.size()) return need_more();
    if (!visit || !header->constructed()) return true;
    // Only a complete message is inspected: every inner value must fit its parent exactly.
    for (std::size_t next = header->content; next < end;) {
      std::size_t inner = 0;
      Walker nested{bytes.first(end), limits, visit};
      if (!nested.tlv(next, depth + 1, inner)) {
        if (std::holds_alternative<NeedMore>(nested.stop)) return fail("a value runs past the end of its parent");
        stop = nested.stop;
        return false;
      }
      next = inner;
    }
    return inspect(*header, bytes.subspan(header->content, header->length), depth);
  }

  bool inspect(const Header& header, std::span<const std::uint8_t> contents, int /*depth*/) {
    if (!visit) return true;
    if (auto refused = (*visit)(header, contents)) return fail(*refused);
    return true;
  }
  bool need_more() {
    stop = NeedMore{};
    return false;
  }
  bool over_limit(std::size_t size) {
    return fail("message of " + std::to_string(size) + " bytes, over the limit of " + std::to_string(limits.max_message));
  }
  bool within_limit(std::size_t offset) { return offset <= limits.max_message || over_limit(offset); }
};

}  // namespace

Frame frame_message(std::span<const std::uint8_t> bytes, const FrameLimits& limits) {
  Walker walker{bytes, limits};
  std::size_t end = 0;
  if (!walker.tlv(0, 0, end)) return walker.stop;
  return Complete{end};
}

std::optional<std::string> refuse_for_libyaz(std::span<const std::uint8_t> message, const FrameLimits& limits) {
  const std::function<std::optional<std::string>(const Header&, std::span<const std::uint8_t>)> visit =
      [](const Header&, std::span<const std::uint8_t> contents) -> std::optional<std::string> {
    // A constructed value with nothing in it, or whose first element is a universal OCTET
    // STRING segment, is what libyaz would take as a segmented string when the type is one.
    if (contents.empty() || contents[0] == 0x04 || contents[0] == 0x24)
      return "a string in constructed (segmented) form, which libyaz 5.34 cannot decode safely";
    return std::nullopt;
  };
  Walker walker{message, limits, &visit};
  std::size_t end = 0;
  if (!walker.tlv(0, 0, end)) {
    if (const auto* invalid = std::get_if<Invalid>(&walker.stop)) return invalid->why;
    return "the message ends inside a value";
  }
  if (end != message.size()) return "bytes after the end of the message";
  return std::nullopt;
}

}  // namespace connectivity::ber

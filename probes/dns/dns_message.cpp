#include "probes/dns/dns_message.h"

#include <algorithm>

namespace connectivity::dns {

namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kTypeOpt = 41;
constexpr std::uint8_t kRecursionDesired = 0x01;
// RFC 1035 2.3.4: a label is at most 63 octets, a name at most 255 in its wire form (length
// octets and the root's zero included).
constexpr std::size_t kMaxLabel = 63;
constexpr std::size_t kMaxName = 255;
// RFC 1035 4.1.4: a length octet with both top bits set starts a two-octet compression pointer.
constexpr std::uint8_t kPointerBits = 0xC0;

std::uint16_t read16(std::span<const std::uint8_t> bytes, std::size_t at) {
  return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]);
}

std::uint32_t read32(std::span<const std::uint8_t> bytes, std::size_t at) {
  return static_cast<std::uint32_t>(read16(bytes, at)) << 16 | read16(bytes, at + 2);
}

void append16(Bytes& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

std::string_view without_root_dot(std::string_view name) {
  if (name.size() > 1 && name.ends_with('.')) name.remove_suffix(1);
  return name;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// `name` in presentation form (RFC 1035 5.1: "\X" and "\DDD" escapes) as wire-format labels,
// without compression. Nullopt for an empty label (but the root), a label over 63 octets, a
// name over 255, a dangling or out-of-range escape.
std::optional<Bytes> encode_name(std::string_view name) {
  Bytes wire;
  std::size_t label_at = 0;  // the length octet of the label being written
  wire.push_back(0);
  auto close_label = [&]() {
    const std::size_t length = wire.size() - label_at - 1;
    if (length > kMaxLabel) return false;
    wire[label_at] = static_cast<std::uint8_t>(length);
    return true;
  };
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      const bool last = i + 1 == name.size();
      if (wire.size() == label_at + 1) {
        // An empty label: fine only as the whole name "." (the root).
        if (last && i == 0) return wire;
        return std::nullopt;
      }
      if (!close_label()) return std::nullopt;
      if (last) break;
      label_at = wire.size();
      wire.push_back(0);
      continue;
    }
    if (c == '\\') {
      if (++i == name.size()) return std::nullopt;
      c = name[i];
      if (is_digit(c)) {
        if (i + 2 >= name.size() || !is_digit(name[i + 1]) || !is_digit(name[i + 2])) return std::nullopt;
        const int value = (c - '0') * 100 + (name[i + 1] - '0') * 10 + (name[i + 2] - '0');
        if (value > 255) return std::nullopt;
        c = static_cast<char>(value);
        i += 2;
      }
    }
    wire.push_back(static_cast<std::uint8_t>(c));
    if (wire.size() >= kMaxName) return std::nullopt;  // no room left for the root's zero
  }
  if (wire.size() > label_at + 1) {
    if (!close_label()) return std::nullopt;
    wire.push_back(0);
  }
  if (wire.size() > kMaxName) return std::nullopt;
  return wire;
}

// One label's octets in presentation form, escaped as RFC 1035 5.1 master files write them (as
// libresolv's dn_expand did before us, so names read and compare as they always have).
void append_label_text(std::string& text, std::span<const std::uint8_t> label) {
  constexpr std::string_view special = "\".;\\()@$";
  for (const std::uint8_t octet : label) {
    const char c = static_cast<char>(octet);
    if (special.find(c) != std::string_view::npos) {
      text += '\\';
      text += c;
    } else if (octet <= 0x20 || octet >= 0x7f) {
      text += '\\';
      text += static_cast<char>('0' + octet / 100);
      text += static_cast<char>('0' + octet / 10 % 10);
      text += static_cast<char>('0' + octet % 10);
    } else {
      text += c;
    }
  }
}

struct Name {
  std::string text;  // presentation form without the trailing dot; "." for the root
  std::size_t end;   // the offset just past the name where it is written (past its first pointer)
};

// The name at `start` of `message`, compression pointers followed. Every pointer must aim before
// the labels that led to it, so each jump goes strictly backwards and a chain of them ends: a
// loop or a forward pointer is an error (`why`), never a hang.
std::optional<Name> read_name(std::span<const std::uint8_t> message, std::size_t start, std::string& why) {
  Name name{{}, 0};
  std::size_t at = start;
  std::size_t run_start = start;  // where the labels now being read begin
  std::size_t wire_length = 0;
  bool jumped = false;
  for (;;) {
    if (at >= message.size()) {
      why = "the name at offset " + std::to_string(start) + " runs past the end of the message";
      return std::nullopt;
    }
    const std::uint8_t length = message[at];
    if ((length & kPointerBits) == kPointerBits) {
      if (at + 2 > message.size()) {
        why = "the compression pointer at offset " + std::to_string(at) + " is cut off by the end of the message";
        return std::nullopt;
      }
      const std::size_t target = static_cast<std::size_t>(length & 0x3f) << 8 | message[at + 1];
      if (target >= message.size()) {
        why = "the compression pointer at offset " + std::to_string(at) + " points to offset " + std::to_string(target) +
              ", past the " + std::to_string(message.size()) + "-byte message";
        return std::nullopt;
      }
      if (target >= run_start) {
        why = "the compression pointer at offset " + std::to_string(at) + " points to offset " + std::to_string(target) +
              ", not back before offset " + std::to_string(run_start) + " (a pointer loop or a forward pointer)";
        return std::nullopt;
      }
      if (!jumped) name.end = at + 2;
      jumped = true;
      at = run_start = target;
      continue;
    }
    if ((length & kPointerBits) != 0) {
      // 0x40 and 0x80 were extended label types (RFC 6891 5 retired them): nothing to follow.
      constexpr std::string_view hex = "0123456789abcdef";
      why = "the octet 0x" + std::string{hex[length >> 4], hex[length & 0x0f]} + " at offset " + std::to_string(at) +
            " is neither a label length nor a compression pointer";
      return std::nullopt;
    }
    wire_length += 1 + length;
    if (wire_length > kMaxName) {
      why = "the name at offset " + std::to_string(start) + " is longer than " + std::to_string(kMaxName) + " octets";
      return std::nullopt;
    }
    if (length == 0) break;
    if (at + 1 + length > message.size()) {
      why = "the label at offset " + std::to_string(at) + " runs past the end of the message";
      return std::nullopt;
    }
    if (!name.text.empty()) name.text += '.';
    append_label_text(name.text, message.subspan(at + 1, length));
    at += 1 + length;
  }
  if (!jumped) name.end = at + 1;
  if (name.text.empty()) name.text = ".";
  return name;
}

// Where a name written at `at` ends, without following its pointer; nullopt past the end.
std::optional<std::size_t> skip_name(std::span<const std::uint8_t> message, std::size_t at) {
  while (at < message.size()) {
    const std::uint8_t length = message[at];
    if (length == 0) return at + 1;
    if ((length & kPointerBits) == kPointerBits) {
      if (at + 2 > message.size()) return std::nullopt;
      return at + 2;
    }
    if ((length & kPointerBits) != 0) return std::nullopt;
    at += 1 + length;
  }
  return std::nullopt;
}

// Whether the header's four counts of records, each skipped by its lengths, fill the message
// exactly: no record cut off, no bytes left over (libresolv's ns_initparse, which the probe
// used before, held replies to this too).
bool sections_fill(std::span<const std::uint8_t> message) {
  std::size_t at = kHeaderSize;
  for (std::size_t section = 0; section < 4; ++section) {
    const bool question = section == 0;
    for (std::uint16_t count = read16(message, 4 + 2 * section); count > 0; --count) {
      const auto name_end = skip_name(message, at);
      if (!name_end) return false;
      at = *name_end + 4;  // TYPE, CLASS
      if (question) continue;
      if (at + 6 > message.size()) return false;  // TTL, RDLENGTH
      at += 6 + read16(message, at + 4);
    }
  }
  return at == message.size();
}

struct Record {
  std::string owner;
  std::uint16_t type;
  std::uint32_t ttl;
  std::string target;                       // CNAME
  std::optional<boost::asio::ip::address> address;  // A or AAAA
};

}  // namespace

std::optional<std::uint16_t> type_from_name(std::string_view name) {
  if (name == "A") return kTypeA;
  if (name == "AAAA") return kTypeAaaa;
  return std::nullopt;
}

std::string_view type_name(std::uint16_t type) {
  switch (type) {
    case kTypeA: return "A";
    case kTypeAaaa: return "AAAA";
    case kTypeCname: return "CNAME";
    default: return "?";
  }
}

std::string rcode_name(int rcode) {
  switch (rcode) {
    case 0: return "NOERROR";
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    case 6: return "YXDOMAIN";
    case 7: return "YXRRSET";
    case 8: return "NXRRSET";
    case 9: return "NOTAUTH";
    case 10: return "NOTZONE";
    default: return "RCODE " + std::to_string(rcode);
  }
}

bool same_name(std::string_view a, std::string_view b) {
  a = without_root_dot(a);
  b = without_root_dot(b);
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

std::optional<Bytes> encode_query(std::string_view name, std::uint16_t type, std::uint16_t id) {
  const auto qname = encode_name(name);
  if (!qname) return std::nullopt;
  Bytes query;
  query.reserve(kHeaderSize + qname->size() + 4 + 11);
  append16(query, id);
  // RD, whatever the system's resolver options say: we ask a recursive resolver.
  query.push_back(kRecursionDesired);
  query.push_back(0);
  append16(query, 1);  // QDCOUNT
  append16(query, 0);  // ANCOUNT
  append16(query, 0);  // NSCOUNT
  append16(query, 1);  // ARCOUNT: the OPT record
  query.insert(query.end(), qname->begin(), qname->end());
  append16(query, type);
  append16(query, kClassIn);
  // EDNS(0), RFC 6891 6.1.2: root owner, type OPT, class = our UDP payload size, TTL 0 (no DO).
  query.push_back(0);
  append16(query, kTypeOpt);
  append16(query, kEdnsPayload);
  append16(query, 0);
  append16(query, 0);
  append16(query, 0);  // RDLENGTH
  return query;
}

Decoded decode_reply(std::span<const std::uint8_t> message, std::uint16_t id, std::string_view name,
                     std::uint16_t type) {
  if (message.size() < kHeaderSize)
    return NotOurs{std::to_string(message.size()) + " bytes, shorter than a DNS header"};
  if (message.size() > 65535) return NotOurs{"longer than any DNS message"};
  const std::uint16_t got_id = read16(message, 0);
  if (got_id != id) return NotOurs{"ID " + std::to_string(got_id) + ", not our query's " + std::to_string(id)};
  const std::uint8_t flags = message[2];
  if (!(flags & 0x80)) return NotOurs{"a query (QR clear), not a response"};
  if (((flags >> 3) & 0x0f) != 0) return NotOurs{"opcode " + std::to_string((flags >> 3) & 0x0f) + ", not QUERY"};
  Reply reply;
  reply.rcode = message[3] & 0x0f;
  reply.truncated = (flags & 0x02) != 0;

  // The question must be ours (RFC 5452 9.1). Servers answer FORMERR, NOTIMP or REFUSED
  // without one: with our ID, that is still the answer to our query.
  const std::uint16_t questions = read16(message, 4);
  if (questions == 0 && reply.rcode != 0) return reply;
  if (questions != 1) return NotOurs{std::to_string(questions) + " questions, not our one"};
  std::string why;
  const auto qname = read_name(message, kHeaderSize, why);
  if (!qname) return NotOurs{"the question's name does not decode: " + why};
  const std::size_t after_name = qname->end;
  if (after_name + 4 > message.size()) return NotOurs{"the question ends early"};
  const std::uint16_t qtype = read16(message, after_name);
  const std::uint16_t qclass = read16(message, after_name + 2);
  if (!same_name(qname->text, name) || qtype != type || qclass != kClassIn)
    return NotOurs{"the question is " + qname->text + " type " + std::to_string(qtype) + ", not ours"};

  if (!sections_fill(message))
    return Malformed{"the record counts and lengths do not fit the " + std::to_string(message.size()) + "-byte reply"};
  if (reply.rcode != 0 || reply.truncated) return reply;

  // sections_fill has checked every record's fixed fields and RDATA against the message's end.
  const std::uint16_t count = read16(message, 6);
  std::vector<Record> records;
  records.reserve(count);
  std::size_t at = after_name + 4;
  for (std::size_t i = 0; i < count; ++i) {
    const auto owner = read_name(message, at, why);
    if (!owner) return Malformed{"answer record " + std::to_string(i + 1) + " does not decode: " + why};
    at = owner->end;
    const std::uint16_t record_type = read16(message, at);
    const std::uint16_t record_class = read16(message, at + 2);
    const std::uint32_t ttl = read32(message, at + 4);
    const std::size_t length = read16(message, at + 8);
    const std::size_t data_at = at + 10;
    at = data_at + length;
    if (record_class != kClassIn) continue;
    Record record{owner->text, record_type, ttl, {}, std::nullopt};
    const std::uint8_t* data = message.data() + data_at;
    if (record.type == kTypeA) {
      if (length != 4) return Malformed{"an A record of " + std::to_string(length) + " bytes, not 4"};
      boost::asio::ip::address_v4::bytes_type bytes;
      std::copy_n(data, 4, bytes.begin());
      record.address = boost::asio::ip::address_v4(bytes);
    } else if (record.type == kTypeAaaa) {
      if (length != 16) return Malformed{"an AAAA record of " + std::to_string(length) + " bytes, not 16"};
      boost::asio::ip::address_v6::bytes_type bytes;
      std::copy_n(data, 16, bytes.begin());
      record.address = boost::asio::ip::address_v6(bytes);
    } else if (record.type == kTypeCname) {
      auto target = read_name(message, data_at, why);
      if (!target) return Malformed{"a CNAME record whose target does not decode: " + why};
      if (target->end != data_at + length)
        return Malformed{"a CNAME record whose target does not decode: it takes " + std::to_string(target->end - data_at) +
                         " of the record's " + std::to_string(length) + " bytes"};
      record.target = std::move(target->text);
    } else {
      continue;  // RRSIG, DNAME and friends: not what we collect
    }
    records.push_back(std::move(record));
  }

  // Follow the CNAME chain from the name we asked about, as a resolver's answer lays it out.
  auto note_ttl = [&](std::uint32_t ttl) { reply.min_ttl = std::min(reply.min_ttl.value_or(ttl), ttl); };
  std::vector<std::string> owners = {std::string(name)};
  for (;;) {
    const auto next = std::find_if(records.begin(), records.end(), [&](const Record& r) {
      return r.type == kTypeCname && same_name(r.owner, owners.back());
    });
    if (next == records.end()) break;
    if (std::any_of(owners.begin(), owners.end(), [&](const std::string& o) { return same_name(o, next->target); }))
      return Malformed{"a CNAME loop through " + next->target};
    if (reply.chain.size() == kMaxChain)
      return Malformed{"a CNAME chain longer than " + std::to_string(kMaxChain) + " links"};
    note_ttl(next->ttl);
    reply.chain.push_back(next->target);
    owners.push_back(next->target);
  }
  for (const auto& record : records) {
    if (record.type != type || !record.address) continue;
    if (std::none_of(owners.begin(), owners.end(), [&](const std::string& o) { return same_name(o, record.owner); })) continue;
    note_ttl(record.ttl);
    reply.addresses.push_back(*record.address);
  }
  return reply;
}

}  // namespace connectivity::dns

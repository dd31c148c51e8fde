#include "probes/dns/dns_message.h"

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <array>
#include <mutex>

namespace connectivity::dns {

namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kTypeOpt = 41;

std::uint16_t read16(std::span<const std::uint8_t> bytes, std::size_t at) {
  return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]);
}

std::string_view without_root_dot(std::string_view name) {
  if (name.size() > 1 && name.ends_with('.')) name.remove_suffix(1);
  return name;
}

// dn_expand over the whole message (compression pointers may point anywhere before).
std::optional<std::string> expand_name(std::span<const std::uint8_t> message, const std::uint8_t* at, int* used) {
  std::array<char, NS_MAXDNAME> text{};
  const int n = dn_expand(message.data(), message.data() + message.size(), at, text.data(), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  if (used) *used = n;
  return std::string(text.data());
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
  // res_nmkquery needs an initialised resolver state, and writes the query ID into it: one
  // state for the process, initialised once and used under a lock (res_ninit and the state it
  // fills are not safe to share between threads otherwise).
  static std::mutex mutex;
  static struct __res_state state {};
  static bool initialised = false;
  const std::string text(name);
  Bytes query(NS_PACKETSZ);
  int size = -1;
  {
    std::lock_guard lock(mutex);
    if (!initialised) {
      if (res_ninit(&state) != 0) return std::nullopt;
      initialised = true;
    }
    size = res_nmkquery(&state, ns_o_query, text.c_str(), kClassIn, type, nullptr, 0, nullptr, query.data(),
                        static_cast<int>(query.size()));
  }
  if (size < static_cast<int>(kHeaderSize)) return std::nullopt;
  query.resize(static_cast<std::size_t>(size));
  query[0] = static_cast<std::uint8_t>(id >> 8);
  query[1] = static_cast<std::uint8_t>(id & 0xff);
  query[2] |= 0x01;  // RD, whatever resolv.conf's options say: we ask a recursive resolver
  // EDNS(0), RFC 6891 6.1.2: root owner, type OPT, class = our UDP payload size, TTL 0 (no DO).
  const std::uint8_t opt[] = {0,
                              0, kTypeOpt,
                              static_cast<std::uint8_t>(kEdnsPayload >> 8), static_cast<std::uint8_t>(kEdnsPayload & 0xff),
                              0, 0, 0, 0,
                              0, 0};
  query.insert(query.end(), std::begin(opt), std::end(opt));
  query[10] = 0;
  query[11] = 1;  // ARCOUNT
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
  int used = 0;
  const auto qname = expand_name(message, message.data() + kHeaderSize, &used);
  if (!qname) return NotOurs{"the question's name does not decode"};
  const std::size_t after_name = kHeaderSize + static_cast<std::size_t>(used);
  if (after_name + 4 > message.size()) return NotOurs{"the question ends early"};
  const std::uint16_t qtype = read16(message, after_name);
  const std::uint16_t qclass = read16(message, after_name + 2);
  if (!same_name(*qname, name) || qtype != type || qclass != kClassIn)
    return NotOurs{"the question is " + *qname + " type " + std::to_string(qtype) + ", not ours"};

  ns_msg handle{};
  if (ns_initparse(message.data(), static_cast<int>(message.size()), &handle) != 0)
    return Malformed{"the record counts and lengths do not fit the " + std::to_string(message.size()) + "-byte reply"};
  if (reply.rcode != 0 || reply.truncated) return reply;

  const int count = ns_msg_count(handle, ns_s_an);
  std::vector<Record> records;
  records.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    ns_rr rr{};
    if (ns_parserr(&handle, ns_s_an, i, &rr) != 0) return Malformed{"answer record " + std::to_string(i + 1) + " does not decode"};
    if (ns_rr_class(rr) != kClassIn) continue;
    Record record{ns_rr_name(rr), static_cast<std::uint16_t>(ns_rr_type(rr)), ns_rr_ttl(rr), {}, std::nullopt};
    const std::size_t length = ns_rr_rdlen(rr);
    const std::uint8_t* data = ns_rr_rdata(rr);
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
      int cname_used = 0;
      auto target = expand_name(message, data, &cname_used);
      if (!target || static_cast<std::size_t>(cname_used) != length)
        return Malformed{"a CNAME record whose target does not decode"};
      record.target = std::move(*target);
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

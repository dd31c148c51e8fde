// DNS messages for the dns probe (RFC 1035 section 4): the query with an EDNS(0) OPT record
// (RFC 6891), and the reply taken apart. Our own codec rather than the platform's resolver
// library, so Linux and Windows run the same code. Pure functions over bytes, so the reply
// side is fuzzed (tests/fuzz/dns_answer_fuzz.cpp) and unit-tested without sockets.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace connectivity::dns {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeCname = 5;
inline constexpr std::uint16_t kTypeAaaa = 28;
// The UDP payload we advertise: the DNS Flag Day 2020 size, which avoids IP fragmentation.
inline constexpr std::uint16_t kEdnsPayload = 1232;
// A CNAME chain longer than this is a loop or a misconfiguration (resolvers stop near here too).
inline constexpr std::size_t kMaxChain = 16;

// "A", "AAAA" -> type, or nullopt.
std::optional<std::uint16_t> type_from_name(std::string_view name);
std::string_view type_name(std::uint16_t type);
// "NXDOMAIN", "SERVFAIL", ... (RFC 1035 4.1.1, RFC 6895 2.3); "RCODE <n>" otherwise.
std::string rcode_name(int rcode);

// A standard query for `name` (a trailing dot is fine) of `type`, class IN, recursion desired,
// with ID `id` and an OPT record advertising kEdnsPayload. Nullopt when the name cannot be
// encoded (a label over 63 octets, an empty label, the whole over 255). "\." and "\DDD"
// escape a byte in a label (RFC 1035 5.1); "" and "." are the root.
std::optional<Bytes> encode_query(std::string_view name, std::uint16_t type, std::uint16_t id);

// A reply to our query.
struct Reply {
  int rcode = 0;           // 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, ...
  bool truncated = false;  // TC: the answer did not fit the datagram
  // A/AAAA records of `type` owned by the name or a name its CNAME chain leads to, in answer order.
  std::vector<boost::asio::ip::address> addresses;
  std::vector<std::string> chain;         // the CNAME targets followed, in order
  std::optional<std::uint32_t> min_ttl;   // over the records used (CNAMEs included)
};
// Not an answer to our query (too short, another ID, not a response, another question): a stub
// resolver drops such datagrams and waits on (RFC 5452 section 9.1), so one forged or stray
// datagram cannot fail, or poison, a run.
struct NotOurs {
  std::string why;
};
// Our query's ID and question, but a body that breaks RFC 1035: the server's fault.
struct Malformed {
  std::string why;
};
using Decoded = std::variant<Reply, NotOurs, Malformed>;

// Takes apart `message` as the reply to the query (`id`, `name`, `type`, class IN).
Decoded decode_reply(std::span<const std::uint8_t> message, std::uint16_t id, std::string_view name,
                     std::uint16_t type);

// DNS names compare case-insensitively (RFC 4343), a trailing dot or not.
bool same_name(std::string_view a, std::string_view b);

}  // namespace connectivity::dns

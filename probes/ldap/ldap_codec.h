// The few LDAP (RFC 4511) messages the ldap probe exchanges, BER-encoded and decoded by pure
// functions over bytes: the probe drives the socket, these only build requests, frame what
// arrives and check it. Our own codec rather than liblber: no blocking socket I/O inside, the
// framer tells an async reader how many bytes to wait for, and every decoder here reads bytes
// a server (or whatever listens on 389/636) chose, so they are fuzzed (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace connectivity::ldap {

// Why bytes are not what RFC 4511 allows: one line for the run's detail.
struct DecodeError {
  std::string what;
};
template <class T>
using Decoded = std::variant<T, DecodeError>;

using Bytes = std::vector<std::uint8_t>;

// A RootDSE answer is a few hundred bytes; a message over this is refused rather than buffered.
inline constexpr std::size_t kMaxMessage = std::size_t{64} * 1024;
// LDAPMessage > protocolOp > attributes > attribute > values > value is 6 levels; controls
// and referrals add a few. Anything deeper is not an answer to our requests.
inline constexpr int kMaxDepth = 16;

// protocolOp tags ([APPLICATION n], RFC 4511 4.2 to 4.12) the probe sends or reads.
inline constexpr std::uint8_t kBindRequest = 0x60;
inline constexpr std::uint8_t kBindResponse = 0x61;
inline constexpr std::uint8_t kUnbindRequest = 0x42;
inline constexpr std::uint8_t kSearchRequest = 0x63;
inline constexpr std::uint8_t kSearchResultEntry = 0x64;
inline constexpr std::uint8_t kSearchResultDone = 0x65;
inline constexpr std::uint8_t kSearchResultReference = 0x73;
inline constexpr std::uint8_t kExtendedRequest = 0x77;
inline constexpr std::uint8_t kExtendedResponse = 0x78;
inline constexpr std::uint8_t kIntermediateResponse = 0x79;

inline constexpr std::string_view kStartTlsOid = "1.3.6.1.4.1.1466.20037";   // RFC 4511 4.14.1
inline constexpr std::string_view kNoticeOfDisconnectionOid = "1.3.6.1.4.1.1466.20036";  // RFC 4511 4.4.1

// Requests. Message IDs are 1 to 2^31-1 (RFC 4511 4.1.1.1).
Bytes encode_starttls_request(std::int32_t message_id);
// A simple bind, LDAPv3, with `dn` and `password`.
Bytes encode_simple_bind_request(std::int32_t message_id, std::string_view dn, std::string_view password);
// The RootDSE (RFC 4512 5.1): base "", scope baseObject, derefAliases never, no size or time
// limit, typesOnly FALSE, filter (objectClass=*), attributes namingContexts and supportedLDAPVersion.
Bytes encode_root_dse_search(std::int32_t message_id);
Bytes encode_unbind_request(std::int32_t message_id);

// How many bytes the first LDAPMessage in `bytes` takes, header included: nullopt while its
// header (tag and length) is incomplete. The size may exceed what arrived: read until it has.
// Refuses anything but a SEQUENCE, an indefinite length (RFC 4511 5.1 forbids it), a length
// in more than 4 bytes, and a message over `max_message`.
Decoded<std::optional<std::size_t>> frame_message(std::span<const std::uint8_t> bytes,
                                                  std::size_t max_message = kMaxMessage);

struct Result {
  std::uint32_t code = 0;  // resultCode
  std::string matched_dn;
  std::string diagnostic;  // diagnosticMessage, as the server wrote it
};

struct Attribute {
  std::string type;
  std::vector<std::string> values;
};

struct Entry {
  std::string dn;
  std::vector<Attribute> attributes;
  // The values of attribute `type` (compared case-insensitively, as LDAP does); empty if absent.
  std::vector<std::string> values(std::string_view type) const;
};

struct Message {
  std::int32_t id = 0;
  std::uint8_t op = 0;            // the protocolOp tag
  std::optional<Result> result;   // BindResponse, SearchResultDone, ExtendedResponse
  std::optional<Entry> entry;     // SearchResultEntry
  std::string response_name;      // ExtendedResponse responseName, when present
};

// Decodes exactly one LDAPMessage (as frame_message delimits it): messageID, protocolOp,
// optional controls. Operations the probe never asked for keep only their tag in `op`, with
// their contents checked as well-formed BER, no deeper than kMaxDepth.
Decoded<Message> decode_message(std::span<const std::uint8_t> bytes);

// "invalidCredentials" for 49, ... (RFC 4511 Appendix A); "unknown" for codes it does not list.
std::string_view result_code_name(std::uint32_t code);
// "bindResponse" for 0x61, ...; "unknown" otherwise.
std::string_view operation_name(std::uint8_t op);

}  // namespace connectivity::ldap

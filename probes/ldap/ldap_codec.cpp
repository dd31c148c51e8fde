#include "probes/ldap/ldap_codec.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

namespace connectivity::ldap {

namespace {

// Universal tags LDAP uses (RFC 4511 5.1: definite lengths, primitive strings only).
constexpr std::uint8_t kBoolean = 0x01;
constexpr std::uint8_t kInteger = 0x02;
constexpr std::uint8_t kOctetString = 0x04;
constexpr std::uint8_t kEnumerated = 0x0a;
constexpr std::uint8_t kSequence = 0x30;
constexpr std::uint8_t kSet = 0x31;
constexpr std::uint8_t kConstructed = 0x20;
constexpr std::uint8_t kControls = 0xa0;        // LDAPMessage controls [0]
constexpr std::uint8_t kResponseName = 0x8a;    // ExtendedResponse responseName [10]
constexpr std::uint8_t kSimpleAuth = 0x80;      // AuthenticationChoice simple [0]
constexpr std::uint8_t kRequestName = 0x80;     // ExtendedRequest requestName [0]
constexpr std::uint8_t kPresentFilter = 0x87;   // Filter present [7]

std::string hex(std::uint8_t byte) {
  std::array<char, 5> text{};
  std::snprintf(text.data(), text.size(), "0x%02x", byte);
  return text.data();
}

DecodeError fail(std::string what) { return DecodeError{std::move(what)}; }

// ---- Encoding ---------------------------------------------------------------------------

void put_length(Bytes& out, std::size_t length) {
  if (length < 0x80) {
    out.push_back(static_cast<std::uint8_t>(length));
    return;
  }
  std::array<std::uint8_t, sizeof(std::size_t)> digits{};
  std::size_t count = 0;
  for (std::size_t rest = length; rest != 0; rest >>= 8) digits[count++] = static_cast<std::uint8_t>(rest & 0xff);
  out.push_back(static_cast<std::uint8_t>(0x80 | count));
  while (count > 0) out.push_back(digits[--count]);
}

Bytes tlv(std::uint8_t tag, std::span<const std::uint8_t> content) {
  Bytes out{tag};
  put_length(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes tlv(std::uint8_t tag, std::string_view text) {
  return tlv(tag, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

// A non-negative INTEGER or ENUMERATED in the fewest bytes (X.690 8.3.2).
Bytes integer(std::uint8_t tag, std::uint32_t value) {
  Bytes digits;
  do {
    digits.insert(digits.begin(), static_cast<std::uint8_t>(value & 0xff));
    value >>= 8;
  } while (value != 0);
  if (digits.front() & 0x80) digits.insert(digits.begin(), 0x00);
  return tlv(tag, digits);
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes message(std::int32_t id, const Bytes& op) {
  return tlv(kSequence, concat({integer(kInteger, static_cast<std::uint32_t>(std::max(id, 0))), op}));
}

// ---- Decoding ---------------------------------------------------------------------------

struct Header {
  std::uint8_t tag = 0;
  std::size_t header_size = 0;
  std::size_t content_size = 0;
};

// The tag and length at the front of `in`; nullopt while they are incomplete.
Decoded<std::optional<Header>> read_header(std::span<const std::uint8_t> in) {
  if (in.empty()) return std::nullopt;
  const std::uint8_t tag = in[0];
  if ((tag & 0x1f) == 0x1f) return fail("tag " + hex(tag) + " uses the high-tag-number form, which LDAP never uses");
  if (in.size() < 2) return std::nullopt;
  const std::uint8_t first = in[1];
  if (first < 0x80) return Header{tag, 2, first};
  if (first == 0x80) return fail("indefinite length (0x80), which LDAP forbids (RFC 4511 5.1)");
  const std::size_t count = first & 0x7f;
  if (count > 4) return fail("length in " + std::to_string(count) + " bytes (" + hex(first) + "): more than 4");
  if (in.size() < 2 + count) return std::nullopt;
  std::size_t length = 0;
  for (std::size_t i = 0; i < count; ++i) length = (length << 8) | in[2 + i];
  return Header{tag, 2 + count, length};
}

struct Tlv {
  std::uint8_t tag = 0;
  std::span<const std::uint8_t> content;
};

// Takes one element off the front of `in`, which holds a whole message: nothing more arrives.
Decoded<Tlv> take(std::span<const std::uint8_t>& in, const std::string& what) {
  auto header = read_header(in);
  if (auto* error = std::get_if<DecodeError>(&header)) return fail(what + ": " + error->what);
  const auto& found = std::get<std::optional<Header>>(header);
  if (!found) return fail(what + " is cut off" + (in.empty() ? "" : " inside its tag and length"));
  const std::size_t left = in.size() - found->header_size;
  if (found->content_size > left)
    return fail(what + ": length " + std::to_string(found->content_size) + " runs past the " + std::to_string(left) +
                " bytes left");
  Tlv out{found->tag, in.subspan(found->header_size, found->content_size)};
  in = in.subspan(found->header_size + found->content_size);
  return out;
}

// The same, and the element must carry `tag`.
Decoded<Tlv> take(std::span<const std::uint8_t>& in, const std::string& what, std::uint8_t tag) {
  auto element = take(in, what);
  if (auto* found = std::get_if<Tlv>(&element); found && found->tag != tag)
    return fail(what + ": tag " + hex(found->tag) + " where " + hex(tag) + " belongs");
  return element;
}

// Checks that `in` is a run of well-formed elements, constructed ones recursively, at most
// kMaxDepth deep. After this, decoding can skip any element by its length.
std::optional<DecodeError> check_nesting(std::span<const std::uint8_t> in, int depth) {
  while (!in.empty()) {
    auto element = take(in, "element at depth " + std::to_string(depth));
    if (auto* error = std::get_if<DecodeError>(&element)) return std::move(*error);
    const Tlv& found = std::get<Tlv>(element);
    if ((found.tag & kConstructed) == 0) continue;
    if (depth + 1 > kMaxDepth) return fail("elements nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (auto error = check_nesting(found.content, depth + 1)) return error;
  }
  return std::nullopt;
}

// A non-negative INTEGER or ENUMERATED that fits in 31 bits (message IDs and result codes).
Decoded<std::uint32_t> non_negative(const Tlv& element, const std::string& what) {
  const auto bytes = element.content;
  if (bytes.empty()) return fail(what + " is empty");
  if (bytes[0] & 0x80) return fail(what + " is negative");
  std::size_t at = 0;
  while (at + 1 < bytes.size() && bytes[at] == 0) ++at;  // leading zero bytes (non-minimal, harmless)
  if (bytes.size() - at > 4 || (bytes.size() - at == 4 && bytes[at] & 0x80))
    return fail(what + " is over 2^31-1");
  std::uint32_t value = 0;
  for (; at < bytes.size(); ++at) value = (value << 8) | bytes[at];
  return value;
}

std::string text(std::span<const std::uint8_t> bytes) { return {bytes.begin(), bytes.end()}; }

Decoded<std::string> octet_string(std::span<const std::uint8_t>& in, const std::string& what) {
  auto element = take(in, what, kOctetString);
  if (auto* error = std::get_if<DecodeError>(&element)) return std::move(*error);
  return text(std::get<Tlv>(element).content);
}

// LDAPResult's three fields at the front of `in` (RFC 4511 4.1.9); what follows stays in `in`.
Decoded<Result> take_result(std::span<const std::uint8_t>& in, const std::string& what) {
  Result out;
  auto code = take(in, what + " resultCode", kEnumerated);
  if (auto* error = std::get_if<DecodeError>(&code)) return std::move(*error);
  auto value = non_negative(std::get<Tlv>(code), what + " resultCode");
  if (auto* error = std::get_if<DecodeError>(&value)) return std::move(*error);
  out.code = std::get<std::uint32_t>(value);
  auto matched = octet_string(in, what + " matchedDN");
  if (auto* error = std::get_if<DecodeError>(&matched)) return std::move(*error);
  out.matched_dn = std::move(std::get<std::string>(matched));
  auto diagnostic = octet_string(in, what + " diagnosticMessage");
  if (auto* error = std::get_if<DecodeError>(&diagnostic)) return std::move(*error);
  out.diagnostic = std::move(std::get<std::string>(diagnostic));
  return out;
}

Decoded<Attribute> take_attribute(std::span<const std::uint8_t>& in) {
  auto element = take(in, "SearchResultEntry attribute", kSequence);
  if (auto* error = std::get_if<DecodeError>(&element)) return std::move(*error);
  auto body = std::get<Tlv>(element).content;
  Attribute out;
  auto type = octet_string(body, "SearchResultEntry attribute type");
  if (auto* error = std::get_if<DecodeError>(&type)) return std::move(*error);
  out.type = std::move(std::get<std::string>(type));
  auto set = take(body, "values of " + out.type, kSet);
  if (auto* error = std::get_if<DecodeError>(&set)) return std::move(*error);
  if (!body.empty()) return fail("attribute " + out.type + " has " + std::to_string(body.size()) + " bytes after its values");
  auto values = std::get<Tlv>(set).content;
  while (!values.empty()) {
    auto value = octet_string(values, "a value of " + out.type);
    if (auto* error = std::get_if<DecodeError>(&value)) return std::move(*error);
    out.values.push_back(std::move(std::get<std::string>(value)));
  }
  return out;
}

Decoded<Entry> decode_entry(std::span<const std::uint8_t> in) {
  Entry out;
  auto dn = octet_string(in, "SearchResultEntry objectName");
  if (auto* error = std::get_if<DecodeError>(&dn)) return std::move(*error);
  out.dn = std::move(std::get<std::string>(dn));
  auto list = take(in, "SearchResultEntry attributes", kSequence);
  if (auto* error = std::get_if<DecodeError>(&list)) return std::move(*error);
  if (!in.empty()) return fail("SearchResultEntry has " + std::to_string(in.size()) + " bytes after its attributes");
  auto attributes = std::get<Tlv>(list).content;
  while (!attributes.empty()) {
    auto attribute = take_attribute(attributes);
    if (auto* error = std::get_if<DecodeError>(&attribute)) return std::move(*error);
    out.attributes.push_back(std::move(std::get<Attribute>(attribute)));
  }
  return out;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

}  // namespace

std::vector<std::string> Entry::values(std::string_view type) const {
  for (const auto& attribute : attributes)
    if (equal_ignoring_case(attribute.type, type)) return attribute.values;
  return {};
}

Bytes encode_starttls_request(std::int32_t message_id) {
  return message(message_id, tlv(kExtendedRequest, tlv(kRequestName, kStartTlsOid)));
}

Bytes encode_simple_bind_request(std::int32_t message_id, std::string_view dn, std::string_view password) {
  return message(message_id,
                 tlv(kBindRequest, concat({integer(kInteger, 3), tlv(kOctetString, dn), tlv(kSimpleAuth, password)})));
}

Bytes encode_root_dse_search(std::int32_t message_id) {
  const Bytes attributes = concat({tlv(kOctetString, "namingContexts"), tlv(kOctetString, "supportedLDAPVersion")});
  const Bytes request = concat({
      tlv(kOctetString, ""),                // baseObject: the RootDSE
      integer(kEnumerated, 0),              // scope baseObject
      integer(kEnumerated, 0),              // derefAliases neverDerefAliases
      integer(kInteger, 0),                 // sizeLimit
      integer(kInteger, 0),                 // timeLimit
      tlv(kBoolean, Bytes{0x00}),           // typesOnly FALSE
      tlv(kPresentFilter, "objectClass"),   // (objectClass=*)
      tlv(kSequence, attributes),
  });
  return message(message_id, tlv(kSearchRequest, request));
}

Bytes encode_unbind_request(std::int32_t message_id) { return message(message_id, Bytes{kUnbindRequest, 0x00}); }

Decoded<std::optional<std::size_t>> frame_message(std::span<const std::uint8_t> bytes, std::size_t max_message) {
  if (!bytes.empty() && bytes[0] != kSequence)
    return fail("first byte " + hex(bytes[0]) + " where an LDAPMessage starts with 0x30 (SEQUENCE)");
  auto header = read_header(bytes);
  if (auto* error = std::get_if<DecodeError>(&header)) return fail("LDAPMessage: " + error->what);
  const auto& found = std::get<std::optional<Header>>(header);
  if (!found) return std::nullopt;
  if (found->header_size + found->content_size > max_message)
    return fail("LDAPMessage of " + std::to_string(found->content_size) + " bytes is over the " +
                std::to_string(max_message) + "-byte limit");
  return found->header_size + found->content_size;
}

Decoded<Message> decode_message(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > kMaxMessage)
    return fail("LDAPMessage of " + std::to_string(bytes.size()) + " bytes is over the " + std::to_string(kMaxMessage) +
                "-byte limit");
  std::span<const std::uint8_t> in = bytes;
  auto outer = take(in, "LDAPMessage", kSequence);
  if (auto* error = std::get_if<DecodeError>(&outer)) return std::move(*error);
  if (!in.empty()) return fail(std::to_string(in.size()) + " bytes after the LDAPMessage");
  auto body = std::get<Tlv>(outer).content;
  if (auto error = check_nesting(body, 1)) return fail("LDAPMessage: " + error->what);

  Message out;
  auto id = take(body, "messageID", kInteger);
  if (auto* error = std::get_if<DecodeError>(&id)) return std::move(*error);
  auto id_value = non_negative(std::get<Tlv>(id), "messageID");
  if (auto* error = std::get_if<DecodeError>(&id_value)) return std::move(*error);
  out.id = static_cast<std::int32_t>(std::get<std::uint32_t>(id_value));

  auto op = take(body, "protocolOp");
  if (auto* error = std::get_if<DecodeError>(&op)) return std::move(*error);
  const Tlv& operation = std::get<Tlv>(op);
  out.op = operation.tag;
  if (!body.empty()) {
    auto controls = take(body, "controls", kControls);
    if (auto* error = std::get_if<DecodeError>(&controls)) return std::move(*error);
    if (!body.empty()) return fail(std::to_string(body.size()) + " bytes after the controls");
  }

  auto content = operation.content;
  const std::string name(operation_name(out.op));
  switch (out.op) {
    case kBindResponse:
    case kSearchResultDone:
    case kExtendedResponse: {
      auto result = take_result(content, name);
      if (auto* error = std::get_if<DecodeError>(&result)) return std::move(*error);
      out.result = std::move(std::get<Result>(result));
      // What may follow: referral [3], serverSaslCreds [7], responseName [10], responseValue [11].
      while (!content.empty()) {
        auto extra = take(content, name + " field");
        if (auto* error = std::get_if<DecodeError>(&extra)) return std::move(*error);
        const Tlv& field = std::get<Tlv>(extra);
        if (out.op == kExtendedResponse && field.tag == kResponseName) out.response_name = text(field.content);
      }
      break;
    }
    case kSearchResultEntry: {
      auto entry = decode_entry(content);
      if (auto* error = std::get_if<DecodeError>(&entry)) return std::move(*error);
      out.entry = std::move(std::get<Entry>(entry));
      break;
    }
    default:
      break;  // checked as BER above; the probe decides whether it belongs
  }
  return out;
}

std::string_view result_code_name(std::uint32_t code) {
  switch (code) {
    case 0: return "success";
    case 1: return "operationsError";
    case 2: return "protocolError";
    case 3: return "timeLimitExceeded";
    case 4: return "sizeLimitExceeded";
    case 5: return "compareFalse";
    case 6: return "compareTrue";
    case 7: return "authMethodNotSupported";
    case 8: return "strongerAuthRequired";
    case 10: return "referral";
    case 11: return "adminLimitExceeded";
    case 12: return "unavailableCriticalExtension";
    case 13: return "confidentialityRequired";
    case 14: return "saslBindInProgress";
    case 16: return "noSuchAttribute";
    case 17: return "undefinedAttributeType";
    case 18: return "inappropriateMatching";
    case 19: return "constraintViolation";
    case 20: return "attributeOrValueExists";
    case 21: return "invalidAttributeSyntax";
    case 32: return "noSuchObject";
    case 33: return "aliasProblem";
    case 34: return "invalidDNSyntax";
    case 36: return "aliasDereferencingProblem";
    case 48: return "inappropriateAuthentication";
    case 49: return "invalidCredentials";
    case 50: return "insufficientAccessRights";
    case 51: return "busy";
    case 52: return "unavailable";
    case 53: return "unwillingToPerform";
    case 54: return "loopDetect";
    case 64: return "namingViolation";
    case 65: return "objectClassViolation";
    case 66: return "notAllowedOnNonLeaf";
    case 67: return "notAllowedOnRDN";
    case 68: return "entryAlreadyExists";
    case 69: return "objectClassModsProhibited";
    case 71: return "affectsMultipleDSAs";
    case 80: return "other";
    default: return "unknown";
  }
}

std::string_view operation_name(std::uint8_t op) {
  switch (op) {
    case kBindRequest: return "bindRequest";
    case kBindResponse: return "bindResponse";
    case kUnbindRequest: return "unbindRequest";
    case kSearchRequest: return "searchRequest";
    case kSearchResultEntry: return "searchResEntry";
    case kSearchResultDone: return "searchResDone";
    case kSearchResultReference: return "searchResRef";
    case kExtendedRequest: return "extendedReq";
    case kExtendedResponse: return "extendedResp";
    case kIntermediateResponse: return "intermediateResponse";
    default: return "unknown";
  }
}

}  // namespace connectivity::ldap

#include "probes/tds/prelogin.h"

#include <algorithm>
#include <array>
#include <bitset>

namespace connectivity::tds {

namespace {

// MS-TDS 2.2.6.5 option tokens.
enum Token : std::uint8_t {
  kVersion = 0x00,
  kEncryption = 0x01,
  kInstance = 0x02,
  kThreadId = 0x03,
  kMars = 0x04,
  kTerminator = 0xFF,
};
constexpr std::size_t kOptionEntrySize = 5;  // token, offset (2), length (2)

std::string hex_byte(std::uint8_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[value >> 4] + kHex[value & 0xf];
}

std::string token_name(std::uint8_t token) {
  switch (token) {
    case kVersion: return "VERSION";
    case kEncryption: return "ENCRYPTION";
    case kInstance: return "INSTOPT";
    case kThreadId: return "THREADID";
    case kMars: return "MARS";
    default: return "option " + hex_byte(token);
  }
}

std::uint16_t read_be16(std::span<const std::uint8_t> bytes, std::size_t at) {
  return static_cast<std::uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

void append_be16(std::vector<std::uint8_t>& out, std::size_t value) {
  out.push_back(static_cast<std::uint8_t>((value >> 8) & 0xff));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

void append_header(std::vector<std::uint8_t>& out, std::uint8_t type, bool last, std::size_t length,
                   std::uint8_t packet_id) {
  out.push_back(type);
  out.push_back(last ? 0x01 : 0x00);
  append_be16(out, length);
  append_be16(out, 0);  // SPID: the server's to fill in
  out.push_back(packet_id);
  out.push_back(0);  // window, unused
}

}  // namespace

Decoded<PacketHeader> decode_header(std::span<const std::uint8_t, kHeaderSize> bytes,
                                    std::span<const std::uint8_t> accepted) {
  PacketHeader header{bytes[0], bytes[1], read_be16(bytes, 2)};
  if (std::find(accepted.begin(), accepted.end(), header.type) == accepted.end()) {
    std::string expected;
    for (auto type : accepted) expected += (expected.empty() ? "" : " or ") + hex_byte(type);
    return DecodeError{"packet type " + hex_byte(header.type) + " where TDS expects " + expected};
  }
  if (header.length < kHeaderSize)
    return DecodeError{"packet length " + std::to_string(header.length) + " is shorter than its own header"};
  if (header.length > kMaxPacketSize)
    return DecodeError{"packet length " + std::to_string(header.length) + " is over TDS's maximum of " +
                       std::to_string(kMaxPacketSize)};
  return header;
}

MessageAssembler::MessageAssembler(std::span<const std::uint8_t> accepted_types, std::size_t max_message)
    : accepted_(accepted_types.begin(), accepted_types.end()), max_message_(max_message) {}

Decoded<std::size_t> MessageAssembler::header(std::span<const std::uint8_t, kHeaderSize> bytes) {
  auto decoded = decode_header(bytes, accepted_);
  if (auto* error = std::get_if<DecodeError>(&decoded)) return std::move(*error);
  const auto& header = std::get<PacketHeader>(decoded);
  if (message_.size() + header.payload_size() > max_message_)
    return DecodeError{"message longer than " + std::to_string(max_message_) + " bytes"};
  complete_ = header.end_of_message();
  return header.payload_size();
}

void MessageAssembler::payload(std::span<const std::uint8_t> bytes) {
  message_.insert(message_.end(), bytes.begin(), bytes.end());
}

Decoded<std::vector<std::uint8_t>> assemble_message(std::span<const std::uint8_t> stream,
                                                    std::span<const std::uint8_t> accepted_types,
                                                    std::size_t max_message) {
  MessageAssembler assembler(accepted_types, max_message);
  std::size_t at = 0;
  while (!assembler.complete()) {
    if (stream.size() - at < kHeaderSize)
      return DecodeError{"message ends after " + std::to_string(stream.size()) + " bytes, inside a packet header"};
    auto next = assembler.header(stream.subspan(at).first<kHeaderSize>());
    if (auto* error = std::get_if<DecodeError>(&next)) return std::move(*error);
    at += kHeaderSize;
    const std::size_t size = std::get<std::size_t>(next);
    if (stream.size() - at < size)
      return DecodeError{"packet promises " + std::to_string(size) + " payload bytes, " +
                         std::to_string(stream.size() - at) + " arrived"};
    assembler.payload(stream.subspan(at, size));
    at += size;
  }
  return assembler.message();
}

std::string encryption_name(std::uint8_t value) {
  switch (static_cast<Encryption>(value)) {
    case Encryption::off: return "off";
    case Encryption::on: return "on";
    case Encryption::not_supported: return "not_supported";
    case Encryption::required: return "required";
  }
  return hex_byte(value);
}

std::vector<std::uint8_t> encode_prelogin(const PreloginRequest& request) {
  const std::array<std::uint8_t, 6> version{};  // we are no driver: 0.0.0
  std::vector<std::uint8_t> instance(request.instance.begin(), request.instance.end());
  instance.push_back(0);
  const std::array<std::uint8_t, 4> thread_id{};
  const std::array<std::uint8_t, 1> encryption{static_cast<std::uint8_t>(Encryption::off)};
  const std::array<std::uint8_t, 1> mars{0};
  const std::array<std::pair<std::uint8_t, std::span<const std::uint8_t>>, 5> options{{
      {kVersion, version}, {kEncryption, encryption}, {kInstance, instance}, {kThreadId, thread_id}, {kMars, mars}}};

  std::vector<std::uint8_t> payload;
  std::size_t data_at = options.size() * kOptionEntrySize + 1;
  for (const auto& [token, data] : options) {
    payload.push_back(token);
    append_be16(payload, data_at);
    append_be16(payload, data.size());
    data_at += data.size();
  }
  payload.push_back(kTerminator);
  for (const auto& option : options) payload.insert(payload.end(), option.second.begin(), option.second.end());
  return frame_message(kPreloginPacket, payload);
}

std::string ServerVersion::text() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(build);
}

std::string product_name(const ServerVersion& version) {
  switch (version.major) {
    case 8: return "SQL Server 2000";
    case 9: return "SQL Server 2005";
    case 10: return version.minor >= 50 ? "SQL Server 2008 R2" : "SQL Server 2008";
    case 11: return "SQL Server 2012";
    case 12: return "SQL Server 2014";
    case 13: return "SQL Server 2016";
    case 14: return "SQL Server 2017";
    case 15: return "SQL Server 2019";
    case 16: return "SQL Server 2022";
    case 17: return "SQL Server 2025";
    default: return "";
  }
}

Decoded<PreloginReply> decode_prelogin_reply(std::span<const std::uint8_t> payload) {
  PreloginReply reply;
  std::bitset<256> seen;
  std::size_t at = 0;
  for (;;) {
    if (at >= payload.size())
      return DecodeError{"option list has no terminator (0xFF) in " + std::to_string(payload.size()) + " bytes"};
    const std::uint8_t token = payload[at];
    if (token == kTerminator) break;
    if (payload.size() - at < kOptionEntrySize)
      return DecodeError{"option list cut off inside the entry for " + token_name(token)};
    const std::size_t offset = read_be16(payload, at + 1);
    const std::size_t length = read_be16(payload, at + 3);
    at += kOptionEntrySize;
    if (seen.test(token)) return DecodeError{token_name(token) + " appears twice"};
    seen.set(token);
    if (offset > payload.size() || length > payload.size() - offset)
      return DecodeError{token_name(token) + " data at " + std::to_string(offset) + "+" + std::to_string(length) +
                         " runs past the " + std::to_string(payload.size()) + "-byte reply"};
    const auto data = payload.subspan(offset, length);
    auto require_size = [&](std::size_t expected) -> std::optional<DecodeError> {
      if (length == expected) return std::nullopt;
      return DecodeError{token_name(token) + " is " + std::to_string(length) + " bytes, not " + std::to_string(expected)};
    };
    switch (token) {
      case kVersion:
        if (auto error = require_size(6)) return *error;
        reply.version = {data[0], data[1], read_be16(data, 2), static_cast<std::uint16_t>(read_be16(data, 4))};
        break;
      case kEncryption:
        if (auto error = require_size(1)) return *error;
        reply.encryption = data[0];
        break;
      case kInstance:
        // The server answers one byte; a client's request carries a name, so only the first counts.
        if (length == 0) return DecodeError{"INSTOPT is empty"};
        reply.instance = data[0];
        break;
      case kMars:
        if (auto error = require_size(1)) return *error;
        reply.mars = data[0];
        break;
      default:
        break;  // THREADID (servers send it empty), TRACEID, FEDAUTHREQUIRED, NONCEOPT, later additions
    }
  }
  if (!seen.test(kVersion)) return DecodeError{"reply has no VERSION option"};
  if (!seen.test(kEncryption)) return DecodeError{"reply has no ENCRYPTION option"};
  return reply;
}

std::vector<std::uint8_t> frame_message(std::uint8_t type, std::span<const std::uint8_t> data, std::size_t packet_size) {
  const std::size_t chunk = packet_size - kHeaderSize;
  std::vector<std::uint8_t> out;
  std::uint8_t packet_id = 1;
  std::size_t at = 0;
  do {
    const std::size_t size = std::min(chunk, data.size() - at);
    const bool last = at + size == data.size();
    append_header(out, type, last, size + kHeaderSize, packet_id++);
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(at),
               data.begin() + static_cast<std::ptrdiff_t>(at + size));
    at += size;
  } while (at < data.size());
  return out;
}

}  // namespace connectivity::tds

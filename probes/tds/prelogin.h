// SQL Server's PRELOGIN exchange (MS-TDS 2.2.6.5) and the TDS packet framing around it, as
// pure functions over bytes: the probe drives the socket, these only encode and check. Every
// decoder here reads bytes a server (or anything listening on 1433) chose, so they are fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace connectivity::tds {

// Why bytes are not what the spec allows: one line for the run's detail.
struct DecodeError {
  std::string what;
};
template <class T>
using Decoded = std::variant<T, DecodeError>;

// MS-TDS 2.2.3.1.1 packet types the probe sends or accepts.
inline constexpr std::uint8_t kPreloginPacket = 0x12;  // client PRELOGIN; TLS records during the 7.x handshake
inline constexpr std::uint8_t kReplyPacket = 0x04;     // the server's "tabular result" answer
inline constexpr std::size_t kHeaderSize = 8;
// Packet sizes are negotiated up to 32767 (MS-TDS 2.2.6.4); before login the default is 4096.
inline constexpr std::size_t kMaxPacketSize = 32767;
inline constexpr std::size_t kLoginPacketSize = 4096;
// A PRELOGIN answer is a few dozen bytes; a server that sends more than this is not answering it.
inline constexpr std::size_t kMaxPreloginReply = std::size_t{16} * 1024;

struct PacketHeader {
  std::uint8_t type = 0;
  std::uint8_t status = 0;  // bit 0x01: end of message
  std::size_t length = 0;   // of the whole packet, header included
  bool end_of_message() const { return (status & 0x01) != 0; }
  std::size_t payload_size() const { return length - kHeaderSize; }
};

// Checks one packet header: its type is one of `accepted`, its length between the header's own
// size and kMaxPacketSize.
Decoded<PacketHeader> decode_header(std::span<const std::uint8_t, kHeaderSize> bytes,
                                    std::span<const std::uint8_t> accepted);

// Reassembles one message from its packets, the way the probe reads them off the socket: a
// header, then that packet's payload, until a packet ends the message.
class MessageAssembler {
 public:
  MessageAssembler(std::span<const std::uint8_t> accepted_types, std::size_t max_message);
  // The payload size to read next, or why the header is refused.
  Decoded<std::size_t> header(std::span<const std::uint8_t, kHeaderSize> bytes);
  void payload(std::span<const std::uint8_t> bytes);
  bool complete() const { return complete_; }
  const std::vector<std::uint8_t>& message() const { return message_; }

 private:
  std::vector<std::uint8_t> accepted_;
  std::size_t max_message_;
  std::vector<std::uint8_t> message_;
  bool complete_ = false;
};

// The whole message at the start of `stream` (packets back to back), or why not: the fuzz
// target's and the tests' way into MessageAssembler.
Decoded<std::vector<std::uint8_t>> assemble_message(std::span<const std::uint8_t> stream,
                                                    std::span<const std::uint8_t> accepted_types,
                                                    std::size_t max_message);

// MS-TDS 2.2.6.5 ENCRYPTION values.
enum class Encryption : std::uint8_t { off = 0x00, on = 0x01, not_supported = 0x02, required = 0x03 };

// "off", "on", "not_supported", "required"; other values (such as the client-certificate
// bit 0x80) as "0x" and two hex digits, so a label stays bounded.
std::string encryption_name(std::uint8_t value);

// What a client PRELOGIN carries. The probe is no driver: it sends version 0.0.0, thread id 0,
// ENCRYPTION OFF (a server that requires encryption refuses NOT_SUP clients) and MARS off.
struct PreloginRequest {
  std::string instance;  // empty: the single 0x00 that asks for no instance check
};
// The complete packet: header and payload, one packet of type 0x12.
std::vector<std::uint8_t> encode_prelogin(const PreloginRequest& request);

struct ServerVersion {
  std::uint8_t major = 0;
  std::uint8_t minor = 0;
  std::uint16_t build = 0;  // big-endian on the wire, as every client reads it
  std::uint16_t sub_build = 0;
  std::string text() const;  // "15.0.4153"
};
// "SQL Server 2019" for 15.x and so on, or "" where the major version maps to no release.
std::string product_name(const ServerVersion& version);

struct PreloginReply {
  ServerVersion version;
  std::uint8_t encryption = 0;
  std::optional<std::uint8_t> instance;  // 0x00: the instance matched (or none was asked)
  std::optional<std::uint8_t> mars;
};

// The option list of a server's PRELOGIN answer (the message payload). VERSION and ENCRYPTION
// must be there; every option's data must lie inside the payload; 0xFF must end the list;
// fixed-size options must have their size; an option may not appear twice.
Decoded<PreloginReply> decode_prelogin_reply(std::span<const std::uint8_t> payload);

// Splits `data` into packets of `type` no larger than `packet_size`, status 0x01 on the last.
std::vector<std::uint8_t> frame_message(std::uint8_t type, std::span<const std::uint8_t> data,
                                        std::size_t packet_size = kLoginPacketSize);

}  // namespace connectivity::tds

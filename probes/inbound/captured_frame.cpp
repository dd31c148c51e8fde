#include "probes/inbound/captured_frame.h"

#include <algorithm>
#include <array>

namespace connectivity::inbound {

namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint8_t kProtocolTcp = 6;

std::uint16_t be16(std::span<const std::uint8_t> bytes, std::size_t at) {
  return static_cast<std::uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

std::optional<TcpSegment> parse_tcp(std::span<const std::uint8_t> segment, TcpSegment out) {
  if (segment.size() < 20) return std::nullopt;
  const std::size_t header = static_cast<std::size_t>(segment[12] >> 4) * 4;
  if (header < 20 || header > segment.size()) return std::nullopt;
  out.source_port = be16(segment, 0);
  out.destination_port = be16(segment, 2);
  out.flags = segment[13];
  return out;
}

std::optional<TcpSegment> parse_ipv4(std::span<const std::uint8_t> packet, TcpSegment out) {
  if (packet.size() < 20 || (packet[0] >> 4) != 4) return std::nullopt;
  const std::size_t header = static_cast<std::size_t>(packet[0] & 0x0f) * 4;
  // The capture keeps only the first bytes of each packet: what is missing past them is fine,
  // a length that contradicts the headers is not.
  const std::size_t total = std::min<std::size_t>(be16(packet, 2), packet.size());
  if (header < 20 || total < header || be16(packet, 2) < header) return std::nullopt;
  if (packet[9] != kProtocolTcp) return std::nullopt;
  if ((be16(packet, 6) & 0x1fff) != 0) return std::nullopt;  // a later fragment has no TCP header
  std::array<std::uint8_t, 4> source{}, destination{};
  std::copy_n(packet.begin() + 12, 4, source.begin());
  std::copy_n(packet.begin() + 16, 4, destination.begin());
  out.source = boost::asio::ip::address_v4(source);
  out.destination = boost::asio::ip::address_v4(destination);
  return parse_tcp(packet.subspan(header, total - header), out);
}

std::optional<TcpSegment> parse_ipv6(std::span<const std::uint8_t> packet, TcpSegment out) {
  if (packet.size() < 40 || (packet[0] >> 4) != 6) return std::nullopt;
  const std::size_t payload = std::min<std::size_t>(be16(packet, 4), packet.size() - 40);  // cut at the snap length
  std::array<std::uint8_t, 16> source{}, destination{};
  std::copy_n(packet.begin() + 8, 16, source.begin());
  std::copy_n(packet.begin() + 24, 16, destination.begin());
  out.source = boost::asio::ip::address_v6(source);
  out.destination = boost::asio::ip::address_v6(destination);
  std::uint8_t next = packet[6];
  std::span<const std::uint8_t> rest = packet.subspan(40, payload);
  // Hop-by-hop, routing and destination options may precede TCP; a fragment header means the
  // TCP header may not be here, so it ends the search. Bounded: at most 8 extension headers.
  for (int hops = 0; hops < 8 && next != kProtocolTcp; ++hops) {
    if (next != 0 && next != 43 && next != 60) return std::nullopt;
    if (rest.size() < 8) return std::nullopt;
    const std::size_t length = (static_cast<std::size_t>(rest[1]) + 1) * 8;
    if (length > rest.size()) return std::nullopt;
    next = rest[0];
    rest = rest.subspan(length);
  }
  if (next != kProtocolTcp) return std::nullopt;
  return parse_tcp(rest, out);
}

std::optional<TcpSegment> parse_ip(std::uint16_t ether_type, std::span<const std::uint8_t> packet) {
  TcpSegment out;
  if (ether_type == kEtherIpv4) return parse_ipv4(packet, out);
  if (ether_type == kEtherIpv6) return parse_ipv6(packet, out);
  return std::nullopt;
}

}  // namespace

std::optional<TcpSegment> parse_captured_frame(int link_type, std::span<const std::uint8_t> frame) {
  switch (link_type) {
    case kLinkLinuxCooked:  // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
      if (frame.size() < 16) return std::nullopt;
      return parse_ip(be16(frame, 14), frame.subspan(16));
    case kLinkLinuxCooked2:  // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) ...
      if (frame.size() < 20) return std::nullopt;
      return parse_ip(be16(frame, 0), frame.subspan(20));
    case kLinkEthernet: {
      if (frame.size() < 14) return std::nullopt;
      std::size_t at = 12;
      std::uint16_t type = be16(frame, at);
      if (type == kEtherVlan) {
        if (frame.size() < 18) return std::nullopt;
        at += 4;
        type = be16(frame, at);
      }
      return parse_ip(type, frame.subspan(at + 2));
    }
    case kLinkRaw:
    case kLinkRawIp:
      if (frame.empty()) return std::nullopt;
      return parse_ip((frame[0] >> 4) == 6 ? kEtherIpv6 : kEtherIpv4, frame);
    default:
      return std::nullopt;
  }
}

}  // namespace connectivity::inbound

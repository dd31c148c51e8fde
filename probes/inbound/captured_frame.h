// What the inbound watch needs from one captured frame: the TCP segment's addresses, ports and
// flags. A pure function over untrusted bytes, fuzzed (tests/fuzz/inbound_frame.cpp).
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <span>

namespace connectivity::inbound {

// libpcap's link-layer types (DLT_*) this parser reads; others give nullopt.
inline constexpr int kLinkEthernet = 1;       // DLT_EN10MB
inline constexpr int kLinkRaw = 12;           // DLT_RAW (Linux value)
inline constexpr int kLinkRawIp = 101;        // LINKTYPE_RAW
inline constexpr int kLinkLinuxCooked = 113;  // DLT_LINUX_SLL: the "any" device
inline constexpr int kLinkLinuxCooked2 = 276; // DLT_LINUX_SLL2

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01, syn = 0x02, rst = 0x04, ack = 0x10;
}

struct TcpSegment {
  boost::asio::ip::address source;
  boost::asio::ip::address destination;
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::uint8_t flags = 0;
};

// The TCP segment in `frame` (IPv4 or IPv6, one VLAN tag allowed on Ethernet); nullopt for
// anything else: other protocols, non-first fragments, truncated or inconsistent headers.
std::optional<TcpSegment> parse_captured_frame(int link_type, std::span<const std::uint8_t> frame);

}  // namespace connectivity::inbound

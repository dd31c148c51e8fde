// An address or CIDR prefix from the config, and whether an address falls inside it: the dns
// probe's expected_addresses and the inbound watch's expected sources.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace connectivity {

// An address ("192.0.2.10") or a CIDR prefix ("198.51.100.0/24", "2001:db8::/32").
struct AddressPrefix {
  boost::asio::ip::address base;
  unsigned length = 0;  // prefix bits; 32 or 128 for a single address
  bool contains(const boost::asio::ip::address& address) const;
};
// Nullopt, with `why`, when `text` is neither; host bits set past the prefix are an error too.
std::optional<AddressPrefix> parse_address_prefix(std::string_view text, std::string& why);

}  // namespace connectivity

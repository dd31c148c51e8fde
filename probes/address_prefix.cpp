#include "probes/address_prefix.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace connectivity {

namespace asio = boost::asio;

bool AddressPrefix::contains(const asio::ip::address& address) const {
  if (address.is_v4() != base.is_v4()) return false;
  std::array<unsigned char, 16> a{}, b{};
  std::size_t size = 4;
  if (base.is_v4()) {
    const auto x = base.to_v4().to_bytes(), y = address.to_v4().to_bytes();
    std::copy(x.begin(), x.end(), a.begin());
    std::copy(y.begin(), y.end(), b.begin());
  } else {
    size = 16;
    a = base.to_v6().to_bytes();
    b = address.to_v6().to_bytes();
  }
  for (std::size_t bit = 0; bit < length && bit < size * 8; ++bit) {
    const unsigned mask = 0x80u >> (bit % 8);
    if ((a[bit / 8] & mask) != (b[bit / 8] & mask)) return false;
  }
  return true;
}

std::optional<AddressPrefix> parse_address_prefix(std::string_view text, std::string& why) {
  const auto slash = text.find('/');
  const std::string base_text(text.substr(0, slash));
  boost::system::error_code ec;
  AddressPrefix prefix;
  prefix.base = asio::ip::make_address(base_text, ec);
  if (ec || base_text.find('%') != std::string::npos) {
    why = "\"" + std::string(text) + "\" is not an IP address or CIDR prefix";
    return std::nullopt;
  }
  const unsigned bits = prefix.base.is_v4() ? 32 : 128;
  prefix.length = bits;
  if (slash != std::string_view::npos) {
    const std::string_view length_text = text.substr(slash + 1);
    unsigned length = 0;
    const auto [end, error] = std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (length_text.empty() || error != std::errc() || end != length_text.data() + length_text.size() || length > bits) {
      why = "\"" + std::string(text) + "\": the prefix length must be 0 to " + std::to_string(bits);
      return std::nullopt;
    }
    prefix.length = length;
    AddressPrefix network = prefix;
    // The base with the host bits cleared must be the base: "198.51.100.7/24" is a typo.
    std::array<unsigned char, 16> bytes{};
    std::size_t size = 4;
    if (prefix.base.is_v4()) {
      const auto b = prefix.base.to_v4().to_bytes();
      std::copy(b.begin(), b.end(), bytes.begin());
    } else {
      size = 16;
      bytes = prefix.base.to_v6().to_bytes();
    }
    bool host_bits = false;
    for (std::size_t bit = length; bit < size * 8; ++bit) {
      const unsigned mask = 0x80u >> (bit % 8);
      if (bytes[bit / 8] & mask) host_bits = true;
      bytes[bit / 8] = static_cast<unsigned char>(bytes[bit / 8] & ~mask);
    }
    if (host_bits) {
      if (prefix.base.is_v4()) {
        asio::ip::address_v4::bytes_type v4;
        std::copy_n(bytes.begin(), 4, v4.begin());
        network.base = asio::ip::address_v4(v4);
      } else {
        network.base = asio::ip::address_v6(bytes);
      }
      why = "\"" + std::string(text) + "\" has bits set past the /" + std::to_string(length) + " prefix (did you mean " +
            network.base.to_string() + "/" + std::to_string(length) + "?)";
      return std::nullopt;
    }
  }
  return prefix;
}

}  // namespace connectivity

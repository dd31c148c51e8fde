// The DNS servers the system resolves with, for a dns check that names none. The one place the
// dns probe differs by platform: resolv.conf(5) on Linux, the IP Helper API on Windows.
#pragma once

#include <boost/asio/ip/udp.hpp>

#include <cstddef>
#include <filesystem>
#include <vector>

namespace connectivity::dns {

// glibc's resolver uses at most three (MAXNS); more would only be listed, never asked.
inline constexpr std::size_t kMaxNameservers = 3;

// The addresses of the `nameserver` lines of a resolv.conf(5) file, in file order, on port 53, at
// most kMaxNameservers, read as glibc reads them: the keyword starts its line, a line starting
// with '#' or ';' is a comment, anything after the address is ignored, and a line whose
// address does not parse (IPv4, or IPv6 with an optional %scope) is skipped. Empty when the
// file cannot be read.
std::vector<boost::asio::ip::udp::endpoint> nameservers_from_resolv_conf(const std::filesystem::path& path);

// The system's DNS servers, at most kMaxNameservers, in the order the system asks them; empty
// when it has none (or they cannot be read).
std::vector<boost::asio::ip::udp::endpoint> system_nameservers();

}  // namespace connectivity::dns

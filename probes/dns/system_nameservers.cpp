#include "probes/dns/system_nameservers.h"

#include <boost/asio/ip/address.hpp>

#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#ifdef _WIN32
// After asio, which includes winsock2.h first as it must be (windows.h alone pulls in winsock.h).
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#include <iphlpapi.h>
#endif

namespace connectivity::dns {

namespace {

namespace ip = boost::asio::ip;

constexpr unsigned short kDnsPort = 53;

// The address of one resolv.conf line, if it is a `nameserver` line that gives one.
std::optional<ip::address> nameserver_of(std::string_view line) {
  constexpr std::string_view keyword = "nameserver";
  if (!line.starts_with(keyword) || line.size() == keyword.size()) return std::nullopt;
  if (line[keyword.size()] != ' ' && line[keyword.size()] != '\t') return std::nullopt;
  line.remove_prefix(keyword.size());
  const auto begin = line.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return std::nullopt;
  line.remove_prefix(begin);
  // A file saved on Windows ends its lines in "\r\n": the '\r' is no part of the address.
  line = line.substr(0, line.find_first_of(" \t\r"));
  boost::system::error_code error;
  const auto address = ip::make_address(std::string(line), error);
  if (error) return std::nullopt;
  return address;
}

}  // namespace

std::vector<ip::udp::endpoint> nameservers_from_resolv_conf(const std::filesystem::path& path) {
  std::vector<ip::udp::endpoint> out;
  std::ifstream file(path);
  std::string line;
  while (out.size() < kMaxNameservers && std::getline(file, line)) {
    // The keyword must open its line, so a comment ('#' or ';' in the first column) and an
    // indented line are never read as a server.
    if (const auto address = nameserver_of(line)) out.emplace_back(*address, kDnsPort);
  }
  return out;
}

#ifdef _WIN32

std::vector<ip::udp::endpoint> system_nameservers() {
  // GetNetworkParams wants a buffer for a FIXED_INFO and the list hanging off it; the list can
  // grow between the call that sizes the buffer and the one that fills it, so a few tries.
  ULONG size = sizeof(FIXED_INFO);
  std::vector<FIXED_INFO> buffer;  // FIXED_INFO elements keep the buffer aligned for one
  DWORD status = ERROR_BUFFER_OVERFLOW;
  for (int attempt = 0; attempt < 3 && status == ERROR_BUFFER_OVERFLOW; ++attempt) {
    buffer.resize(size / sizeof(FIXED_INFO) + 1);
    size = static_cast<ULONG>(buffer.size() * sizeof(FIXED_INFO));
    status = GetNetworkParams(buffer.data(), &size);
  }
  std::vector<ip::udp::endpoint> out;
  if (status != NO_ERROR) return out;
  for (const IP_ADDR_STRING* server = &buffer.front().DnsServerList; server != nullptr && out.size() < kMaxNameservers;
       server = server->Next) {
    boost::system::error_code error;
    // An empty string stands for no server at all: it does not parse, and is skipped.
    const auto address = ip::make_address(server->IpAddress.String, error);
    if (!error) out.emplace_back(address, kDnsPort);
  }
  return out;
}

#else

std::vector<ip::udp::endpoint> system_nameservers() { return nameservers_from_resolv_conf("/etc/resolv.conf"); }

#endif

}  // namespace connectivity::dns

// probe = "dns": resolve a name the way a firewall allow-list depends on it, and watch its
// address set. Vendors (Talis, OCLC) move their IPs behind DNS; an allow-list written by IP
// then breaks silently. The probe asks a DNS server directly (not getaddrinfo, which also reads
// /etc/hosts and cannot be pointed at a server) over UDP, exports every address it got, counts
// changes of the set, and with expected_addresses fails as address_drift on an address outside.
#pragma once

#include "probes/address_prefix.h"
#include "probes/probe.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace connectivity {

namespace reason {
// The name resolved to an address outside the check's expected_addresses.
inline constexpr std::string_view address_drift = "address_drift";
}  // namespace reason

// "127.0.0.1:5353", "[::1]:53", "192.0.2.53" or "2001:db8::53" (port 53); nullopt with `why`.
std::optional<asio::ip::udp::endpoint> parse_dns_server(std::string_view text, std::string& why);
// The system's first DNS server (dns::system_nameservers), or 127.0.0.1:53 as glibc itself
// assumes when resolv.conf names none.
asio::ip::udp::endpoint system_nameserver();

struct DnsSettings {
  asio::ip::udp::endpoint server;
  std::vector<std::uint16_t> types;     // dns::kTypeA, dns::kTypeAaaa, in the order asked
  std::vector<AddressPrefix> expected;  // empty: any address is fine
};

class DnsProbe final : public Probe {
 public:
  explicit DnsProbe(DnsSettings settings) : settings_(std::move(settings)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

  // At most this many connectivity_dns_address_info series per check.
  static constexpr std::size_t kMaxAddressFacts = 32;

 private:
  DnsSettings settings_;
  // State across runs, for the counters. The scheduler never overlaps runs of one check, but
  // the lock keeps that an assumption we do not depend on.
  mutable std::mutex mutex_;
  mutable std::optional<std::vector<asio::ip::address>> baseline_;  // sorted, distinct
  mutable std::uint64_t changes_ = 0;
  mutable std::atomic<std::uint64_t> ignored_{0};

  std::vector<Fact> counters() const;
  ProbeResult conclude(const std::string& name, const std::string& server, std::vector<asio::ip::address> addresses,
                       std::optional<std::uint32_t> min_ttl, const std::vector<std::string>& chain) const;
};

const ProbeKind& dns_probe_kind();

}  // namespace connectivity

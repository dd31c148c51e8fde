// A stand-in DNS server for the dns probe's tests: UDP on 127.0.0.1 (or ::1), a port of the
// kernel's choosing, answering from a table the test changes between runs. Its encoding is
// written here from the RFC 1035 4.1 layouts, independently of the probe's libresolv parsing,
// and it can misbehave the ways real servers and attackers do (silence, garbage, a wrong ID,
// a forged answer from another port, truncation, a malformed record).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace connectivity::testing {

struct DnsRecord {
  std::string owner;
  std::uint16_t type = 1;  // 1 A, 28 AAAA, 5 CNAME
  std::string data;        // the address, or the CNAME's target
  std::uint32_t ttl = 300;
};

enum class DnsBehaviour {
  answer,          // NOERROR with `records` (none: NODATA)
  nxdomain,        // RCODE 3
  servfail,        // RCODE 2
  refused,         // RCODE 5, without the question (as some servers answer)
  silence,         // no reply at all
  garbage,         // a datagram of text that is no DNS message
  wrong_id_first,  // the answer with another ID first, then the right one
  forged_first,    // from another port: our ID and question with 203.0.113.66; then the right one
  truncated,       // over UDP: TC set, no records; over TCP: the records
  malformed,       // our ID and question, then an A record of 5 bytes
};

struct DnsResponse {
  DnsBehaviour behaviour = DnsBehaviour::answer;
  std::vector<DnsRecord> records;
};

class DnsTestServer {
 public:
  // With `tcp`, also listens on TCP, on the same port, for queries after a truncated answer.
  explicit DnsTestServer(bool ipv6 = false, bool tcp = true);
  ~DnsTestServer();
  DnsTestServer(const DnsTestServer&) = delete;
  DnsTestServer& operator=(const DnsTestServer&) = delete;

  bool ok() const { return fd_ >= 0; }  // false when ::1 cannot be bound
  std::uint16_t port() const { return port_; }
  // "127.0.0.1:port" or "[::1]:port", for the probe's `server` option.
  std::string address() const;
  // What to answer for (name, type) from now on; names without an entry get NXDOMAIN.
  void set(const std::string& name, std::uint16_t type, DnsResponse response);
  std::uint64_t queries() const { return queries_.load(); }  // UDP and TCP
  std::uint64_t tcp_queries() const { return tcp_queries_.load(); }
  std::vector<std::uint8_t> last_query() const;

 private:
  bool listen_tcp(bool ipv6);  // on port_, beside the UDP socket; false when taken
  bool ipv6_;
  int fd_ = -1;
  int forger_fd_ = -1;
  int tcp_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> queries_{0}, tcp_queries_{0};
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::uint16_t>, DnsResponse> table_;
  std::vector<std::uint8_t> last_query_;
  std::thread thread_;
  void serve();
  // The table's entry for (name, type), under mutex_: NXDOMAIN for an unknown name, NODATA
  // for a known name without that type.
  DnsResponse lookup(const std::string& name, std::uint16_t type) const;
  void serve_tcp();
};

}  // namespace connectivity::testing

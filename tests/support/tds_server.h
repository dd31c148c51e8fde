// Stand-ins for SQL Server on loopback, since Debian has none: a TDS listener that reads the
// client's PRELOGIN and answers with bytes the test chose (built from the MS-TDS layouts), and
// can then complete the TLS handshake TDS 7.x wraps in PRELOGIN packets, or run TLS first as
// TDS 8.0 does; and a SQL Server Browser that answers one scripted datagram.
#pragma once

#include "tests/support/test_pki.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace connectivity::testing {

using Bytes = std::vector<std::uint8_t>;

// A server PRELOGIN answer laid out as MS-TDS 2.2.6.5 has it: the option table (VERSION,
// ENCRYPTION, INSTOPT, THREADID empty, MARS), 0xFF, the data; in one packet of type 0x04.
struct PreloginAnswer {
  std::uint8_t major = 15, minor = 0;
  std::uint16_t build = 4153, sub_build = 0;
  std::uint8_t encryption = 0x00;
  std::uint8_t instance = 0x00;
  std::uint8_t mars = 0x00;
  Bytes payload() const;
  Bytes packet() const;  // header + payload
};
// Wraps `payload` in one TDS packet header of `type` whose length field says `length` (by
// default the true one), status end-of-message.
Bytes tds_packet(std::uint8_t type, const Bytes& payload, int length = -1);

enum class TdsTls { none, wrapped, strict };

struct TdsScript {
  Bytes reply;                     // sent once the client's PRELOGIN has arrived
  bool hold_open = false;          // after the reply, keep the connection until the client goes
  TdsTls tls = TdsTls::none;
  CertFiles cert = {};             // for tls: the chain and key to present
  std::uint8_t handshake_packet_type = 0x12;  // wrapped: the type of the packets carrying our records
};

class TdsTestServer {
 public:
  explicit TdsTestServer(TdsScript script);
  ~TdsTestServer();
  TdsTestServer(const TdsTestServer&) = delete;
  TdsTestServer& operator=(const TdsTestServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::uint64_t accepted() const { return accepted_.load(); }
  // What the last client sent as PRELOGIN: its packets, headers included.
  Bytes received_prelogin() const;
  // The ALPN protocols the last client offered (strict), comma-separated.
  std::string alpn_offered() const;
  std::uint64_t handshakes_completed() const { return handshakes_.load(); }
  // Waits (up to 5 s) until `count` connections have been served to the end; false on timeout.
  bool wait_served(std::uint64_t count) const;

 private:
  TdsScript script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> client_fd_{-1};
  std::atomic<std::uint64_t> accepted_{0}, handshakes_{0};
  mutable std::mutex mutex_;
  mutable std::condition_variable served_changed_;
  std::uint64_t served_ = 0;  // under mutex_
  Bytes received_;
  std::string alpn_;
  std::thread thread_;
  void serve();
  void serve_one(int fd);
};

// A SQL Server Browser on 127.0.0.1 (UDP, kernel-chosen port): answers every query with `reply`.
class BrowserTestResponder {
 public:
  explicit BrowserTestResponder(Bytes reply);
  ~BrowserTestResponder();
  BrowserTestResponder(const BrowserTestResponder&) = delete;
  BrowserTestResponder& operator=(const BrowserTestResponder&) = delete;

  std::uint16_t port() const { return port_; }
  Bytes last_query() const;

 private:
  Bytes reply_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  Bytes query_;
  std::thread thread_;
};

// SVR_RESP: 0x05, the little-endian size of `text`, then `text`.
Bytes browser_reply(const std::string& text);

}  // namespace connectivity::testing

// Real peers and network conditions for tests: loopback listeners, refused ports, and
// network namespaces (created by the test, root only) with nft rules for drops and rejects.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace connectivity::testing {

// Accepts and closes connections on 127.0.0.1 (or ::1) on a port of the kernel's choosing.
class LoopbackListener {
 public:
  explicit LoopbackListener(bool ipv6 = false);
  ~LoopbackListener();
  std::uint16_t port() const { return port_; }
  std::uint64_t accepted() const { return accepted_.load(); }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> accepted_{0};
  std::thread thread_;
  void accept_next();
};

// A hostile or silent peer on 127.0.0.1: accepts, sends `reply` (maybe nothing), then holds
// each connection open, reading and discarding, until the client closes it. With
// `end_after_reply` it ends its side (FIN) after the reply, still reading, so the client sees
// a clean end of stream rather than a reset.
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::string reply, bool end_after_reply = false);
  ~ScriptedPeer();
  std::uint16_t port() const { return port_; }
  std::uint64_t accepted() const { return accepted_.load(); }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string reply_;
  bool end_after_reply_ = false;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> accepted_{0};
  std::thread thread_;
  void accept_next();
};

// A loopback port that refuses connections: bound (so nobody else takes it) but not listening.
class RefusedPort {
 public:
  RefusedPort();
  ~RefusedPort();
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A network namespace with only `lo` up, removed on destruction. Construction fails (ok()
// false, with why()) when not root or when `ip`/`nft` are missing: tests then skip.
class NetworkNamespace {
 public:
  NetworkNamespace();
  ~NetworkNamespace();
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  const std::string& name() const { return name_; }
  // Loads an nft ruleset inside the namespace; false on failure.
  bool nft(const std::string& ruleset);
  // Runs `body` on a thread that has entered the namespace, and waits for it.
  void run_inside(const std::function<void()>& body);
  // Joins this namespace to `other` with a veth pair ("ca0" here, "ca1" there), both up, with
  // the given addresses in CIDR form ("192.0.2.1/24"); false on failure.
  bool link_to(const NetworkNamespace& other, const std::vector<std::string>& mine, const std::vector<std::string>& theirs);

 private:
  std::string name_;
  bool ok_ = false;
  std::string why_;
};

// A socket of `type` (SOCK_STREAM or SOCK_DGRAM) bound to 127.0.0.1 on a port of the kernel's
// choosing, not listening; throws when that fails. The caller owns (and closes) `fd`.
struct BoundLoopbackSocket {
  int fd = -1;
  std::uint16_t port = 0;
};
BoundLoopbackSocket bind_loopback(int type);

// Runs a shell command; returns its exit status.
int shell(const std::string& command);

}  // namespace connectivity::testing

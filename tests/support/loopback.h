// Real peers and network conditions for tests: loopback listeners, refused ports, and
// network namespaces (created by the test, root only) with nft rules for drops and rejects.
#pragma once

#include "tests/support/sockets.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
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
  // Waits (at most `bound`) until `count` connections have been accepted: a client's connect
  // completes in the kernel before this listener's thread has taken the connection.
  bool wait_accepted(std::uint64_t count, std::chrono::milliseconds bound);

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> accepted_{0};
  std::mutex accepted_mutex_;
  std::condition_variable accepted_changed_;
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

// An HTTP peer on 127.0.0.1 whose every connection is played by `play`, each on a thread of its
// own, once the request head has been read (kept, in order, for request_heads()). Unlike
// ScriptedPeer its answer can depend on the request, and it can stream without end: a play
// sends until a send fails, which it does once the client has gone or the peer is destroyed.
// Destruction ends every play and joins the threads.
class HttpPeer {
 public:
  class Connection {
   public:
    Connection(HttpPeer& peer, int fd, std::string request_head)
        : peer_(peer), fd_(fd), request_head_(std::move(request_head)) {}
    const std::string& request_head() const { return request_head_; }
    // Sends all of `bytes`; false when the client has gone or the peer is ending.
    bool send(std::string_view bytes);
    // Waits `pause` unless the peer ends first; true when it is ending.
    bool ending(std::chrono::milliseconds pause = std::chrono::milliseconds(0));

   private:
    HttpPeer& peer_;
    int fd_;
    std::string request_head_;
  };

  explicit HttpPeer(std::function<void(Connection&)> play);
  ~HttpPeer();
  HttpPeer(const HttpPeer&) = delete;
  HttpPeer& operator=(const HttpPeer&) = delete;
  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<std::string> request_heads() const;
  // Bytes all plays have sent so far.
  std::uint64_t bytes_sent() const { return bytes_sent_.load(); }

 private:
  void accept_loop();
  void serve(int fd);
  // Waits until `fd` is ready for `events` or the peer ends; true when ready.
  bool wait_for(int fd, short events, int timeout_ms = -1) const;

  std::function<void(Connection&)> play_;
  int listen_fd_ = -1;
  Wakeup ending_;  // readable once the peer is ending
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> bytes_sent_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> request_heads_;
  std::vector<std::thread> threads_;  // guarded by mutex_ once accept_loop runs
  std::thread acceptor_;
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
// false, with why()) when not root or when `ip`/`nft` are missing, and always on Windows:
// tests then skip.
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

// A free loopback port, TCP or (SOCK_DGRAM) UDP: bound, then released. Fine for tests that start
// a server on it at once, or that want a port nobody listens on.
std::uint16_t free_loopback_port(int type = SOCK_STREAM);

// Whether 127.0.0.1:port accepts a connection now (within 100 ms).
bool accepts_connection(std::uint16_t port);

// Waits until 127.0.0.1:port accepts a connection, up to `limit_ms`; false if it never did.
bool wait_until_listening(std::uint16_t port, int limit_ms = 5000);

// Runs a shell command (on Windows: cmd.exe's); returns its exit status.
int shell(const std::string& command);

}  // namespace connectivity::testing

#include "tests/support/loopback.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace connectivity::testing {

namespace asio = boost::asio;

LoopbackListener::LoopbackListener(bool ipv6)
    : acceptor_(io_, {ipv6 ? asio::ip::address(asio::ip::address_v6::loopback())
                           : asio::ip::address(asio::ip::address_v4::loopback()),
                      0}) {
  port_ = acceptor_.local_endpoint().port();
  accept_next();
  thread_ = std::thread([this] { io_.run(); });
}

LoopbackListener::~LoopbackListener() {
  asio::post(io_, [this] { acceptor_.close(); });
  thread_.join();
}

void LoopbackListener::accept_next() {
  acceptor_.async_accept([this](const boost::system::error_code& error, asio::ip::tcp::socket socket) {
    if (error) return;
    {
      std::lock_guard lock(accepted_mutex_);
      ++accepted_;
    }
    accepted_changed_.notify_all();
    socket.close();
    accept_next();
  });
}

bool LoopbackListener::wait_accepted(std::uint64_t count, std::chrono::milliseconds bound) {
  std::unique_lock lock(accepted_mutex_);
  return accepted_changed_.wait_for(lock, bound, [&] { return accepted_.load() >= count; });
}

ScriptedPeer::ScriptedPeer(std::string reply, bool end_after_reply)
    : acceptor_(io_, {asio::ip::address_v4::loopback(), 0}), reply_(std::move(reply)), end_after_reply_(end_after_reply) {
  port_ = acceptor_.local_endpoint().port();
  accept_next();
  thread_ = std::thread([this] { io_.run(); });
}

ScriptedPeer::~ScriptedPeer() {
  io_.stop();  // abandons held connections: their sockets close with the io_context
  thread_.join();
}

namespace {
void discard_until_closed(const std::shared_ptr<asio::ip::tcp::socket>& socket,
                          const std::shared_ptr<std::array<char, 4096>>& sink) {
  socket->async_read_some(asio::buffer(*sink), [socket, sink](const boost::system::error_code& error, std::size_t) {
    if (!error) discard_until_closed(socket, sink);
  });
}
}  // namespace

void ScriptedPeer::accept_next() {
  acceptor_.async_accept([this](const boost::system::error_code& error, asio::ip::tcp::socket accepted) {
    if (error) return;
    ++accepted_;
    auto socket = std::make_shared<asio::ip::tcp::socket>(std::move(accepted));
    auto sink = std::make_shared<std::array<char, 4096>>();
    asio::async_write(*socket, asio::buffer(reply_),
                      [this, socket, sink](const boost::system::error_code& write_error, std::size_t) {
                        if (write_error) return;
                        boost::system::error_code ignored;
                        if (end_after_reply_) socket->shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                        discard_until_closed(socket, sink);
                      });
    accept_next();
  });
}

HttpPeer::HttpPeer(std::function<void(Connection&)> play) : play_(std::move(play)) {
  const auto bound = bind_loopback(SOCK_STREAM);
  listen_fd_ = bound.fd;
  port_ = bound.port;
  if (::listen(listen_fd_, 64) != 0) {
    const std::string why = socket_error_text(socket_error());
    close_socket(listen_fd_);
    throw std::runtime_error("HttpPeer: " + why);
  }
  acceptor_ = std::thread([this] { accept_loop(); });
}

HttpPeer::~HttpPeer() {
  ending_.notify();
  acceptor_.join();
  // No thread is added once the acceptor has ended.
  for (auto& thread : threads_) thread.join();
  close_socket(listen_fd_);
}

std::vector<std::string> HttpPeer::request_heads() const {
  std::lock_guard lock(mutex_);
  return request_heads_;
}

bool HttpPeer::wait_for(int fd, short events, int timeout_ms) const {
  std::array<pollfd, 2> watched{poll_entry(fd, events), poll_entry(ending_.fd(), POLLIN)};
  const int ready = poll_sockets(watched.data(), watched.size(), timeout_ms);
  return ready > 0 && watched[1].revents == 0 && watched[0].revents != 0;
}

void HttpPeer::accept_loop() {
  while (wait_for(listen_fd_, POLLIN)) {
    const int fd = accept_socket(listen_fd_, /*nonblocking=*/true);
    if (fd < 0) continue;
    std::lock_guard lock(mutex_);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void HttpPeer::serve(int fd) {
  std::string head;
  std::array<char, 4096> chunk{};
  // A request head is small: 64 KiB without its end is not one worth waiting for.
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < std::size_t{64} * 1024 && wait_for(fd, POLLIN)) {
    const long got = recv_bytes(fd, chunk.data(), chunk.size());
    if (got <= 0) break;
    head.append(chunk.data(), static_cast<std::size_t>(got));
  }
  if (head.find("\r\n\r\n") != std::string::npos) {
    {
      std::lock_guard lock(mutex_);
      request_heads_.push_back(head);
    }
    Connection connection(*this, fd, std::move(head));
    play_(connection);
  }
  close_socket(fd);
}

bool HttpPeer::Connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    if (!peer_.wait_for(fd_, POLLOUT)) return false;
    const long sent = send_bytes(fd_, bytes.data(), bytes.size());
    if (sent < 0 && (would_block(socket_error()) || interrupted(socket_error()))) continue;
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(sent));
    peer_.bytes_sent_ += static_cast<std::uint64_t>(sent);
  }
  return true;
}

bool HttpPeer::Connection::ending(std::chrono::milliseconds pause) {
  return wait_readable(peer_.ending_.fd(), static_cast<int>(pause.count()));
}

BoundLoopbackSocket bind_loopback(int type) {
  const int fd = open_socket(AF_INET, type);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = socket_error_text(socket_error());
    if (fd >= 0) close_socket(fd);
    throw std::runtime_error("cannot bind a loopback port: " + why);
  }
  return {fd, ntohs(addr.sin_port)};
}

std::uint16_t free_loopback_port(int type) {
  const auto bound = bind_loopback(type);
  close_socket(bound.fd);
  return bound.port;
}

bool accepts_connection(std::uint16_t port) {
  // Loopback answers at once unless the listen backlog is full; then this attempt fails.
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  bool connected = false;
  socket.async_connect({asio::ip::address_v4::loopback(), port},
                       [&](const boost::system::error_code& error) { connected = !error; });
  io.run_for(std::chrono::milliseconds(100));
  return connected;
}

bool wait_until_listening(std::uint16_t port, int limit_ms) {
  // Re-checks every 20 ms: waiting on another process offers nothing to block on.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  for (;;) {
    if (accepts_connection(port)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

RefusedPort::RefusedPort() {
  const auto bound = bind_loopback(SOCK_STREAM);
  fd_ = bound.fd;
  port_ = bound.port;
}

RefusedPort::~RefusedPort() {
  if (fd_ >= 0) close_socket(fd_);
}

int shell(const std::string& command) {
  // Tests call this from one thread at a time, before or after their own threads run.
  const int status = std::system(command.c_str());  // NOLINT(concurrency-mt-unsafe)
#ifdef _WIN32
  return status;  // the command's exit code itself
#else
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
#endif
}

#ifdef _WIN32

// Windows has no network namespaces: every test that wants one skips, saying so.
NetworkNamespace::NetworkNamespace() {
  why_ = "network namespaces with nft rules are Linux's (ip netns, nftables): none on Windows";
}

NetworkNamespace::~NetworkNamespace() = default;

bool NetworkNamespace::nft(const std::string&) { return false; }

bool NetworkNamespace::link_to(const NetworkNamespace&, const std::vector<std::string>&, const std::vector<std::string>&) {
  return false;
}

void NetworkNamespace::run_inside(const std::function<void()>&) {
  throw std::runtime_error("NetworkNamespace::run_inside: no network namespaces on Windows");
}

#else

NetworkNamespace::NetworkNamespace() {
  static std::atomic<int> counter{0};
  name_ = "ca-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  if (::geteuid() != 0) {
    why_ = "needs root to create a network namespace";
    return;
  }
  if (shell("command -v ip >/dev/null && command -v nft >/dev/null") != 0) {
    why_ = "needs the ip (iproute2) and nft (nftables) commands";
    return;
  }
  if (shell("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up") != 0) {
    why_ = "ip netns add failed (no CAP_SYS_ADMIN in this sandbox?)";
    shell("ip netns delete " + name_ + " 2>/dev/null");
    return;
  }
  ok_ = true;
}

NetworkNamespace::~NetworkNamespace() {
  if (ok_) shell("ip netns delete " + name_);
}

bool NetworkNamespace::nft(const std::string& ruleset) {
  const std::string file = "/tmp/" + name_ + ".nft";
  std::ofstream(file) << ruleset;
  const bool loaded = shell("ip netns exec " + name_ + " nft -f " + file) == 0;
  std::remove(file.c_str());
  return loaded;
}

bool NetworkNamespace::link_to(const NetworkNamespace& other, const std::vector<std::string>& mine,
                               const std::vector<std::string>& theirs) {
  std::string command = "ip link add ca0 netns " + name_ + " type veth peer name ca1 netns " + other.name_;
  for (const auto& address : mine) command += " && ip -n " + name_ + " addr add " + address + " dev ca0";
  for (const auto& address : theirs) command += " && ip -n " + other.name_ + " addr add " + address + " dev ca1";
  command += " && ip -n " + name_ + " link set ca0 up && ip -n " + other.name_ + " link set ca1 up";
  return shell(command) == 0;
}

void NetworkNamespace::run_inside(const std::function<void()>& body) {
  std::exception_ptr failure;
  std::thread inside([&] {
    const int fd = ::open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      failure = std::make_exception_ptr(std::runtime_error("setns into " + name_ + " failed"));
      if (fd >= 0) ::close(fd);
      return;
    }
    ::close(fd);
    try {
      body();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  inside.join();
  if (failure) std::rethrow_exception(failure);
}

#endif

}  // namespace connectivity::testing

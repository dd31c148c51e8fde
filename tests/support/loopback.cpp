#include "tests/support/loopback.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/write.hpp>

#include <array>
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
    ++accepted_;
    socket.close();
    accept_next();
  });
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

BoundLoopbackSocket bind_loopback(int type) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);  // NOLINT(concurrency-mt-unsafe)
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot bind a loopback port: " + why);
  }
  return {fd, ntohs(addr.sin_port)};
}

RefusedPort::RefusedPort() {
  const auto bound = bind_loopback(SOCK_STREAM);
  fd_ = bound.fd;
  port_ = bound.port;
}

RefusedPort::~RefusedPort() {
  if (fd_ >= 0) ::close(fd_);
}

int shell(const std::string& command) {
  // Tests call this from one thread at a time, before or after their own threads run.
  const int status = std::system(command.c_str());  // NOLINT(concurrency-mt-unsafe)
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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

}  // namespace connectivity::testing

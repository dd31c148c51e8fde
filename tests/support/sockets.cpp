#include "tests/support/sockets.h"

#ifdef _WIN32
#include <system_error>
#else
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#endif

#include <stdexcept>

namespace connectivity::testing {

#ifdef _WIN32

namespace {

// Winsock wants WSAStartup before its first call; Asio does it too, but not every peer has an
// io_context.
void start_winsock() {
  static const bool started = [] {
    WSADATA data{};
    return WSAStartup(MAKEWORD(2, 2), &data) == 0;
  }();
  if (!started) throw std::runtime_error("WSAStartup failed");
}

SOCKET handle(int fd) { return static_cast<SOCKET>(fd); }

}  // namespace

int open_socket(int family, int type) {
  start_winsock();
  const SOCKET s = ::socket(family, type, 0);
  return s == INVALID_SOCKET ? -1 : static_cast<int>(s);
}

int accept_socket(int listener, bool nonblocking) {
  const SOCKET s = ::accept(handle(listener), nullptr, nullptr);
  if (s == INVALID_SOCKET) return -1;
  u_long mode = nonblocking ? 1 : 0;
  ::ioctlsocket(s, FIONBIO, &mode);
  return static_cast<int>(s);
}

void close_socket(int fd) { ::closesocket(handle(fd)); }
void shutdown_socket(int fd) { ::shutdown(handle(fd), SD_BOTH); }
int socket_error() { return WSAGetLastError(); }
std::string socket_error_text(int error) { return std::system_category().message(error); }
bool interrupted(int error) { return error == WSAEINTR; }
bool would_block(int error) { return error == WSAEWOULDBLOCK || error == WSAETIMEDOUT; }

void set_receive_timeout(int fd, std::chrono::milliseconds timeout) {
  const DWORD ms = static_cast<DWORD>(timeout.count());
  ::setsockopt(handle(fd), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&ms), sizeof ms);
}

void set_no_delay(int fd) {
  const BOOL on = TRUE;
  ::setsockopt(handle(fd), IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&on), sizeof on);
}

long send_bytes(int fd, const void* data, std::size_t size) {
  return ::send(handle(fd), static_cast<const char*>(data), static_cast<int>(size), 0);
}

long recv_bytes(int fd, void* data, std::size_t size) {
  return ::recv(handle(fd), static_cast<char*>(data), static_cast<int>(size), 0);
}

long send_to(int fd, const void* data, std::size_t size, const sockaddr* to, socklen_t to_size) {
  return ::sendto(handle(fd), static_cast<const char*>(data), static_cast<int>(size), 0, to, to_size);
}

long recv_from(int fd, void* data, std::size_t size, sockaddr* from, socklen_t* from_size) {
  return ::recvfrom(handle(fd), static_cast<char*>(data), static_cast<int>(size), 0, from, from_size);
}

pollfd poll_entry(int fd, short events) { return pollfd{handle(fd), events, 0}; }

int poll_sockets(pollfd* fds, std::size_t count, int timeout_ms) {
  return ::WSAPoll(fds, static_cast<ULONG>(count), timeout_ms);
}

Wakeup::Wakeup() {
  fd_ = open_socket(AF_INET, SOCK_DGRAM);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int size = sizeof address;
  if (fd_ < 0 || ::bind(handle(fd_), reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::getsockname(handle(fd_), reinterpret_cast<sockaddr*>(&address), &size) != 0 ||
      ::connect(handle(fd_), reinterpret_cast<sockaddr*>(&address), size) != 0) {
    const std::string why = socket_error_text(socket_error());
    if (fd_ >= 0) close_socket(fd_);
    throw std::runtime_error("cannot make a wakeup socket: " + why);
  }
}

Wakeup::~Wakeup() { close_socket(fd_); }

void Wakeup::notify() {
  const char one = 1;
  ::send(handle(fd_), &one, 1, 0);
}

#else

int open_socket(int family, int type) { return ::socket(family, type | SOCK_CLOEXEC, 0); }

int accept_socket(int listener, bool nonblocking) {
  return ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
}

void close_socket(int fd) { ::close(fd); }
void shutdown_socket(int fd) { ::shutdown(fd, SHUT_RDWR); }
int socket_error() { return errno; }
std::string socket_error_text(int error) { return std::strerror(error); }  // NOLINT(concurrency-mt-unsafe)
bool interrupted(int error) { return error == EINTR; }
bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

void set_receive_timeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void set_no_delay(int fd) {
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

long send_bytes(int fd, const void* data, std::size_t size) { return ::send(fd, data, size, MSG_NOSIGNAL); }
long recv_bytes(int fd, void* data, std::size_t size) { return ::recv(fd, data, size, 0); }

long send_to(int fd, const void* data, std::size_t size, const sockaddr* to, socklen_t to_size) {
  return ::sendto(fd, data, size, 0, to, to_size);
}

long recv_from(int fd, void* data, std::size_t size, sockaddr* from, socklen_t* from_size) {
  return ::recvfrom(fd, data, size, 0, from, from_size);
}

pollfd poll_entry(int fd, short events) { return pollfd{fd, events, 0}; }

int poll_sockets(pollfd* fds, std::size_t count, int timeout_ms) {
  int ready = 0;
  do {
    ready = ::poll(fds, count, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  return ready;
}

Wakeup::Wakeup() : fd_(::eventfd(0, EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
}

Wakeup::~Wakeup() { ::close(fd_); }

void Wakeup::notify() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(fd_, &one, sizeof one);
}

#endif

bool wait_readable(int fd, int timeout_ms) {
  pollfd entry = poll_entry(fd, POLLIN);
  return poll_sockets(&entry, 1, timeout_ms) == 1;
}

}  // namespace connectivity::testing

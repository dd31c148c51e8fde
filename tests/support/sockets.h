// The BSD socket calls the in-process test peers make (loopback.cpp, tds_server.cpp,
// dns_server.cpp and a few tests' own peers), in one form for Linux and Windows: on Windows
// they are Winsock's (a SOCKET kept in an int, as OpenSSL's SSL_set_fd keeps it; the error in
// WSAGetLastError, not errno; WSAPoll; no MSG_NOSIGNAL), on Linux exactly the calls the peers
// made before. Only this header and sockets.cpp know which.
#pragma once

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX  // as Asio does: no min and max macros from <windows.h>
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#endif

#include <chrono>
#include <cstddef>
#include <string>

namespace connectivity::testing {

#ifdef _WIN32
using socklen_t = int;
#endif

// A new socket of `family` and `type` (close-on-exec on Linux), or -1 (see socket_error()).
int open_socket(int family, int type);
// accept(): the connection, or -1; non-blocking when asked.
int accept_socket(int listener, bool nonblocking = false);
void close_socket(int fd);
// shutdown() of both directions; ignores errors.
void shutdown_socket(int fd);
// The error of the last socket call that failed on this thread, and its text.
int socket_error();
std::string socket_error_text(int error);
// EINTR: try again at once.
bool interrupted(int error);
// EAGAIN/EWOULDBLOCK, or a receive timeout (SO_RCVTIMEO) that ran out.
bool would_block(int error);
// SO_RCVTIMEO.
void set_receive_timeout(int fd, std::chrono::milliseconds timeout);
// TCP_NODELAY on.
void set_no_delay(int fd);
// send() without SIGPIPE, recv(), sendto(), recvfrom(): the byte count, or -1.
long send_bytes(int fd, const void* data, std::size_t size);
long recv_bytes(int fd, void* data, std::size_t size);
long send_to(int fd, const void* data, std::size_t size, const sockaddr* to, socklen_t to_size);
long recv_from(int fd, void* data, std::size_t size, sockaddr* from, socklen_t* from_size);
// An entry for poll_sockets(): `fd` watched for `events`.
pollfd poll_entry(int fd, short events);
// poll() (WSAPoll on Windows) over `count` sockets; retried on EINTR.
int poll_sockets(pollfd* fds, std::size_t count, int timeout_ms);
// Whether `fd` turns readable within `timeout_ms` (negative: no limit).
bool wait_readable(int fd, int timeout_ms);

// A socket that turns readable, for good, once notify() is called: what a thread blocked in
// poll_sockets() on it and its own socket is woken by. An eventfd on Linux; on Windows, whose
// WSAPoll takes sockets only, a loopback UDP socket that sends itself a datagram.
class Wakeup {
 public:
  Wakeup();  // throws when it cannot be made
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  int fd() const { return fd_; }
  void notify();

 private:
  int fd_ = -1;
};

}  // namespace connectivity::testing

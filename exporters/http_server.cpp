#include "exporters/http_server.h"

#include <CivetServer.h>

#include <boost/asio/ip/tcp.hpp>

#if defined(_WIN32)
#include <winsock2.h>
#else
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace connectivity {

namespace {

bool is_head(mg_connection* conn) { return std::string_view(mg_get_request_info(conn)->request_method) == "HEAD"; }

void respond(mg_connection* conn, int status, std::string_view content_type, std::string_view body,
             const std::string& extra_headers = {}) {
  // The length goes as text: mg_printf formats with the C runtime's vsnprintf, and Windows'
  // (msvcrt) has no %zu.
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %s\r\nCache-Control: no-store\r\n%s\r\n",
            status, mg_get_response_code_text(conn, status), static_cast<int>(content_type.size()),
            content_type.data(), std::to_string(body.size()).c_str(), extra_headers.c_str());
  // HEAD gets the headers of a GET, without the body.
  if (!is_head(conn)) mg_write(conn, body.data(), body.size());
}

// The 403 of POST /-/reload without --web.enable-lifecycle, saying how else to reload: Windows
// has no SIGHUP.
#if defined(_WIN32)
constexpr std::string_view kLifecycleDisabled =
    "lifecycle API is not enabled: start the agent with --web.enable-lifecycle, or restart it\n";
#else
constexpr std::string_view kLifecycleDisabled =
    "lifecycle API is not enabled: start the agent with --web.enable-lifecycle, or send it SIGHUP\n";
#endif

constexpr std::string_view kIndex =
    "<!doctype html><title>connectivity-agent</title><h1>connectivity-agent</h1>"
    "<p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/-/healthy\">Health</a> &middot; <a href=\"/-/ready\">Ready</a></p>\n";

// Sets the stack size of threads created without one (as CivetWeb creates its workers) for
// its own lifetime. Nothing else in the agent starts threads meanwhile. With glibc only:
// CivetWeb 1.15 has no run-time option for it (USE_STACK_SIZE is a build define, and its
// Windows build creates workers with the executable's default regardless), and Windows needs
// none: a thread's stack is reserved (2 MiB, mingw's default) but committed only as it grows,
// so 512 workers take address space, of which x64 has plenty, not memory.
class DefaultStackSize {
 public:
  explicit DefaultStackSize(std::size_t bytes) {
#if defined(__GLIBC__)
    if (pthread_getattr_default_np(&saved_) != 0) return;
    pthread_attr_t attr{};
    if (pthread_attr_init(&attr) == 0) {
      restore_ = pthread_attr_setstacksize(&attr, bytes) == 0 && pthread_setattr_default_np(&attr) == 0;
      pthread_attr_destroy(&attr);
    }
    got_ = true;
#else
    (void)bytes;
#endif
  }
  ~DefaultStackSize() {
#if defined(__GLIBC__)
    if (restore_) pthread_setattr_default_np(&saved_);
    if (got_) pthread_attr_destroy(&saved_);
#endif
  }
  DefaultStackSize(const DefaultStackSize&) = delete;
  DefaultStackSize& operator=(const DefaultStackSize&) = delete;

 private:
#if defined(__GLIBC__)
  pthread_attr_t saved_{};
  bool got_ = false;
  bool restore_ = false;
#endif
};

std::string civetweb_listen(const std::string& listen) {
  if (listen.starts_with(':')) return listen.substr(1);
  if (listen.starts_with("localhost:")) return "127.0.0.1" + listen.substr(9);
  return listen;
}

}  // namespace

Route route_of(std::string_view path) {
  if (path == "/") return Route::index;
  if (path == "/metrics") return Route::metrics;
  if (path == "/-/healthy") return Route::healthy;
  if (path == "/-/ready") return Route::ready;
  if (path == "/-/reload") return Route::reload;
  return Route::not_found;
}

// One handler for every path: CivetWeb matches handlers by prefix (/metricsXYZ would reach
// /metrics), so it takes everything under / and routes by the exact path itself.
class HttpServer::Handlers : public CivetHandler {
 public:
  explicit Handlers(HttpRoutes routes) : routes_(std::move(routes)) {}

  bool handleGet(CivetServer*, mg_connection* conn) override { return serve(conn, Method::get); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return serve(conn, Method::get); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return serve(conn, Method::post); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }

 private:
  enum class Method { get, post, other };  // HEAD is served as GET without the body

  bool serve(mg_connection* conn, Method method) {
    const auto* info = mg_get_request_info(conn);
    const Route route = route_of(info->local_uri ? std::string_view(info->local_uri) : std::string_view());
    switch (route) {
      case Route::not_found:
        respond(conn, 404, "text/plain", "not found\n");
        break;
      case Route::index:
        if (allowed(conn, method, Method::get, "GET, HEAD")) respond(conn, 200, "text/html; charset=utf-8", kIndex);
        break;
      case Route::healthy:
        if (allowed(conn, method, Method::get, "GET, HEAD")) respond(conn, 200, "text/plain", "OK\n");
        break;
      case Route::ready:
        if (!allowed(conn, method, Method::get, "GET, HEAD")) break;
        if (!routes_.ready || routes_.ready())
          respond(conn, 200, "text/plain", "ready\n");
        else
          respond(conn, 503, "text/plain", "not ready: the first round of checks has not run yet\n");
        break;
      case Route::metrics:
        if (allowed(conn, method, Method::get, "GET, HEAD")) metrics(conn);
        break;
      case Route::reload:
        if (allowed(conn, method, Method::post, "POST")) reload(conn);
        break;
    }
    return true;
  }

  static bool allowed(mg_connection* conn, Method method, Method wanted, const std::string& allow) {
    if (method == wanted) return true;
    respond(conn, 405, "text/plain", "method not allowed; allowed: " + allow + "\n", "Allow: " + allow + "\r\n");
    return false;
  }

  void metrics(mg_connection* conn) {
    const auto text = routes_.metrics();
    if (!text) {
      respond(conn, 500, "text/plain", "the metrics could not be rendered; see the agent's log\n");
      return;
    }
    respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", *text);
  }

  void reload(mg_connection* conn) {
    // As Prometheus: the endpoint is off unless asked for; SIGHUP (not on Windows) always reloads.
    if (!routes_.lifecycle) {
      respond(conn, 403, "text/plain", kLifecycleDisabled);
      return;
    }
    if (auto error = routes_.reload())
      respond(conn, 500, "text/plain", "config rejected, previous config still running: " + *error + "\n");
    else
      respond(conn, 200, "text/plain", "config reloaded\n");
  }

  HttpRoutes routes_;
};

HttpServer::HttpServer(const std::string& listen, HttpRoutes routes)
    : listen_(civetweb_listen(listen)), handlers_(std::make_unique<Handlers>(std::move(routes))) {
  // CivetWeb holds a worker per connection until the client sends a request or the request
  // timeout passes (keep-alive: the keep-alive timeout), and serves the rest in accept order.
  // See the constants in the header. No document_root: only the handler above is served.
  const std::vector<std::string> options{
      "listening_ports", listen_,
      "num_threads", std::to_string(kWebWorkers),
      "request_timeout_ms", std::to_string(kWebRequestTimeoutMs),
      "enable_keep_alive", "yes",
      "keep_alive_timeout_ms", std::to_string(kWebKeepAliveTimeoutMs),
      "connection_queue", std::to_string(kWebConnectionQueue),
      "listen_backlog", std::to_string(kWebListenBacklog)};
  // CivetWeb starts every worker now, with the default stack size (8 MiB: 4 GiB of address
  // space for 512 workers); it has no option for it, but takes the process default.
  DefaultStackSize small_stacks(kWebWorkerStackBytes);
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    throw std::runtime_error("cannot listen on " + listen + ": " + e.what());
  }
  server_->addHandler("/", *handlers_);
}

namespace {

// Where to connect to reach our own listener: wildcard binds are reached over loopback.
std::string own_address(const std::string& listen) {
  std::string host = listen.starts_with('[') ? listen.substr(1, listen.find(']') - 1)
                                             : listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "localhost") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// A connect to our own listener, bounded: never blocks past 50 ms, even when the kernel's
// accept queue is full and drops the SYN.
void poke(const std::string& address, int port) {
  boost::system::error_code error;
  const auto ip = boost::asio::ip::make_address(address, error);
  if (error) return;
  const boost::asio::ip::tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
#if defined(_WIN32)
  // Winsock's forms of the same calls: no SOCK_NONBLOCK, the error not in errno, WSAPoll.
  const SOCKET handle = socket(endpoint.protocol().family(), SOCK_STREAM, IPPROTO_TCP);
  if (handle == INVALID_SOCKET) return;
  u_long non_blocking = 1;
  if (ioctlsocket(handle, FIONBIO, &non_blocking) == 0 &&
      connect(handle, endpoint.data(), static_cast<int>(endpoint.size())) != 0 && WSAGetLastError() == WSAEWOULDBLOCK) {
    WSAPOLLFD wait{.fd = handle, .events = POLLOUT, .revents = 0};
    WSAPoll(&wait, 1, 50);
  }
  closesocket(handle);
#else
  const int fd = socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0 && errno == EINPROGRESS) {
    pollfd wait{.fd = fd, .events = POLLOUT, .revents = 0};
    poll(&wait, 1, 50);
  }
  close(fd);
#endif
}

#if !defined(_WIN32)
int local_port(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  return -1;
}

int socket_option(int fd, int name) {
  int value = 0;
  socklen_t length = sizeof(value);
  return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : -1;
}
#endif

}  // namespace

#if defined(_WIN32)
int shut_down_accepted_connections(const std::vector<int>& /*ports*/) {
  // Windows has nothing like /proc/self/fd to find the sockets CivetWeb accepted, so none is
  // shut down: at shutdown, a worker waiting on a connection that sends nothing notices the
  // stop only when its poll quantum (2 s, SOCKET_TIMEOUT_QUANTUM) or the request timeout ends,
  // and mg_stop() waits that long for it. The poke still wakes the master at once.
  return 0;
}
#else
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

int shut_down_accepted_connections(const std::vector<int>& ports) {
#if defined(__SANITIZE_THREAD__)
  // Looking at descriptors that CivetWeb's workers may be closing meanwhile is the point (each
  // is checked on a duplicate, see the header); ThreadSanitizer would call it a race on them.
  struct Ignore {
    Ignore() { __tsan_ignore_thread_begin(); }
    ~Ignore() { __tsan_ignore_thread_end(); }
  } ignore;
#endif
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return 0;
  int count = 0;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat status {};
    if (fstat(static_cast<int>(fd), &status) != 0 || !S_ISSOCK(status.st_mode)) continue;
    // The duplicate holds the socket: if `fd` was closed and reused since, it is checked (and
    // shut down) as whatever it is now, never as what it was.
    const int held = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
    if (held < 0) continue;
    if (socket_option(held, SO_TYPE) == SOCK_STREAM && socket_option(held, SO_ACCEPTCONN) == 0 &&
        std::ranges::find(ports, local_port(held)) != ports.end() && shutdown(held, SHUT_RDWR) == 0)
      ++count;
    close(held);
  }
  closedir(dir);
  return count;
}
#endif

HttpServer::~HttpServer() {
  if (!server_) return;
  // mg_stop() waits for CivetWeb's threads, and each notices the stop only when its poll()
  // returns, which takes up to 2 s (SOCKET_TIMEOUT_QUANTUM): the master's on an idle listener,
  // and a worker's on a connection that sends nothing. SIGTERM must finish within one. So,
  // until mg_stop() returns (at most 100 rounds, 10 ms apart): a connect to our own listener
  // wakes the master, and shutting down the connections the workers hold wakes them.
  std::atomic<bool> closed{false};
  std::thread waker([&, ports = server_->getListeningPorts(), address = own_address(listen_)] {
    for (int i = 0; i < 100 && !closed.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (closed.load()) break;
      for (int port : ports) poke(address, port);
      shut_down_accepted_connections(ports);
    }
  });
  server_->close();
  closed = true;
  waker.join();
}

std::vector<int> HttpServer::ports() const { return server_->getListeningPorts(); }

}  // namespace connectivity

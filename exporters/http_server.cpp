#include "exporters/http_server.h"

#include "exporters/basic_auth.h"
#include "exporters/gzip.h"
#include "exporters/status_page.h"
#include "exporters/web_config.h"

#include <CivetServer.h>
#include <openssl/ssl.h>

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
#include <mutex>
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

// What a request is served with: the web config, its users' authenticator and its headers as
// response lines. Replaced whole by a reload; a request holds the one it started with.
struct ActiveWeb {
  std::shared_ptr<const WebConfig> config;
  std::shared_ptr<BasicAuthenticator> auth;  // null: no basic_auth_users, no authentication
  std::string header_lines;                  // "Name: value\r\n" for each configured header
};

std::shared_ptr<const ActiveWeb> make_active_web(std::shared_ptr<const WebConfig> config,
                                                 const std::shared_ptr<const ActiveWeb>& previous) {
  auto web = std::make_shared<ActiveWeb>();
  web->config = std::move(config);
  if (web->config) {
    for (const auto& [name, value] : web->config->headers) web->header_lines.append(name).append(": ").append(value).append("\r\n");
    if (!web->config->users.empty()) {
      // The same users and hashes keep their remembered successes: a reload that changes
      // nothing for them does not make the next scrape pay for bcrypt again.
      if (previous && previous->auth && previous->config && previous->config->users == web->config->users)
        web->auth = previous->auth;
      else
        web->auth = std::make_shared<BasicAuthenticator>(web->config->users);
    }
  }
  return web;
}

constexpr std::string_view kChallenge = "WWW-Authenticate: Basic realm=\"connectivity-agent\", charset=\"UTF-8\"\r\n";

}  // namespace

// The TLS context CivetWeb is given never changes; each connection is moved, as its ClientHello
// arrives, to the context of the web config current then (OpenSSL's way of serving another
// certificate per connection, as for SNI), with that config's versions, ciphers, curves and
// client-certificate policy. So a reload changes what the next handshake gets, and the
// connections already open keep what they were given.
class HttpServer::TlsSwitch {
 public:
  explicit TlsSwitch(std::shared_ptr<const ServerTls> first)
      : outer_(SSL_CTX_new(TLS_server_method())), current_(std::move(first)) {
    if (!outer_) throw std::runtime_error("cannot create the web server's TLS context");
    SSL_CTX_set_client_hello_cb(outer_, &TlsSwitch::on_client_hello, this);
    // No resumption: a resumed session would skip the client-certificate policy of a reload.
    SSL_CTX_set_session_cache_mode(outer_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(outer_, SSL_OP_NO_TICKET);
  }
  ~TlsSwitch() { SSL_CTX_free(outer_); }
  TlsSwitch(const TlsSwitch&) = delete;
  TlsSwitch& operator=(const TlsSwitch&) = delete;

  SSL_CTX* outer() const { return outer_; }
  void set(std::shared_ptr<const ServerTls> tls) {
    const std::lock_guard lock(mutex_);
    current_ = std::move(tls);
  }

 private:
  std::shared_ptr<const ServerTls> current() const {
    const std::lock_guard lock(mutex_);
    return current_;
  }

  static int on_client_hello(SSL* ssl, int* alert, void* self) {
    const auto tls = static_cast<TlsSwitch*>(self)->current();
    SSL_CTX* context = tls ? tls->context() : nullptr;
    // The connection holds a reference to the context from here: a reload may drop `tls`.
    if (!context || SSL_set_SSL_CTX(ssl, context) != context) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_CLIENT_HELLO_ERROR;
    }
    // What SSL_set_SSL_CTX does not carry over: the connection was made from the outer context.
    bool applied = SSL_set_min_proto_version(ssl, tls->min_version) == 1 &&
                   SSL_set_max_proto_version(ssl, tls->max_version) == 1;
    if (!tls->tls12_ciphers.empty()) applied = applied && SSL_set_cipher_list(ssl, tls->tls12_ciphers.c_str()) == 1;
    if (!tls->tls13_ciphers.empty()) applied = applied && SSL_set_ciphersuites(ssl, tls->tls13_ciphers.c_str()) == 1;
    if (!tls->groups.empty()) applied = applied && SSL_set1_groups_list(ssl, tls->groups.c_str()) == 1;
    SSL_clear_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (tls->prefer_server_cipher_suites) SSL_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(context), SSL_CTX_get_verify_callback(context));
    if (const auto* names = SSL_CTX_get_client_CA_list(context)) {
      STACK_OF(X509_NAME)* copy = SSL_dup_CA_list(names);
      if (copy)
        SSL_set_client_CA_list(ssl, copy);
      else
        applied = false;
    }
    if (!applied) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
  }

  SSL_CTX* outer_;
  mutable std::mutex mutex_;
  std::shared_ptr<const ServerTls> current_;
};

Route route_of(std::string_view path, std::string* check) {
  constexpr std::string_view kCheckPage = "/check/";
  constexpr std::string_view kCheckApi = "/api/v1/checks/";
  if (path.size() > kCheckPage.size() && path.starts_with(kCheckPage)) {
    if (check) *check = path.substr(kCheckPage.size());
    return Route::check_page;
  }
  if (path.size() > kCheckApi.size() && path.starts_with(kCheckApi)) {
    if (check) *check = path.substr(kCheckApi.size());
    return Route::check_api;
  }
  if (path == "/api/v1/checks") return Route::checks_api;
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
  Handlers(HttpRoutes routes, std::shared_ptr<const WebConfig> web)
      : routes_(std::move(routes)), web_(make_active_web(std::move(web), nullptr)) {}

  void set_web(std::shared_ptr<const WebConfig> config) {
    const std::lock_guard lock(web_mutex_);
    web_ = make_active_web(std::move(config), web_);
  }

  bool handleGet(CivetServer*, mg_connection* conn) override { return serve(conn, Method::get); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return serve(conn, Method::get); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return serve(conn, Method::post); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return serve(conn, Method::other); }

 private:
  enum class Method { get, post, other };  // HEAD is served as GET without the body

  std::shared_ptr<const ActiveWeb> web() {
    const std::lock_guard lock(web_mutex_);
    return web_;
  }

  static bool authorized(mg_connection* conn, BasicAuthenticator& auth) {
    const char* header = mg_get_header(conn, "Authorization");
    if (!header) return false;
    const auto credentials = parse_basic_authorization(header);
    return credentials && auth.allows(credentials->first, credentials->second);
  }

  bool serve(mg_connection* conn, Method method) {
    const auto* info = mg_get_request_info(conn);
    Route route = route_of(info->local_uri ? std::string_view(info->local_uri) : std::string_view());
    // A check's name is taken from the path as decoded but not cleaned of "." and ".."
    // segments: whole, whatever characters it holds.
    std::string check;
    if (info->local_uri_raw) {
      const Route named = route_of(info->local_uri_raw, &check);
      if (named == Route::check_page || named == Route::check_api) route = named;
    }
    const auto web = this->web();
    const std::string& headers = web->header_lines;
    // Liveness and readiness stay open, as the exporters' toolkit leaves them, for the probes
    // of a service manager or load balancer that has no credentials.
    if (web->auth && route != Route::healthy && route != Route::ready && !authorized(conn, *web->auth)) {
      respond(conn, 401, "text/plain", "unauthorized\n", headers + std::string(kChallenge));
      return true;
    }
    switch (route) {
      case Route::not_found:
        respond(conn, 404, "text/plain", "not found\n", headers);
        break;
      case Route::index:
        if (!allowed(conn, method, Method::get, "GET, HEAD", headers)) break;
        if (!routes_.status) {
          respond(conn, 200, "text/html; charset=utf-8", kIndex, headers);
        } else if (const auto body = routes_.status->page()) {
          page(conn, *body, headers);
        } else {
          respond(conn, 500, "text/plain", "the status page could not be made; see the agent's log\n", headers);
        }
        break;
      case Route::check_page:
        if (!routes_.status) respond(conn, 404, "text/plain", "not found\n", headers);
        else if (allowed(conn, method, Method::get, "GET, HEAD", headers)) {
          if (auto body = routes_.status->check_page(check)) page(conn, *body, headers);
          else respond(conn, 404, "text/html; charset=utf-8", render_missing_check_page(check), headers + page_policy());
        }
        break;
      case Route::checks_api:
        if (!routes_.status) respond(conn, 404, "text/plain", "not found\n", headers);
        else if (allowed(conn, method, Method::get, "GET, HEAD", headers)) {
          if (const auto body = routes_.status->checks_json()) respond(conn, 200, "application/json", *body, headers);
          else respond(conn, 500, "text/plain", "the checks could not be listed; see the agent's log\n", headers);
        }
        break;
      case Route::check_api:
        if (!routes_.status) respond(conn, 404, "text/plain", "not found\n", headers);
        else if (method == Method::post && check.ends_with("/run") && check.size() > 4)
          run_now(conn, check.substr(0, check.size() - 4), headers);
        else if (allowed(conn, method, Method::get, "GET, HEAD", headers)) {
          if (auto body = routes_.status->check_json(check)) respond(conn, 200, "application/json", *body, headers);
          else respond(conn, 404, "application/json", "{\"error\":\"no such check\"}\n", headers);
        }
        break;
      case Route::healthy:
        if (allowed(conn, method, Method::get, "GET, HEAD", headers)) respond(conn, 200, "text/plain", "OK\n", headers);
        break;
      case Route::ready:
        if (!allowed(conn, method, Method::get, "GET, HEAD", headers)) break;
        if (!routes_.ready || routes_.ready())
          respond(conn, 200, "text/plain", "ready\n", headers);
        else
          respond(conn, 503, "text/plain", "not ready: the first round of checks has not run yet\n", headers);
        break;
      case Route::metrics:
        if (allowed(conn, method, Method::get, "GET, HEAD", headers)) metrics(conn, headers);
        break;
      case Route::reload:
        if (allowed(conn, method, Method::post, "POST", headers)) reload(conn, headers);
        break;
    }
    return true;
  }

  static bool allowed(mg_connection* conn, Method method, Method wanted, const std::string& allow,
                      const std::string& headers) {
    if (method == wanted) return true;
    respond(conn, 405, "text/plain", "method not allowed; allowed: " + allow + "\n", headers + "Allow: " + allow + "\r\n");
    return false;
  }

  static const std::string& page_policy() {
    static const std::string line = "Content-Security-Policy: " + status_page_security_policy() + "\r\n";
    return line;
  }

  static void page(mg_connection* conn, const std::string& body, const std::string& headers) {
    respond(conn, 200, "text/html; charset=utf-8", body, headers + page_policy());
  }

  // A request from another site's page (a form a browser with cached credentials would send)
  // names that site in Origin; a same-site form, curl and scripts name ours or none.
  static bool same_origin(mg_connection* conn) {
    const char* origin = mg_get_header(conn, "Origin");
    if (!origin || std::string_view(origin) == "null") return origin == nullptr;
    const char* host = mg_get_header(conn, "Host");
    if (!host) return false;
    std::string_view from(origin);
    const auto scheme = from.find("://");
    return scheme != std::string_view::npos && from.substr(scheme + 3) == host;
  }

  void run_now(mg_connection* conn, const std::string& check, const std::string& headers) {
    if (!routes_.lifecycle) {
      respond(conn, 403, "text/plain", "running a check out of turn needs --web.enable-lifecycle\n", headers);
      return;
    }
    if (!same_origin(conn)) {
      respond(conn, 403, "text/plain", "refused: the request came from another site's page\n", headers);
      return;
    }
    switch (routes_.status->run(check)) {
      case RunNow::ran: {
        // A browser's form is sent back to the check's page, which shows the run; a script gets the check.
        const char* accept = mg_get_header(conn, "Accept");
        if (accept && std::string_view(accept).find("text/html") != std::string_view::npos) {
          const std::string location = "Location: /check/" + url_path_segment(check) + "\r\n";
          respond(conn, 303, "text/plain", "ran; see /check/" + check + "\n", headers + location);
          return;
        }
        auto body = routes_.status->check_json(check);
        if (body) respond(conn, 200, "application/json", *body, headers);
        else respond(conn, 404, "application/json", "{\"error\":\"no such check\"}\n", headers);
        return;
      }
      case RunNow::busy:
        respond(conn, 409, "text/plain", "the check is running now; its result will show when it ends\n", headers);
        return;
      case RunNow::not_found:
        respond(conn, 404, "text/plain", "no such check\n", headers);
        return;
      case RunNow::unavailable:
        respond(conn, 503, "text/plain", "the agent is reloading or shutting down; try again\n", headers);
        return;
    }
  }

  void metrics(mg_connection* conn, const std::string& headers) {
    const auto text = routes_.metrics();
    if (!text) {
      respond(conn, 500, "text/plain", "the metrics could not be rendered; see the agent's log\n", headers);
      return;
    }
    constexpr std::string_view kExposition = "text/plain; version=0.0.4; charset=utf-8";
    const char* accept_encoding = mg_get_header(conn, "Accept-Encoding");
    if (accept_encoding && accepts_gzip(accept_encoding)) {
      // Compressed here, per request, on the worker: the text is shared by the scrapes that
      // asked together, and a scraper that does not ask for gzip (curl, a person) gets it plain.
      std::string compressed;
      try {
        compressed = gzip_compress(*text);
      } catch (const std::exception& e) {
        respond(conn, 500, "text/plain", "the metrics could not be compressed: " + std::string(e.what()) + "\n", headers);
        return;
      }
      respond(conn, 200, kExposition, compressed, headers + "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
      return;
    }
    respond(conn, 200, kExposition, *text, headers + "Vary: Accept-Encoding\r\n");
  }

  void reload(mg_connection* conn, const std::string& headers) {
    // As Prometheus: the endpoint is off unless asked for; SIGHUP (not on Windows) always reloads.
    if (!routes_.lifecycle) {
      respond(conn, 403, "text/plain", kLifecycleDisabled, headers);
      return;
    }
    if (auto error = routes_.reload())
      respond(conn, 500, "text/plain", "config rejected, previous config still running: " + *error + "\n", headers);
    else
      respond(conn, 200, "text/plain", "config reloaded\n", headers);
  }

  HttpRoutes routes_;
  std::mutex web_mutex_;
  std::shared_ptr<const ActiveWeb> web_;
};

HttpServer::HttpServer(const std::vector<std::string>& listen, HttpRoutes routes, std::shared_ptr<const WebConfig> web) {
  if (listen.empty()) throw std::runtime_error("no address to listen on");
  if (web && web->tls) tls_ = std::make_unique<TlsSwitch>(web->tls);
  std::string ports;  // CivetWeb's form: a list, an "s" after each port that speaks TLS
  std::string shown;
  for (const auto& address : listen) {
    listen_.push_back(civetweb_listen(address));
    ports += (ports.empty() ? "" : ",") + listen_.back() + (tls_ ? "s" : "");
    shown += (shown.empty() ? "" : ", ") + address;
  }
  handlers_ = std::make_unique<Handlers>(std::move(routes), std::move(web));
  // CivetWeb holds a worker per connection until the client sends a request or the request
  // timeout passes (keep-alive: the keep-alive timeout), and serves the rest in accept order.
  // See the constants in the header. No document_root: only the handler above is served. The
  // request timeout bounds a TLS handshake too.
  const std::vector<std::string> options{
      "listening_ports", ports,
      "num_threads", std::to_string(kWebWorkers),
      "request_timeout_ms", std::to_string(kWebRequestTimeoutMs),
      "enable_keep_alive", "yes",
      "keep_alive_timeout_ms", std::to_string(kWebKeepAliveTimeoutMs),
      "connection_queue", std::to_string(kWebConnectionQueue),
      "listen_backlog", std::to_string(kWebListenBacklog)};
  // CivetWeb starts every worker now, with the default stack size (8 MiB: 4 GiB of address
  // space for 512 workers); it has no option for it, but takes the process default.
  DefaultStackSize small_stacks(kWebWorkerStackBytes);
  // With TLS, CivetWeb is handed our context instead of making its own (from the user data it
  // passes back: the TlsSwitch), and asked again at its end, when 1 says "ours: do not free it".
  CivetCallbacks callbacks{};
  callbacks.external_ssl_ctx = [](void** context, void* server) -> int {
    const auto* tls = static_cast<const TlsSwitch*>(static_cast<CivetServer*>(server)->getUserContext());
    if (!tls) return 0;
    *context = tls->outer();
    return 1;
  };
  try {
    server_ = std::make_unique<CivetServer>(options, &callbacks, tls_.get());
  } catch (const CivetException& e) {
    throw std::runtime_error("cannot listen on " + shown + ": " + e.what());
  }
  server_->addHandler("/", *handlers_);
}

std::optional<std::string> HttpServer::web_config_problem(const std::shared_ptr<const WebConfig>& web) const {
  const bool wants_tls = web && web->tls;
  if (wants_tls && !tls_) return std::string("the web config turns TLS on, which takes a restart of the agent");
  if (!wants_tls && tls_) return std::string("the web config turns TLS off, which takes a restart of the agent");
  return std::nullopt;
}

void HttpServer::set_web_config(std::shared_ptr<const WebConfig> web) {
  if (tls_ && web && web->tls) tls_->set(web->tls);
  handlers_->set_web(std::move(web));
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
  std::vector<std::string> addresses;
  for (const auto& listen : listen_) addresses.push_back(own_address(listen));
  std::thread waker([&, ports = server_->getListeningPorts()] {
    for (int i = 0; i < 100 && !closed.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (closed.load()) break;
      // CivetWeb lists the ports in the order they were given.
      for (std::size_t p = 0; p < ports.size(); ++p) poke(addresses[std::min(p, addresses.size() - 1)], ports[p]);
      shut_down_accepted_connections(ports);
    }
  });
  server_->close();
  closed = true;
  waker.join();
}

std::vector<int> HttpServer::ports() const { return server_->getListeningPorts(); }

}  // namespace connectivity

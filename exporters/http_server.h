// The agent's HTTP endpoints on CivetWeb: /metrics, /-/healthy, /-/ready, /-/reload (POST), matched by
// exact path. prometheus-cpp's Exposer only serves collectables, so the server is ours and
// renders with prometheus-cpp's serializer.
//
// A web config (exporters/web_config.h) adds TLS, basic auth and response headers, as Prometheus'
// exporters serve them. Every path but /-/healthy and /-/ready then needs the credentials, so a
// load balancer or a service manager can still ask whether the agent is up. A reload swaps the
// web config while connections are served: a TLS handshake takes the certificate and settings
// current when its ClientHello arrives, so a renewed certificate needs no restart.
//
// CivetWeb gives each connection a worker thread for its whole life, idle or not, so the
// server is sized and timed so that connections that never send a request (port scanners,
// health checks, slowloris) cannot hold every worker for long (see kWebWorkers and below), and
// it shuts down the connections it holds when it stops, so SIGTERM does not wait out
// CivetWeb's 2 s poll quantum.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

class CivetServer;

namespace connectivity {

struct WebConfig;

// What "run now" of a check came to.
enum class RunNow { ran, busy, not_found, unavailable };

// The status page and its JSON API (exporters/status_page.h, status_json.h). Each returns the
// body; nullopt for a check that is not configured.
// The whole-page bodies come shared and null when they could not be made (answered 500): they
// are rendered one at a time on a thread of their own, as /metrics is.
struct StatusRoutes {
  std::function<std::shared_ptr<const std::string>()> page;                // GET /
  std::function<std::optional<std::string>(std::string_view)> check_page;  // GET /check/<name>
  std::function<std::shared_ptr<const std::string>()> checks_json;         // GET /api/v1/checks
  std::function<std::optional<std::string>(std::string_view)> check_json;  // GET /api/v1/checks/<name>
  // POST /api/v1/checks/<name>/run (lifecycle only): runs the check out of turn and returns
  // once its result is recorded.
  std::function<RunNow(std::string_view)> run;
};

struct HttpRoutes {
  // The exposition text; null when it could not be rendered (answered 500).
  std::function<std::shared_ptr<const std::string>()> metrics;
  // nullopt on success, else why not.
  std::function<std::optional<std::string>()> reload;
  // Serve POST /-/reload (--web.enable-lifecycle); without it the path answers 403.
  bool lifecycle = false;
  // GET /-/ready: 200 when this says so, else 503. Unset: always ready.
  std::function<bool()> ready;
  // Unset: GET / shows links only, and the other status paths are not found.
  std::optional<StatusRoutes> status{};
};

// The CivetWeb settings, chosen by measurement (README "HTTP endpoints"): enough workers that
// 400 hostile connections leave some free, timeouts short enough that 1,000 clear within a
// Prometheus scrape timeout, and a backlog that holds them all rather than dropping SYNs.
inline constexpr int kWebWorkers = 512;
inline constexpr int kWebRequestTimeoutMs = 3000;    // header read, and each write's progress
inline constexpr int kWebKeepAliveTimeoutMs = 1000;  // idle between requests on one connection
inline constexpr int kWebConnectionQueue = 64;       // accepted, waiting for a free worker
inline constexpr int kWebListenBacklog = 4096;       // the kernel caps it at net.core.somaxconn
inline constexpr std::size_t kWebWorkerStackBytes = 256 * 1024;  // CivetWeb's own guide: 100 KiB will do

class HttpServer {
 public:
  // Each of `listen` is host:port ("0.0.0.0:9470", "127.0.0.1:0", "[::1]:9470") or ":port".
  // `web`: null or one without TLS serves plain HTTP. Throws std::runtime_error when it cannot
  // listen (address in use, bad address).
  HttpServer(const std::vector<std::string>& listen, HttpRoutes routes, std::shared_ptr<const WebConfig> web = {});
  HttpServer(const std::string& listen, HttpRoutes routes, std::shared_ptr<const WebConfig> web = {})
      : HttpServer(std::vector<std::string>{listen}, std::move(routes), std::move(web)) {}
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // In the order of `listen`.
  std::vector<int> ports() const;
  bool serves_tls() const { return tls_ != nullptr; }
  // Why `web` cannot replace the running web config (TLS turned on or off: the listening
  // sockets would have to be made again, which takes a restart), or nullopt when it can.
  std::optional<std::string> web_config_problem(const std::shared_ptr<const WebConfig>& web) const;
  // Serves with `web` from the next request and the next TLS handshake. Thread-safe. Call only
  // when web_config_problem() says it can.
  void set_web_config(std::shared_ptr<const WebConfig> web);

 private:
  class Handlers;
  class TlsSwitch;
  std::vector<std::string> listen_;
  std::unique_ptr<TlsSwitch> tls_;
  std::unique_ptr<Handlers> handlers_;
  std::unique_ptr<CivetServer> server_;
};

// Which route a request goes to: exact paths only (a query string is not part of the path),
// and for /check/<name> and /api/v1/checks/<name> (a name may hold any character, "/"
// included, percent-encoded in the URL) the name, in `check`. POST to
// /api/v1/checks/<name>/run is told from a GET of a check named "<name>/run" by its method.
enum class Route { not_found, index, metrics, healthy, ready, reload, check_page, checks_api, check_api };
Route route_of(std::string_view path, std::string* check = nullptr);

// Shuts down, both ways, every TCP connection this process accepted on one of `ports` (local
// port in `ports`, not a listening socket): a worker waiting on one wakes at once. Each
// descriptor is checked on a duplicate, so one closed and reused meanwhile is never touched.
// Returns how many it shut down. Windows cannot list a process's sockets: there it shuts down
// none and returns 0.
int shut_down_accepted_connections(const std::vector<int>& ports);

}  // namespace connectivity

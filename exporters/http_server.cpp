#include "exporters/http_server.h"

#include <CivetServer.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <string_view>
#include <thread>

namespace connectivity {

namespace {

void respond(mg_connection* conn, int status, std::string_view content_type, std::string_view body,
             const std::string& extra_headers = {}) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
            status, mg_get_response_code_text(conn, status), static_cast<int>(content_type.size()),
            content_type.data(), body.size(), extra_headers.c_str());
  // HEAD gets the headers of a GET, without the body.
  if (std::string_view(mg_get_request_info(conn)->request_method) != "HEAD") mg_write(conn, body.data(), body.size());
}

// One handler per path, for the methods it allows; other methods get 405 with Allow.
class Route : public CivetHandler {
 public:
  Route(std::string allow, std::function<void(mg_connection*)> get, std::function<void(mg_connection*)> post)
      : allow_(std::move(allow)), get_(std::move(get)), post_(std::move(post)) {}

  bool handleGet(CivetServer*, mg_connection* conn) override { return dispatch(get_, conn); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return dispatch(get_, conn); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return dispatch(post_, conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return dispatch({}, conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return dispatch({}, conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return dispatch({}, conn); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return dispatch({}, conn); }

 private:
  bool dispatch(const std::function<void(mg_connection*)>& action, mg_connection* conn) {
    if (action) {
      action(conn);
    } else {
      respond(conn, 405, "text/plain", "method not allowed; allowed: " + allow_ + "\n", "Allow: " + allow_ + "\r\n");
    }
    return true;
  }
  std::string allow_;
  std::function<void(mg_connection*)> get_, post_;
};

std::string civetweb_listen(const std::string& listen) {
  if (listen.starts_with(':')) return listen.substr(1);
  if (listen.starts_with("localhost:")) return "127.0.0.1" + listen.substr(9);
  return listen;
}

}  // namespace

class HttpServer::Handlers {
 public:
  explicit Handlers(HttpRoutes routes)
      : routes_(std::move(routes)),
        metrics_("GET, HEAD", [this](mg_connection* c) {
          respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", routes_.metrics());
        }, {}),
        healthy_("GET, HEAD", [](mg_connection* c) { respond(c, 200, "text/plain", "OK\n"); }, {}),
        reload_("POST", {}, [this](mg_connection* c) {
          if (auto error = routes_.reload())
            respond(c, 500, "text/plain", "config rejected, previous config still running: " + *error + "\n");
          else
            respond(c, 200, "text/plain", "config reloaded\n");
        }),
        index_("GET, HEAD", [](mg_connection* c) {
          const auto* info = mg_get_request_info(c);
          if (info->local_uri && std::string_view(info->local_uri) != "/") {
            respond(c, 404, "text/plain", "not found\n");
            return;
          }
          respond(c, 200, "text/html; charset=utf-8",
                  "<!doctype html><title>connectivity-agent</title><h1>connectivity-agent</h1>"
                  "<p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/-/healthy\">Health</a></p>\n");
        }, {}) {}

  void attach(CivetServer& server) {
    server.addHandler("/metrics", metrics_);
    server.addHandler("/-/healthy", healthy_);
    server.addHandler("/-/reload", reload_);
    server.addHandler("/", index_);
  }

 private:
  HttpRoutes routes_;
  Route metrics_, healthy_, reload_, index_;
};

HttpServer::HttpServer(const std::string& listen, HttpRoutes routes)
    : listen_(civetweb_listen(listen)), handlers_(std::make_unique<Handlers>(std::move(routes))) {
  // Several workers and a short request timeout: two slow clients must not hold every worker
  // for CivetWeb's default 30 s and stall Prometheus's scrapes (../shared/PITFALLS.md).
  // No document_root: only the handlers above are served.
  const std::vector<std::string> options{"listening_ports", civetweb_listen(listen), "num_threads", "8",
                                         "request_timeout_ms", "10000", "enable_keep_alive", "yes",
                                         "keep_alive_timeout_ms", "30000"};
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    throw std::runtime_error("cannot listen on " + listen + ": " + e.what());
  }
  handlers_->attach(*server_);
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

void poke(const std::string& address, int port) {
  boost::system::error_code error;
  const auto ip = boost::asio::ip::make_address(address, error);
  if (error) return;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({ip, static_cast<unsigned short>(port)}, error);
}

}  // namespace

HttpServer::~HttpServer() {
  if (!server_) return;
  // CivetWeb's master thread notices mg_stop() only when its poll() returns, which can take
  // 2 s (SOCKET_TIMEOUT_QUANTUM) on an idle server; SIGTERM must finish within one. A connect
  // to our own listener wakes it. Bounded: 100 tries, 10 ms apart.
  std::atomic<bool> closed{false};
  std::thread waker([&, ports = server_->getListeningPorts(), address = own_address(listen_)] {
    for (int i = 0; i < 100 && !closed.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      for (int port : ports) poke(address, port);
    }
  });
  server_->close();
  closed = true;
  waker.join();
}

std::vector<int> HttpServer::ports() const { return server_->getListeningPorts(); }

}  // namespace connectivity

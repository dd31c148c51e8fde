// The agent's HTTP endpoints on CivetWeb: /metrics, /-/healthy, /-/reload (POST).
// prometheus-cpp's Exposer only serves collectables, so the server is ours and renders with
// prometheus-cpp's serializer.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

class CivetServer;

namespace connectivity {

struct HttpRoutes {
  std::function<std::string()> metrics;                 // the exposition text
  std::function<std::optional<std::string>()> reload;  // nullopt on success, else why not
};

class HttpServer {
 public:
  // `listen` is host:port ("0.0.0.0:9470", "127.0.0.1:0", "[::1]:9470") or ":port".
  // Throws std::runtime_error when it cannot listen (address in use, bad address).
  HttpServer(const std::string& listen, HttpRoutes routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::vector<int> ports() const;

 private:
  class Handlers;
  std::string listen_;
  std::unique_ptr<Handlers> handlers_;
  std::unique_ptr<CivetServer> server_;
};

}  // namespace connectivity

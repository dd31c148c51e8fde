// Real TLS and HTTP servers on loopback for the probe tests: `openssl s_server` and nginx,
// run as child processes on a free port, stopped (SIGTERM, then SIGKILL, then reaped) on
// destruction. Construction waits, bounded, until the port accepts, and throws with the
// server's stderr if it does not come up. Linux only: on Windows (peers_windows.cpp) every
// constructor here throws, and the tests that need one skip first (tests/support/platform.h).
#pragma once

#include "tests/support/loopback.h"  // free_loopback_port, wait_until_listening

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace connectivity::testing {

// A child process with its stderr captured to a file; used by the servers below.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool running();  // false once it has exited (reaps it)
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_file_;
};

struct SServerOptions {
  std::string cert{};         // PEM
  std::string key{};          // PEM
  std::string chain{};        // extra certificates to send (-cert_chain), may be empty
  std::string tls_version{};  // "", "1.2" (-tls1_2) or "1.3" (-tls1_3)
  std::string client_ca{};    // if set: require a client certificate signed by it (-Verify 1 -CAfile)
  bool www = false;           // answer HTTP GETs with a status page (-www)
};

// `openssl s_server` on 127.0.0.1, serving any number of connections.
class OpensslServer {
 public:
  explicit OpensslServer(const SServerOptions& options);
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// nginx (Debian's nginx-light) on 127.0.0.1 with a config the test gives: `server_body` is
// the inside of one `server { }` block; the listen directive is added (with `ssl` when
// cert/key are given). Runs as the current user (no daemon, no master process) in a temp
// prefix that is removed on destruction; `files` (path relative to the document root ->
// content) are written into the document root before it starts. `$ROOT` in server_body is
// replaced by the document root's absolute path.
class NginxServer {
 public:
  NginxServer(const std::string& server_body, const std::map<std::string, std::string>& files = {},
              const std::string& cert = "", const std::string& key = "");
  ~NginxServer();
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_ = 0;
  std::string prefix_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace connectivity::testing

// A real OpenLDAP slapd (Debian's package slapd) on loopback for the ldap probe tests: a
// throwaway slapd.conf (-f, not cn=config) and back-mdb database in a temp directory, run in
// the foreground (-d 0) as a child process, stopped and removed on destruction. Construction
// waits, bounded, until every URL it serves accepts, and throws with slapd's output if not.
#pragma once

#include "tests/support/peers.h"

#include <cstdint>
#include <memory>
#include <string>

namespace connectivity::testing {

struct SlapdOptions {
  std::string cert{};  // PEM; with key: serve ldaps:// as well, and StartTLS on ldap://
  std::string key{};
};

class SlapdServer {
 public:
  static constexpr const char* kSuffix = "dc=example,dc=org";
  static constexpr const char* kRootDn = "cn=admin,dc=example,dc=org";
  static constexpr const char* kRootPassword = "secret";

  explicit SlapdServer(const SlapdOptions& options = {});
  ~SlapdServer();
  SlapdServer(const SlapdServer&) = delete;
  SlapdServer& operator=(const SlapdServer&) = delete;

  std::uint16_t port() const { return port_; }              // ldap://
  std::uint16_t ldaps_port() const { return ldaps_port_; }  // ldaps://, 0 without TLS
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  std::uint16_t ldaps_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace connectivity::testing

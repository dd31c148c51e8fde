// The Linux server processes of peers.h and slapd_server.h on Windows: a Windows test program
// cannot start and supervise openssl s_server, nginx, tinyproxy, slapd or yaz-ztest (under wine
// they are Linux programs). Every test that needs one skips before it gets here
// (SKIP_ON_WINDOWS, tests/support/platform.h); should one not, it fails with this message
// rather than hang or pass.
#include "tests/support/peers.h"
#include "tests/support/slapd_server.h"

#include <stdexcept>

namespace connectivity::testing {

namespace {

[[noreturn]] void unavailable(const std::string& what) {
  throw std::runtime_error(what + " is a Linux server process, not available to the Windows tests: the test should have "
                                  "skipped (SKIP_ON_WINDOWS)");
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_file) : log_file_(log_file) {
  unavailable(argv.empty() ? std::string("a child process") : argv[0]);
}
ChildProcess::~ChildProcess() = default;
bool ChildProcess::running() { return false; }
std::string ChildProcess::log() const { return {}; }

OpensslServer::OpensslServer(const SServerOptions&) { unavailable("openssl s_server"); }

NginxServer::NginxServer(const std::string&, const std::map<std::string, std::string>&, const std::string&,
                         const std::string&) {
  unavailable("nginx");
}
NginxServer::~NginxServer() = default;

SlapdServer::SlapdServer(const SlapdOptions&) { unavailable("slapd"); }
SlapdServer::~SlapdServer() = default;

}  // namespace connectivity::testing

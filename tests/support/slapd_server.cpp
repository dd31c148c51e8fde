#include "tests/support/slapd_server.h"

#include "tests/support/temp_dir.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace connectivity::testing {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSlapd = "/usr/sbin/slapd";
constexpr int kStartLimitMs = 10000;

// slapd.conf quotes values containing spaces with double quotes.
std::string quoted(const std::string& text) { return "\"" + text + "\""; }

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

}  // namespace

SlapdServer::SlapdServer(const SlapdOptions& options) {
  if (options.cert.empty() != options.key.empty())
    throw std::invalid_argument("SlapdServer: give both cert and key, or neither");
  if (!fs::exists(kSlapd)) throw std::runtime_error("slapd is not installed (apt-get install slapd)");
  const fs::path dir = make_temp_dir("connectivity-slapd");
  dir_ = dir.string();
  try {
    fs::create_directory(dir / "db");
    std::ostringstream config;
    config << "include /etc/ldap/schema/core.schema\n"
           << "pidfile " << quoted((dir / "slapd.pid").string()) << "\n"
           << "argsfile " << quoted((dir / "slapd.args").string()) << "\n"
           << "modulepath /usr/lib/ldap\n"
           << "moduleload back_mdb\n";
    if (!options.cert.empty())
      config << "TLSCertificateFile " << quoted(options.cert) << "\n"
             << "TLSCertificateKeyFile " << quoted(options.key) << "\n";
    // A suffix gives the RootDSE a namingContexts value; rootdn/rootpw a DN to bind as
    // without adding any entry.
    config << "database mdb\n"
           << "maxsize 10485760\n"
           << "suffix " << quoted(kSuffix) << "\n"
           << "rootdn " << quoted(kRootDn) << "\n"
           << "rootpw " << kRootPassword << "\n"
           << "directory " << quoted((dir / "db").string()) << "\n";
    const std::string config_file = (dir / "slapd.conf").string();
    write_file(config_file, config.str());
    const std::string log_file = (dir / "slapd.log").string();

    // Another process may take a free port before slapd binds it: slapd then exits, and one
    // more try on fresh ports follows.
    for (int attempt = 1;; ++attempt) {
      port_ = free_loopback_port();
      ldaps_port_ = options.cert.empty() ? 0 : free_loopback_port();
      std::string urls = "ldap://127.0.0.1:" + std::to_string(port_) + "/";
      if (ldaps_port_) urls += " ldaps://127.0.0.1:" + std::to_string(ldaps_port_) + "/";
      fs::remove(log_file);
      // -d 0: stay in the foreground (our child, stopped by SIGTERM) without debug output.
      process_ = std::make_unique<ChildProcess>(
          std::vector<std::string>{kSlapd, "-d", "0", "-f", config_file, "-h", urls}, log_file);
      bool up = wait_until_listening(port_, kStartLimitMs) && process_->running();
      if (up && ldaps_port_) up = wait_until_listening(ldaps_port_, kStartLimitMs) && process_->running();
      if (up) return;
      const bool exited = !process_->running();
      process_.reset();
      if (attempt < 2 && exited) continue;
      throw std::runtime_error("slapd did not come up on " + urls + (exited ? " (it exited)" : "") +
                               "; its output:\n" + read_file(log_file));
    }
  } catch (...) {
    process_.reset();
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    throw;
  }
}

SlapdServer::~SlapdServer() {
  process_.reset();  // SIGTERM: slapd closes its database and exits
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

}  // namespace connectivity::testing

// Linux only (posix_spawn, signals, /proc): the Windows build has peers_windows.cpp instead.
#include "tests/support/peers.h"

#include "tests/support/loopback.h"
#include "tests/support/temp_dir.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

extern char** environ;  // NOLINT(readability-redundant-declaration): posix_spawn wants it

namespace connectivity::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr int kStartLimitMs = 5000;
constexpr milliseconds kTermGrace{2000};

std::string errno_text(int error) { return std::strerror(error); }  // NOLINT(concurrency-mt-unsafe)

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Reaps `pid` if it exits within `limit`; true once it is gone.
bool reaped_within(pid_t pid, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  // Through syscall(): bookworm's <sys/pidfd.h> lacks extern "C", so its wrapper fails to link.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    // A pidfd turns readable when the process exits, so the wait costs no polling.
    pollfd exit_event{pidfd, POLLIN, 0};
    int ready = 0;
    do {
      ready = ::poll(&exit_event, 1, remaining_ms(deadline));
    } while (ready < 0 && errno == EINTR);
    ::close(pidfd);
    if (ready <= 0) return false;
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return true;
  }
  // No pidfd_open (old kernel, or a sandbox that filters it): bounded polling instead.
  for (;;) {
    const pid_t reaped = ::waitpid(pid, nullptr, WNOHANG);
    if (reaped == pid || (reaped < 0 && errno != EINTR)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// Re-checks `ready` every 20 ms until it holds or `limit_ms` passes. Only for waiting on
// another process, which offers nothing to block on.
bool poll_until(int limit_ms, const std::function<bool()>& ready) {
  const auto deadline = Clock::now() + milliseconds(limit_ms);
  for (;;) {
    if (ready()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// The inode of the socket listening on 127.0.0.1:port, from /proc/net/tcp (0 when there is
// none); nullopt when the table cannot be read.
std::optional<std::uint64_t> loopback_listener_inode(std::uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  if (!table) return std::nullopt;
  constexpr std::string_view kListenState = "0A";
  std::string line;
  std::getline(table, line);  // column headings
  while (std::getline(table, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    std::uint64_t inode = 0;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    if (!fields) continue;
    const std::size_t colon = local.find(':');
    if (state != kListenState || colon == std::string::npos) continue;
    // The address is the in-memory (network order) word printed as hex, the port host order.
    const auto address = static_cast<std::uint32_t>(std::stoul(local.substr(0, colon), nullptr, 16));
    const auto local_port = static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
    if (address == htonl(INADDR_LOOPBACK) && local_port == port) return inode;
  }
  return 0;
}

bool holds_socket(pid_t pid, std::uint64_t inode) {
  const std::string wanted = "socket:[" + std::to_string(inode) + "]";
  std::error_code error;
  for (fs::directory_iterator fd("/proc/" + std::to_string(pid) + "/fd", error), end; !error && fd != end;
       fd.increment(error)) {
    std::error_code vanished;  // the process may close descriptors while we look
    if (fs::read_symlink(fd->path(), vanished).string() == wanted) return true;
  }
  return false;
}

// Whether `pid` itself listens on 127.0.0.1:port. A successful connect alone would also
// count a listener some other process holds on that port, while ours fails to bind it.
bool listens_on(pid_t pid, std::uint16_t port) {
  const std::optional<std::uint64_t> inode = loopback_listener_inode(port);
  if (!inode) return accepts_connection(port);  // no /proc/net/tcp: the best evidence left
  return *inode != 0 && holds_socket(pid, *inode);
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path.string());
}

void remove_quietly(const fs::path& path) {
  std::error_code ignored;  // used from destructors and error paths, which must not throw
  fs::remove_all(path, ignored);
}

// s_server sends -cert and then every certificate in -cert_chain, so a chain file that starts
// with the leaf (as TestPki's do) would put the leaf on the wire twice. This writes the chain
// without the leaf into `dir` and returns the file to pass ("" when nothing is left); when a
// file does not parse it returns `chain_file` unchanged, for s_server to report the problem.
std::string chain_without_leaf(const std::string& chain_file, const std::string& cert_file,
                               const fs::path& dir) {
  using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
  using Cert = std::unique_ptr<X509, decltype(&X509_free)>;
  const auto read_first = [](const std::string& path) {
    const Bio in(BIO_new_file(path.c_str(), "r"), &BIO_free);
    return Cert(in ? PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  };
  const Cert leaf = read_first(cert_file);
  const Bio in(BIO_new_file(chain_file.c_str(), "r"), &BIO_free);
  const std::string out_file = (dir / "cert_chain.pem").string();
  const Bio out(BIO_new_file(out_file.c_str(), "w"), &BIO_free);
  if (!leaf || !in || !out) {
    ERR_clear_error();
    return chain_file;
  }
  int written = 0;
  while (const Cert cert{PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr), &X509_free}) {
    if (X509_cmp(cert.get(), leaf.get()) == 0) continue;
    if (PEM_write_bio_X509(out.get(), cert.get()) != 1) {
      ERR_clear_error();
      return chain_file;
    }
    ++written;
  }
  ERR_clear_error();  // reading ends with a "no start line" error queued
  return written > 0 ? out_file : std::string();
}

bool lost_port_race(const std::string& log) {
  return log.find("Address already in use") != std::string::npos;
}

using Launch = std::function<std::unique_ptr<ChildProcess>(std::uint16_t port)>;

// Starts a server on a free port via `launch` and waits, bounded, until it listens there. If
// the server lost its port to another process between free_loopback_port() and its own bind
// (its log says so), tries once more on a fresh port. `logs` reads what it wrote.
std::unique_ptr<ChildProcess> start_server(const std::string& what, std::uint16_t& port, const Launch& launch,
                                           const std::function<std::string()>& logs) {
  for (int attempt = 1;; ++attempt) {
    port = free_loopback_port();
    std::unique_ptr<ChildProcess> process = launch(port);
    bool listening = false;
    poll_until(kStartLimitMs, [&] {
      // The log comes first: nginx goes on retrying a failed bind for seconds before it exits.
      if (!process->running() || lost_port_race(logs())) return true;
      listening = listens_on(process->pid(), port);
      return listening;
    });
    if (listening) return process;
    const bool exited = !process->running();
    process.reset();
    const std::string log = logs();  // read after the stop, so that it is complete
    if (attempt == 1 && lost_port_race(log)) continue;
    std::string message = what + " did not come up on 127.0.0.1:" + std::to_string(port);
    message += exited ? " (it exited)" : " within " + std::to_string(kStartLimitMs) + " ms";
    message += "; its output:\n";
    message += log;
    throw std::runtime_error(message);
  }
}

// nginx config strings are quoted so that paths with spaces or semicolons stay one token.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_file)
    : log_file_(log_file) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  std::vector<std::string> arguments = argv;
  std::vector<char*> raw_argv;
  raw_argv.reserve(arguments.size() + 1);
  for (std::string& argument : arguments) raw_argv.push_back(argument.data());
  raw_argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  // Descriptors the test process opened without O_CLOEXEC (sockets, pipes) would otherwise
  // keep connections or pipes alive for as long as the server runs.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  // Signal dispositions the test process set (ignored SIGPIPE, blocked SIGTERM) would
  // otherwise carry over through exec and change how the server behaves or stops.
  sigset_t all_signals;
  sigset_t no_signals;
  sigfillset(&all_signals);
  sigemptyset(&no_signals);
  posix_spawnattr_setsigdefault(&attributes, &all_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  const int error = ::posix_spawnp(&pid_, raw_argv[0], &actions, &attributes, raw_argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + argv[0] + " (log " + log_file + "): " + errno_text(error));
  }
}

ChildProcess::~ChildProcess() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  if (reaped_within(pid_, kTermGrace)) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  pid_t reaped = 0;
  do {
    reaped = ::waitpid(pid_, nullptr, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return true;
  // Reaped (or not ours to reap): forget the pid, which the kernel may now hand out again.
  pid_ = -1;
  return false;
}

std::string ChildProcess::log() const { return read_file(log_file_); }

OpensslServer::OpensslServer(const SServerOptions& options) {
  if (!options.tls_version.empty() && options.tls_version != "1.2" && options.tls_version != "1.3")
    throw std::invalid_argument("OpensslServer: tls_version must be empty, \"1.2\" or \"1.3\"");
  // The log and the chain file only matter until the server is up (or fails to come up): the
  // directory goes once startup is decided; s_server keeps writing to its open, unlinked log.
  const fs::path work_dir = make_temp_dir("connectivity-s_server");
  const std::string log_file = (work_dir / "s_server.log").string();
  try {
    const std::string chain =
        options.chain.empty() ? std::string() : chain_without_leaf(options.chain, options.cert, work_dir);
    const Launch launch = [&](std::uint16_t port) {
      // Without -quiet, s_server takes EOF on stdin (/dev/null here) for "quit" and stops
      // accepting after the first connection. With it, EOF only ends the current connection:
      // s_server closes each one right after the handshake and accepts the next.
      std::vector<std::string> argv = {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                                       "-cert", options.cert, "-key", options.key, "-quiet"};
      if (!chain.empty()) argv.insert(argv.end(), {"-cert_chain", chain});
      if (!options.tls_version.empty()) argv.push_back(options.tls_version == "1.2" ? "-tls1_2" : "-tls1_3");
      // Without -verify_return_error s_server only logs a bad client certificate and goes on.
      if (!options.client_ca.empty())
        argv.insert(argv.end(), {"-Verify", "1", "-CAfile", options.client_ca, "-verify_return_error"});
      if (options.www) argv.push_back("-www");
      fs::remove(log_file);  // a retry starts with a fresh log
      return std::make_unique<ChildProcess>(argv, log_file);
    };
    process_ = start_server("openssl s_server", port_, launch, [&] { return read_file(log_file); });
  } catch (...) {
    remove_quietly(work_dir);
    throw;
  }
  remove_quietly(work_dir);
}

NginxServer::NginxServer(const std::string& server_body, const std::map<std::string, std::string>& files,
                         const std::string& cert, const std::string& key) {
  if (cert.empty() != key.empty())
    throw std::invalid_argument("NginxServer: give both cert and key, or neither");
  const fs::path prefix = make_temp_dir("connectivity-nginx");
  prefix_ = prefix.string();
  try {
    const fs::path root = prefix / "html";
    const fs::path logs = prefix / "logs";
    const fs::path temp = prefix / "temp";
    for (const fs::path& dir : {root, logs, temp, prefix / "conf"}) fs::create_directory(dir);

    for (const auto& [relative, content] : files) {
      const fs::path path = fs::path(relative).relative_path().lexically_normal();
      if (path.empty() || *path.begin() == "..")
        throw std::invalid_argument("NginxServer: file '" + relative + "' is outside the document root");
      fs::create_directories((root / path).parent_path());
      write_file(root / path, content);
    }

    const std::string error_log = (logs / "error.log").string();
    const std::string stderr_log = (logs / "stderr.log").string();
    const std::string config_file = (prefix / "conf" / "nginx.conf").string();
    const std::string body = replace_all(server_body, "$ROOT", root.string());
    const Launch launch = [&](std::uint16_t port) {
      std::ostringstream config;
      // No master process and no daemon: nginx stays the child we started and SIGTERM stops
      // it. Every path nginx writes to lies inside the prefix.
      config << "daemon off;\n"
             << "master_process off;\n"
             << "worker_processes 1;\n"
             << "error_log " << quoted(error_log) << ";\n"
             << "pid " << quoted((logs / "nginx.pid").string()) << ";\n";
      // As root, nginx would otherwise look up the "nobody" account (failing where it does
      // not exist) and hand the temp directories to it; without a master process it never
      // switches user anyway.
      if (::geteuid() == 0) config << "user root;\n";
      config << "events { worker_connections 64; }\n"
             << "http {\n"
             << "  access_log off;\n"
             << "  default_type application/octet-stream;\n";
      for (const char* kind : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
        config << "  " << kind << "_temp_path " << quoted((temp / kind).string()) << ";\n";
      config << "  server {\n"
             << "    listen 127.0.0.1:" << port << (cert.empty() ? "" : " ssl") << ";\n"
             << "    server_name localhost;\n"
             << "    root " << quoted(root.string()) << ";\n";
      if (!cert.empty())
        config << "    ssl_certificate " << quoted(cert) << ";\n"
               << "    ssl_certificate_key " << quoted(key) << ";\n";
      config << body << "\n"
             << "  }\n"
             << "}\n";
      write_file(config_file, config.str());
      fs::remove(error_log);  // a retry starts with fresh logs
      fs::remove(stderr_log);
      // By full path when it is there: /usr/sbin is often not on a non-root user's PATH.
      const std::string nginx = fs::exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
      return std::make_unique<ChildProcess>(std::vector<std::string>{nginx, "-p", prefix_, "-c", config_file},
                                            stderr_log);
    };
    // nginx reports startup errors on stderr and in error.log alike; both are shown because
    // each can hold lines the other lacks (stderr before the config is read).
    const auto logs_text = [&] {
      return "--- error.log ---\n" + read_file(error_log) + "--- stderr ---\n" + read_file(stderr_log);
    };
    process_ = start_server("nginx", port_, launch, logs_text);
  } catch (...) {
    process_.reset();
    remove_quietly(prefix);
    throw;
  }
}

NginxServer::~NginxServer() {
  process_.reset();  // stop nginx before its prefix disappears underneath it
  remove_quietly(prefix_);
}

}  // namespace connectivity::testing

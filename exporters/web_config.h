// The web configuration file of Prometheus' exporter-toolkit, the file every official exporter
// takes as --web.config.file: TLS for the metrics port (tls_server_config), extra response
// headers (http_server_config) and basic-auth users with bcrypt hashes (basic_auth_users). The
// same file serves node_exporter and this agent, and `promtool check web-config` checks it.
//
// A file is read whole and checked before it is used: unknown keys, a hash that is not bcrypt,
// a certificate that does not match its key, an unreadable file, are errors naming the file,
// line and column, so a reload with a bad file keeps the running one.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;  // NOLINT(modernize-use-using): OpenSSL's own declaration

namespace connectivity {

// tls_server_config.client_auth_type: whether a client certificate is asked for, required,
// and verified against client_ca_file.
enum class ClientAuth { none, request, require_any, verify_if_given, require_and_verify };
std::string_view client_auth_name(ClientAuth auth);

// The TLS side of a web config, ready to serve: an OpenSSL server context with the certificate
// chain, key, client CAs, protocol versions, ciphers and curves applied. The strings are kept
// because a connection takes them over one by one (see HttpServer) and OpenSSL cannot read a
// cipher list back from a context.
class ServerTls {
 public:
  ServerTls();
  ~ServerTls();
  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;

  SSL_CTX* context() const { return context_; }

  ClientAuth client_auth = ClientAuth::none;
  int min_version = 0;  // OpenSSL's TLS1_2_VERSION and so on
  int max_version = 0;
  bool prefer_server_cipher_suites = true;
  std::string tls12_ciphers;  // OpenSSL names joined by ':', empty: OpenSSL's defaults
  std::string tls13_ciphers;
  std::string groups;         // "P-256:X25519", empty: OpenSSL's defaults

 private:
  SSL_CTX* context_;
};

struct WebConfig {
  std::string path;  // empty: no web config, plain HTTP without authentication
  std::shared_ptr<const ServerTls> tls;  // null: plain HTTP
  std::vector<std::pair<std::string, std::string>> headers;
  std::map<std::string, std::string, std::less<>> users;  // user name -> bcrypt hash
  bool http2 = true;  // accepted as the toolkit does; the agent serves HTTP/1.1 only

  // One line for the log and for `validate`: "TLS 1.2-1.3, client certificates: ..., basic auth (2 users)".
  std::string summary() const;
};

// Reads and checks `path`. Relative certificate paths are taken from the file's own folder, as
// the toolkit does. Throws ConfigError ("file:line:col: message") for anything it would not serve.
std::shared_ptr<const WebConfig> load_web_config(const std::string& path);

// A bcrypt hash as crypt(3) writes it: $2a$, $2b$ or $2y$, a two-digit cost from 04 to 31, and
// 53 characters of bcrypt's base64 (22 of salt, 31 of hash).
bool is_bcrypt_hash(std::string_view text);

}  // namespace connectivity

#include "exporters/web_config.h"

#include "probes/config_table.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

namespace connectivity {

namespace {

// The toolkit's names for things, and what OpenSSL calls the same.
struct CipherName {
  std::string_view toolkit;  // the IANA name, as Go's crypto/tls spells it
  std::string_view openssl;
  bool tls13;
};
// Go's secure cipher suites (tls.CipherSuites()), the list the toolkit accepts names from.
constexpr std::array<CipherName, 17> kCiphers{{
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", false},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", false},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", false},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", false},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", false},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", false},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", false},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", false},
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", true},
    {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", true},
    {"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", true},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kCurves{{
    {"CurveP256", "P-256"}, {"CurveP384", "P-384"}, {"CurveP521", "P-521"}, {"X25519", "X25519"}}};

constexpr std::array<std::pair<std::string_view, int>, 4> kVersions{{
    {"TLS10", TLS1_VERSION}, {"TLS11", TLS1_1_VERSION}, {"TLS12", TLS1_2_VERSION}, {"TLS13", TLS1_3_VERSION}}};

constexpr std::array<std::pair<std::string_view, ClientAuth>, 5> kClientAuth{{
    {"NoClientCert", ClientAuth::none},
    {"RequestClientCert", ClientAuth::request},
    {"RequireAnyClientCert", ClientAuth::require_any},
    {"VerifyClientCertIfGiven", ClientAuth::verify_if_given},
    {"RequireAndVerifyClientCert", ClientAuth::require_and_verify}}};

// The response headers the toolkit lets a site add, with the values it allows (none listed: any).
struct AllowedHeader {
  std::string_view name;
  std::vector<std::string_view> values;
};
const std::array<AllowedHeader, 5>& allowed_headers() {
  static const std::array<AllowedHeader, 5> headers{{{"Strict-Transport-Security", {}},
                                                     {"X-Content-Type-Options", {"nosniff"}},
                                                     {"X-Frame-Options", {"deny", "sameorigin"}},
                                                     {"X-XSS-Protection", {}},
                                                     {"Content-Security-Policy", {}}}};
  return headers;
}

std::string version_name(int version) {
  for (const auto& [name, value] : kVersions)
    if (value == version) return std::string(name);
  return "?";
}

std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    out += (out.empty() ? "" : "; ") + std::string(text.data());
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

// Walks one file's YAML tree; every error names the file and the node's line and column.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    if (mark.is_null()) throw ConfigError(path_ + ": " + message);
    throw ConfigError(path_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": " + message);
  }

  // The key/value pairs of a mapping (an absent or empty value: none), each key once.
  std::vector<std::pair<YAML::Node, YAML::Node>> entries(const YAML::Node& node, std::string_view where) const {
    std::vector<std::pair<YAML::Node, YAML::Node>> out;
    if (!node || node.IsNull()) return out;
    if (!node.IsMap()) fail(node.Mark(), std::string(where) + " must be a mapping of keys to values");
    std::set<std::string> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) fail(entry.first.Mark(), std::string(where) + ": a key must be a plain name");
      if (!seen.insert(entry.first.Scalar()).second)
        fail(entry.first.Mark(), std::string(where) + ": key \"" + entry.first.Scalar() + "\" is given twice");
      out.emplace_back(entry.first, entry.second);
    }
    return out;
  }

  std::string string(const YAML::Node& node, const std::string& key) const {
    if (node.IsNull()) return {};
    if (!node.IsScalar()) fail(node.Mark(), key + " must be a string");
    return node.Scalar();
  }

  bool boolean(const YAML::Node& node, const std::string& key) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) fail(node.Mark(), key + " must be true or false");
    return value;
  }

  std::vector<YAML::Node> list(const YAML::Node& node, const std::string& key) const {
    std::vector<YAML::Node> out;
    if (node.IsNull()) return out;
    if (!node.IsSequence()) fail(node.Mark(), key + " must be a list");
    for (const auto& item : node) {
      if (!item.IsScalar()) fail(item.Mark(), key + ": each item must be a name");
      out.push_back(item);
    }
    return out;
  }

  // A file named in the config, relative to the config's own folder.
  std::string file(const YAML::Node& node, const std::string& key) const {
    std::string name = string(node, key);
    if (name.empty()) return name;
    const std::filesystem::path given(name);
    if (given.is_absolute()) return name;
    return (std::filesystem::path(path_).parent_path() / given).string();
  }

 private:
  std::string path_;
};

[[noreturn]] void fail_unknown(const Reader& reader, const YAML::Node& key, std::string_view where,
                               std::string_view known) {
  const std::string& name = key.Scalar();
  // Keys of newer toolkits than Prometheus 2.42's: named as such, not as typos.
  static const std::set<std::string, std::less<>> kNotSupported{"cert", "key", "client_ca", "client_allowed_sans",
                                                                "rate_limit"};
  if (kNotSupported.contains(name))
    reader.fail(key.Mark(), std::string(where) + ": \"" + name + "\" is not supported by connectivity-agent (known: " +
                                std::string(known) + ")");
  reader.fail(key.Mark(), std::string(where) + ": unknown key \"" + name + "\" (known: " + std::string(known) + ")");
}

struct TlsKeys {
  std::string cert_file, key_file, client_ca_file;
  std::optional<ClientAuth> client_auth;
  YAML::Mark cert_mark, key_mark, ca_mark, auth_mark, section_mark;
  int min_version = TLS1_2_VERSION;  // the toolkit's defaults
  int max_version = TLS1_3_VERSION;
  YAML::Mark version_mark;
  bool prefer_server_cipher_suites = true;
  std::vector<std::pair<const CipherName*, YAML::Mark>> ciphers;
  std::vector<std::string_view> curves;

  // The toolkit serves TLS as soon as any of these is set.
  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !client_ca_file.empty() || client_auth; }
};

TlsKeys read_tls_keys(const Reader& reader, const YAML::Node& section) {
  constexpr std::string_view kWhere = "tls_server_config";
  constexpr std::string_view kKnown =
      "cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version, cipher_suites, "
      "curve_preferences, prefer_server_cipher_suites";
  TlsKeys keys;
  keys.section_mark = section.Mark();
  for (const auto& [key, value] : reader.entries(section, kWhere)) {
    const std::string name = key.Scalar();
    if (name == "cert_file") {
      keys.cert_file = reader.file(value, name);
      keys.cert_mark = value.Mark();
    } else if (name == "key_file") {
      keys.key_file = reader.file(value, name);
      keys.key_mark = value.Mark();
    } else if (name == "client_ca_file") {
      keys.client_ca_file = reader.file(value, name);
      keys.ca_mark = value.Mark();
    } else if (name == "client_auth_type") {
      const std::string given = reader.string(value, name);
      keys.auth_mark = value.Mark();
      if (given.empty()) continue;
      const auto* found = std::ranges::find_if(kClientAuth, [&](const auto& a) { return a.first == given; });
      if (found == kClientAuth.end())
        reader.fail(value.Mark(), "client_auth_type \"" + given +
                                      "\" is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, "
                                      "VerifyClientCertIfGiven, RequireAndVerifyClientCert");
      keys.client_auth = found->second;
    } else if (name == "min_version" || name == "max_version") {
      const std::string given = reader.string(value, name);
      const auto* found = std::ranges::find_if(kVersions, [&](const auto& v) { return v.first == given; });
      if (found == kVersions.end()) {
        std::string message = name;
        message.append(" \"").append(given).append("\" is not one of TLS10, TLS11, TLS12, TLS13");
        reader.fail(value.Mark(), message);
      }
      (name == "min_version" ? keys.min_version : keys.max_version) = found->second;
      keys.version_mark = value.Mark();
    } else if (name == "cipher_suites") {
      for (const auto& item : reader.list(value, name)) {
        const auto* found = std::ranges::find_if(kCiphers, [&](const auto& c) { return c.toolkit == item.Scalar(); });
        if (found == kCiphers.end())
          reader.fail(item.Mark(), "unknown cipher suite \"" + item.Scalar() +
                                       "\" (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)");
        keys.ciphers.emplace_back(&*found, item.Mark());
      }
    } else if (name == "curve_preferences") {
      for (const auto& item : reader.list(value, name)) {
        const auto* found = std::ranges::find_if(kCurves, [&](const auto& c) { return c.first == item.Scalar(); });
        if (found == kCurves.end())
          reader.fail(item.Mark(), "unknown curve \"" + item.Scalar() + "\" (CurveP256, CurveP384, CurveP521, X25519)");
        keys.curves.push_back(found->second);
      }
    } else if (name == "prefer_server_cipher_suites") {
      keys.prefer_server_cipher_suites = reader.boolean(value, name);
    } else {
      fail_unknown(reader, key, kWhere, kKnown);
    }
  }
  return keys;
}

int accept_any_certificate(int /*preverified*/, X509_STORE_CTX* /*store*/) { return 1; }

std::shared_ptr<const ServerTls> build_tls(const Reader& reader, const TlsKeys& keys) {
  if (keys.cert_file.empty()) reader.fail(keys.section_mark, "tls_server_config: cert_file is missing");
  if (keys.key_file.empty()) reader.fail(keys.section_mark, "tls_server_config: key_file is missing");
  const ClientAuth auth = keys.client_auth.value_or(ClientAuth::none);
  if (!keys.client_ca_file.empty() && auth == ClientAuth::none)
    reader.fail(keys.ca_mark, "client_ca_file is set but client_auth_type does not ask for client certificates "
                              "(use VerifyClientCertIfGiven or RequireAndVerifyClientCert)");
  if (keys.client_ca_file.empty() && (auth == ClientAuth::verify_if_given || auth == ClientAuth::require_and_verify))
    reader.fail(keys.auth_mark, "client_auth_type " + std::string(client_auth_name(auth)) +
                                    " verifies client certificates, which needs client_ca_file");
  if (keys.min_version > keys.max_version)
    reader.fail(keys.version_mark, "min_version " + version_name(keys.min_version) + " is above max_version " +
                                       version_name(keys.max_version));

  auto tls = std::make_shared<ServerTls>();
  SSL_CTX* context = tls->context();
  if (!context) reader.fail(keys.section_mark, "cannot create a TLS context: " + openssl_errors());
  tls->client_auth = auth;
  tls->min_version = keys.min_version;
  tls->max_version = keys.max_version;
  tls->prefer_server_cipher_suites = keys.prefer_server_cipher_suites;
  // OpenSSL's words for a missing file are its system library's ("No such process" on
  // Windows): say it plainly first.
  const auto readable = [&](const std::string& file, const YAML::Mark& mark, std::string_view key) {
    if (!std::ifstream(file, std::ios::binary)) reader.fail(mark, "cannot read " + std::string(key) + " " + file);
  };
  readable(keys.cert_file, keys.cert_mark, "cert_file");
  readable(keys.key_file, keys.key_mark, "key_file");
  if (!keys.client_ca_file.empty()) readable(keys.client_ca_file, keys.ca_mark, "client_ca_file");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(context, keys.cert_file.c_str()) != 1)
    reader.fail(keys.cert_mark, "cannot load cert_file " + keys.cert_file + ": " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(context, keys.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate as it loads it: say so in words.
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      reader.fail(keys.key_mark, "key_file " + keys.key_file + " is not the key of cert_file " + keys.cert_file);
    reader.fail(keys.key_mark, "cannot load key_file " + keys.key_file + ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(context) != 1)
    reader.fail(keys.key_mark, "key_file " + keys.key_file + " is not the key of cert_file " + keys.cert_file + ": " +
                                   openssl_errors());
  if (!keys.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(context, keys.client_ca_file.c_str(), nullptr) != 1)
      reader.fail(keys.ca_mark, "cannot load client_ca_file " + keys.client_ca_file + ": " + openssl_errors());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(keys.client_ca_file.c_str());
    if (!names) reader.fail(keys.ca_mark, "client_ca_file " + keys.client_ca_file + " holds no certificate");
    SSL_CTX_set_client_CA_list(context, names);
  }
  SSL_CTX_set_min_proto_version(context, keys.min_version);
  SSL_CTX_set_max_proto_version(context, keys.max_version);
  for (const auto& [cipher, mark] : keys.ciphers) {
    std::string& list = cipher->tls13 ? tls->tls13_ciphers : tls->tls12_ciphers;
    list += (list.empty() ? "" : ":") + std::string(cipher->openssl);
  }
  if (!tls->tls12_ciphers.empty() && SSL_CTX_set_cipher_list(context, tls->tls12_ciphers.c_str()) != 1)
    reader.fail(keys.ciphers.front().second, "OpenSSL refuses cipher_suites " + tls->tls12_ciphers + ": " + openssl_errors());
  if (!tls->tls13_ciphers.empty() && SSL_CTX_set_ciphersuites(context, tls->tls13_ciphers.c_str()) != 1)
    reader.fail(keys.ciphers.front().second, "OpenSSL refuses cipher_suites " + tls->tls13_ciphers + ": " + openssl_errors());
  for (const auto curve : keys.curves) tls->groups += (tls->groups.empty() ? "" : ":") + std::string(curve);
  if (!tls->groups.empty() && SSL_CTX_set1_groups_list(context, tls->groups.c_str()) != 1)
    reader.fail(keys.section_mark, "OpenSSL refuses curve_preferences " + tls->groups + ": " + openssl_errors());
  if (keys.prefer_server_cipher_suites) SSL_CTX_set_options(context, SSL_OP_CIPHER_SERVER_PREFERENCE);
  switch (auth) {
    case ClientAuth::none:
      SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::request:
      SSL_CTX_set_verify(context, SSL_VERIFY_PEER, accept_any_certificate);
      break;
    case ClientAuth::require_any:
      SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_certificate);
      break;
    case ClientAuth::verify_if_given:
      SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::require_and_verify:
      SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  return tls;
}

void read_http_server_config(const Reader& reader, const YAML::Node& section, WebConfig& config) {
  constexpr std::string_view kWhere = "http_server_config";
  for (const auto& [key, value] : reader.entries(section, kWhere)) {
    const std::string name = key.Scalar();
    if (name == "http2") {
      config.http2 = reader.boolean(value, name);
    } else if (name == "headers") {
      for (const auto& [header, header_value] : reader.entries(value, "headers")) {
        const auto& allowed = allowed_headers();
        const std::string& header_name = header.Scalar();
        const auto* rule = std::ranges::find_if(allowed, [&](const auto& h) { return h.name == header_name; });
        if (rule == allowed.end())
          reader.fail(header.Mark(), "header \"" + header.Scalar() +
                                         "\" cannot be set (allowed: Strict-Transport-Security, X-Content-Type-Options, "
                                         "X-Frame-Options, X-XSS-Protection, Content-Security-Policy)");
        const std::string text = reader.string(header_value, header.Scalar());
        if (text.find_first_of("\r\n") != std::string::npos || text.find('\0') != std::string::npos)
          reader.fail(header_value.Mark(), "the value of " + header.Scalar() + " must be one line");
        if (!rule->values.empty() && std::ranges::find(rule->values, text) == rule->values.end()) {
          std::string choices;
          for (const auto v : rule->values) choices += (choices.empty() ? "\"" : ", \"") + std::string(v) + "\"";
          std::string message = header_name;
          message.append(" must be one of ").append(choices).append(", not \"").append(text).append("\"");
          reader.fail(header_value.Mark(), message);
        }
        config.headers.emplace_back(header.Scalar(), text);
      }
    } else {
      fail_unknown(reader, key, kWhere, "headers, http2");
    }
  }
}

void read_users(const Reader& reader, const YAML::Node& section, WebConfig& config) {
  for (const auto& [user, hash] : reader.entries(section, "basic_auth_users")) {
    const std::string name = user.Scalar();
    // A user name with a colon could never log in: basic auth splits user and password at the first.
    if (name.empty() || name.find(':') != std::string::npos)
      reader.fail(user.Mark(), "basic_auth_users: user name \"" + name + "\" must be non-empty and have no ':'");
    const std::string text = reader.string(hash, name);
    if (!is_bcrypt_hash(text))
      reader.fail(hash.Mark(), "basic_auth_users: the password of \"" + name +
                                   "\" must be a bcrypt hash ($2y$10$ followed by 53 characters; make one with "
                                   "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`), not a password in clear");
    config.users.emplace(name, text);
  }
}

bool is_bcrypt_base64(char c) {
  return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

std::string_view client_auth_name(ClientAuth auth) {
  for (const auto& [name, value] : kClientAuth)
    if (value == auth) return name;
  return "?";
}

ServerTls::ServerTls() : context_(SSL_CTX_new(TLS_server_method())) {}
ServerTls::~ServerTls() { SSL_CTX_free(context_); }

bool is_bcrypt_hash(std::string_view text) {
  constexpr std::size_t kLength = 60;  // "$2y$" + "10" + "$" + 53
  if (text.size() != kLength || text[0] != '$' || text[1] != '2' || text[3] != '$' || text[6] != '$') return false;
  if (text[2] != 'a' && text[2] != 'b' && text[2] != 'y') return false;
  if (text[4] < '0' || text[4] > '9' || text[5] < '0' || text[5] > '9') return false;
  const int cost = (text[4] - '0') * 10 + (text[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::ranges::all_of(text.substr(7), is_bcrypt_base64);
}

std::string WebConfig::summary() const {
  std::string out;
  if (tls) {
    out = "TLS " + version_name(tls->min_version) + "-" + version_name(tls->max_version) +
          ", client certificates: " + std::string(client_auth_name(tls->client_auth));
  } else {
    out = "plain HTTP";
  }
  if (users.empty())
    out += ", no authentication";
  else
    out += ", basic auth (" + std::to_string(users.size()) + (users.size() == 1 ? " user)" : " users)");
  if (!headers.empty()) out += ", " + std::to_string(headers.size()) + " extra header" + (headers.size() == 1 ? "" : "s");
  return out;
}

std::shared_ptr<const WebConfig> load_web_config(const std::string& path) {
  const Reader reader(path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot read the web config file");
  } catch (const YAML::Exception& e) {
    reader.fail(e.mark, e.msg);
  }
  auto config = std::make_shared<WebConfig>();
  config->path = path;
  for (const auto& [key, value] : reader.entries(root, "the web config")) {
    const std::string name = key.Scalar();
    if (name == "tls_server_config") {
      const TlsKeys keys = read_tls_keys(reader, value);
      if (keys.enabled()) config->tls = build_tls(reader, keys);
    } else if (name == "http_server_config") {
      read_http_server_config(reader, value, *config);
    } else if (name == "basic_auth_users") {
      read_users(reader, value, *config);
    } else {
      fail_unknown(reader, key, "the web config", "tls_server_config, http_server_config, basic_auth_users");
    }
  }
  return config;
}

}  // namespace connectivity

// The web config (exporters' YAML format), basic auth with bcrypt, and the HTTP server serving
// TLS with it: real handshakes over loopback with certificates made for the test.
#include "agent/config.h"
#include "exporters/basic_auth.h"
#include "exporters/http_server.h"
#include "exporters/web_config.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace connectivity {
namespace {

namespace asio = boost::asio;
using Users = std::map<std::string, std::string, std::less<>>;

// Made with crypt(3) for the passwords named; cost 4 keeps the tests fast.
constexpr const char* kAliceHash = "$2b$04$HAmEF8DlRqycSRckCxF7T.VVwI7e4M1BQS1bL0CzVy1nVN5dkJ1My";  // "s3cret"
constexpr const char* kBobHash = "$2b$04$UnEOB1V2IrtTAQfny0IXD.1V1ARwSMQqIAcqAaOKBuKOUlY.1omra";    // "other-pass"

class WebConfigFiles {
 public:
  WebConfigFiles() : dir_(testing::make_temp_dir("web-config")) {}
  ~WebConfigFiles() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  WebConfigFiles(const WebConfigFiles&) = delete;
  WebConfigFiles& operator=(const WebConfigFiles&) = delete;

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

std::string error_of(const std::string& path) {
  try {
    load_web_config(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(WebConfig, AnEmptyFileServesPlainHttpWithoutAuthentication) {
  WebConfigFiles files;
  const auto config = load_web_config(files.write("web.yml", "# nothing set yet\n"));
  EXPECT_EQ(config->tls, nullptr);
  EXPECT_TRUE(config->users.empty());
  EXPECT_EQ(config->summary(), "plain HTTP, no authentication");
}

TEST(WebConfig, EveryToolkitKeyIsRead) {
  testing::TestPki pki;
  const auto server = pki.issue("server");
  WebConfigFiles files;
  const auto config = load_web_config(files.write("web.yml", "tls_server_config:\n"
                                                             "  cert_file: " + server.cert + "\n"
                                                             "  key_file: " + server.key + "\n"
                                                             "  client_auth_type: VerifyClientCertIfGiven\n"
                                                             "  client_ca_file: " + pki.ca_file() + "\n"
                                                             "  min_version: TLS12\n"
                                                             "  max_version: TLS13\n"
                                                             "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384]\n"
                                                             "  curve_preferences: [X25519, CurveP256]\n"
                                                             "  prefer_server_cipher_suites: false\n"
                                                             "http_server_config:\n"
                                                             "  http2: false\n"
                                                             "  headers:\n"
                                                             "    X-Frame-Options: deny\n"
                                                             "    Strict-Transport-Security: max-age=31536000\n"
                                                             "basic_auth_users:\n"
                                                             "  alice: " + std::string(kAliceHash) + "\n"
                                                             "  bob: '" + std::string(kBobHash) + "'\n"));
  ASSERT_NE(config->tls, nullptr);
  EXPECT_EQ(config->tls->client_auth, ClientAuth::verify_if_given);
  EXPECT_EQ(config->tls->tls12_ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(config->tls->tls13_ciphers, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(config->tls->groups, "X25519:P-256");
  EXPECT_FALSE(config->tls->prefer_server_cipher_suites);
  EXPECT_FALSE(config->http2);
  ASSERT_EQ(config->headers.size(), 2u);
  EXPECT_EQ(config->headers[0], (std::pair<std::string, std::string>{"X-Frame-Options", "deny"}));
  EXPECT_EQ(config->users.at("bob"), kBobHash);
  EXPECT_EQ(config->summary(),
            "TLS TLS12-TLS13, client certificates: VerifyClientCertIfGiven, basic auth (2 users), 2 extra headers");
}

TEST(WebConfig, RelativeFilesAreFoundBesideTheWebConfig) {
  testing::TestPki pki;
  pki.issue("server");
  const auto config = load_web_config([&] {
    std::ofstream(pki.dir() + "/web.yml") << "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    return pki.dir() + "/web.yml";
  }());
  EXPECT_NE(config->tls, nullptr);
}

TEST(WebConfig, MistakesNameTheFileLineAndColumn) {
  testing::TestPki pki;
  const auto server = pki.issue("server");
  const auto other = pki.issue("other");
  WebConfigFiles files;
  const std::string tls = "tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + server.key + "\n";
  struct Case {
    std::string text;
    std::string error;  // after "<path>:"
  };
  const std::vector<Case> cases{
      {"tls_config:\n  cert_file: x\n", "1:1: the web config: unknown key \"tls_config\""},
      {"tls_server_config:\n  certfile: x\n", "2:3: tls_server_config: unknown key \"certfile\""},
      {"tls_server_config:\n  client_allowed_sans: [a]\n",
       "2:3: tls_server_config: \"client_allowed_sans\" is not supported by connectivity-agent"},
      {tls + "  client_auth_type: RequireClientCertPlease\n", "4:21: client_auth_type \"RequireClientCertPlease\" is not one of"},
      {tls + "  min_version: TLS14\n", "4:16: min_version \"TLS14\" is not one of TLS10, TLS11, TLS12, TLS13"},
      {tls + "  min_version: TLS13\n  max_version: TLS12\n", "5:16: min_version TLS13 is above max_version TLS12"},
      {tls + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", "4:19: unknown cipher suite \"TLS_RSA_WITH_RC4_128_SHA\""},
      {tls + "  curve_preferences: [P-256]\n", "4:23: unknown curve \"P-256\""},
      {tls + "  prefer_server_cipher_suites: maybe\n", "4:32: prefer_server_cipher_suites must be true or false"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n", "2:3: tls_server_config: key_file is missing"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + other.key + "\n",
       "3:13: key_file " + other.key + " is not the key of cert_file " + server.cert},
      {"tls_server_config:\n  cert_file: /nonexistent/x.crt\n  key_file: " + server.key + "\n",
       "2:14: cannot read cert_file "},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + files.dir() + "/web.yml\n",
       "3:13: cannot load key_file "},  // a file, but no key in it
      {tls + "  client_ca_file: " + pki.ca_file() + "\n",
       "4:19: client_ca_file is set but client_auth_type does not ask for client certificates"},
      {tls + "  client_auth_type: RequireAndVerifyClientCert\n",
       "4:21: client_auth_type RequireAndVerifyClientCert verifies client certificates, which needs client_ca_file"},
      {"basic_auth_users:\n  alice: s3cret\n", "2:10: basic_auth_users: the password of \"alice\" must be a bcrypt hash"},
      {"basic_auth_users:\n  'a:b': " + std::string(kAliceHash) + "\n", "2:3: basic_auth_users: user name \"a:b\""},
      {"basic_auth_users:\n  alice: " + std::string(kAliceHash) + "\n  alice: " + std::string(kBobHash) + "\n",
       "3:3: basic_auth_users: key \"alice\" is given twice"},
      {"http_server_config:\n  headers:\n    Server: nginx\n", "3:5: header \"Server\" cannot be set"},
      {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
       "3:22: X-Frame-Options must be one of \"deny\", \"sameorigin\", not \"allow\""},
      {"http_server_config:\n  http3: true\n", "2:3: http_server_config: unknown key \"http3\""},
      {"tls_server_config: [a, b]\n", "1:20: tls_server_config must be a mapping of keys to values"},
      {"basic_auth_users:\n  alice: [\n", "3:1: "},  // YAML syntax
      {"- just\n- a list\n", "1:1: the web config must be a mapping of keys to values"},
  };
  for (const auto& c : cases) {
    const std::string path = files.write("web.yml", c.text);
    const std::string error = error_of(path);
    EXPECT_EQ(error.rfind(path + ":" + c.error, 0), 0u) << "for:\n" << c.text << "\ngot: " << error;
  }
  EXPECT_EQ(error_of(files.dir() + "/missing.yml"), files.dir() + "/missing.yml: cannot read the web config file");
}

TEST(WebConfig, BcryptHashesAreRecognised) {
  EXPECT_TRUE(is_bcrypt_hash(kAliceHash));
  EXPECT_TRUE(is_bcrypt_hash("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"));
  EXPECT_TRUE(is_bcrypt_hash("$2a$31$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"));
  EXPECT_FALSE(is_bcrypt_hash("$2y$03$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"));  // cost too low
  EXPECT_FALSE(is_bcrypt_hash("$2x$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"));  // not a bcrypt flavour crypt_r checks
  EXPECT_FALSE(is_bcrypt_hash("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeS"));   // short
  EXPECT_FALSE(is_bcrypt_hash("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeS!"));  // not bcrypt's base64
  EXPECT_FALSE(is_bcrypt_hash("$6$salt$hash"));
  EXPECT_FALSE(is_bcrypt_hash("s3cret"));
}

TEST(BasicAuth, ARightPasswordIsCheckedOnceThenRemembered) {
  BasicAuthenticator auth(Users{{"alice", kAliceHash}, {"bob", kBobHash}});
  EXPECT_TRUE(auth.allows("alice", "s3cret"));
  EXPECT_EQ(auth.bcrypt_runs(), 1u);
  EXPECT_TRUE(auth.allows("alice", "s3cret"));
  EXPECT_TRUE(auth.allows("alice", "s3cret"));
  EXPECT_EQ(auth.bcrypt_runs(), 1u);
  EXPECT_TRUE(auth.allows("bob", "other-pass"));
  EXPECT_EQ(auth.bcrypt_runs(), 2u);
}

TEST(BasicAuth, WrongPasswordsAndUnknownUsersEachCostABcryptRun) {
  BasicAuthenticator auth(Users{{"alice", kAliceHash}, {"bob", kBobHash}});
  EXPECT_FALSE(auth.allows("alice", "S3cret"));
  EXPECT_FALSE(auth.allows("alice", "S3cret"));  // a failure is not remembered
  EXPECT_EQ(auth.bcrypt_runs(), 2u);
  EXPECT_FALSE(auth.allows("mallory", "s3cret"));
  EXPECT_EQ(auth.bcrypt_runs(), 3u);  // an unknown user is hashed like a known one
  EXPECT_FALSE(auth.allows("bob", "s3cret"));    // alice's password is not bob's
  EXPECT_FALSE(auth.allows("alice", "other-pass"));
  EXPECT_FALSE(auth.allows("alice", ""));
  EXPECT_FALSE(auth.allows("alice", std::string("s3cret\0x", 8)));  // cut short by a NUL, it would match
  EXPECT_FALSE(auth.allows("", ""));
  EXPECT_TRUE(auth.allows("alice", "s3cret"));
}

TEST(BasicAuth, RememberedSuccessesAreBounded) {
  BasicAuthenticator auth(Users{{"alice", kAliceHash}});
  ASSERT_TRUE(auth.allows("alice", "s3cret"));
  // Only the right password succeeds, so only one entry can ever be remembered per user and
  // hash: the bound is what a flood of failures cannot grow past.
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(auth.allows("alice", "guess" + std::to_string(i)));
  const auto runs = auth.bcrypt_runs();
  EXPECT_TRUE(auth.allows("alice", "s3cret"));
  EXPECT_EQ(auth.bcrypt_runs(), runs);
}

TEST(BasicAuth, AuthorizationHeadersAreParsed) {
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(parse_basic_authorization("Basic YWxpY2U6czNjcmV0"), (Pair{"alice", "s3cret"}));
  EXPECT_EQ(parse_basic_authorization("basic YWxpY2U6czNjcmV0"), (Pair{"alice", "s3cret"}));
  EXPECT_EQ(parse_basic_authorization("Basic YTpiOmM="), (Pair{"a", "b:c"}));  // the password may hold ':'
  EXPECT_EQ(parse_basic_authorization("Basic YTo="), (Pair{"a", ""}));
  EXPECT_EQ(parse_basic_authorization("Bearer YWxpY2U6czNjcmV0"), std::nullopt);
  EXPECT_EQ(parse_basic_authorization("Basic YWxpY2U"), std::nullopt);     // not base64 blocks
  EXPECT_EQ(parse_basic_authorization("Basic YWxp*2U6"), std::nullopt);    // not base64
  EXPECT_EQ(parse_basic_authorization("Basic YWxpY2U="), std::nullopt);    // no ':'
  EXPECT_EQ(parse_basic_authorization("Basic "), std::nullopt);
  EXPECT_EQ(parse_basic_authorization(""), std::nullopt);
}

// A TLS client over loopback: one request, the reply, and what the handshake agreed.
struct ClientSide {
  std::string ca{};           // verify the server with it; empty: do not verify
  std::string cert{};         // a client certificate, if any
  std::string key{};
  int max_version = 0;        // 0: OpenSSL's default
  int min_version = 0;
  std::string user{};         // basic auth, if set
  std::string password{};
  std::string path = "/metrics";
};

struct TlsReply {
  int status = 0;  // 0: no HTTP reply (handshake refused, connection closed)
  std::string head;
  std::string body;
  int version = 0;
  std::string server_serial_hex;
};

std::string base64(const std::string& text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

TlsReply https_request(int port, const ClientSide& client) {
  asio::io_context io;
  asio::ssl::context context(asio::ssl::context::tls_client);
  if (!client.ca.empty()) {
    context.load_verify_file(client.ca);
    context.set_verify_mode(asio::ssl::verify_peer);
  } else {
    context.set_verify_mode(asio::ssl::verify_none);
  }
  if (!client.cert.empty()) {
    context.use_certificate_chain_file(client.cert);
    context.use_private_key_file(client.key, asio::ssl::context::pem);
  }
  if (client.max_version) SSL_CTX_set_max_proto_version(context.native_handle(), client.max_version);
  if (client.min_version) SSL_CTX_set_min_proto_version(context.native_handle(), client.min_version);
  asio::ssl::stream<asio::ip::tcp::socket> stream(io, context);
  TlsReply reply;
  boost::system::error_code error;
  stream.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, error);
  if (error) return reply;
  stream.handshake(asio::ssl::stream_base::client, error);
  if (error) return reply;
  reply.version = SSL_version(stream.native_handle());
  if (X509* cert = SSL_get1_peer_certificate(stream.native_handle())) {
    if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
      char* hex = BN_bn2hex(serial);
      reply.server_serial_hex = hex;
      for (auto& c : reply.server_serial_hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      OPENSSL_free(hex);
      BN_free(serial);
    }
    X509_free(cert);
  }
  std::string request = "GET " + client.path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  if (!client.user.empty()) request += "Authorization: Basic " + base64(client.user + ":" + client.password) + "\r\n";
  request += "\r\n";
  asio::write(stream, asio::buffer(request), error);
  if (error) return reply;
  std::string raw;
  asio::read(stream, asio::dynamic_buffer(raw), error);  // until the server closes
  const auto end_of_head = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end_of_head == std::string::npos) return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.head = raw.substr(0, end_of_head);
  reply.body = raw.substr(end_of_head + 4);
  return reply;
}

HttpRoutes metrics_routes() {
  return HttpRoutes{.metrics = [] { return std::make_shared<const std::string>("up_here 1\n"); },
                    .reload = [] { return std::optional<std::string>(); },
                    .lifecycle = false,
                    .ready = [] { return true; }};
}

class TlsServer : public ::testing::Test {
 protected:
  std::shared_ptr<const WebConfig> web(const std::string& extra, const testing::CertFiles& server) {
    return load_web_config(files_.write("web.yml", "tls_server_config:\n  cert_file: " + server.cert +
                                                       "\n  key_file: " + server.key + "\n" + extra));
  }
  std::string serial_of(const testing::CertFiles& cert) {
    std::string serial = cert.serial_hex;
    // BN_bn2hex pads to whole bytes; the PKI writes no leading zero.
    return serial.size() % 2 ? "0" + serial : serial;
  }
  testing::TestPki pki_;
  testing::CertFiles server_ = pki_.issue("server");
  WebConfigFiles files_;
};

TEST_F(TlsServer, ServesTlsOneTwoAndOneThreeButNotOneOne) {
  HttpServer http("127.0.0.1:0", metrics_routes(), web("", server_));
  const int port = http.ports().at(0);
  ASSERT_TRUE(http.serves_tls());
  const auto newest = https_request(port, {.ca = pki_.ca_file()});
  EXPECT_EQ(newest.status, 200);
  EXPECT_EQ(newest.body, "up_here 1\n");
  EXPECT_EQ(newest.version, TLS1_3_VERSION);
  const auto tls12 = https_request(port, {.ca = pki_.ca_file(), .max_version = TLS1_2_VERSION});
  EXPECT_EQ(tls12.status, 200);
  EXPECT_EQ(tls12.version, TLS1_2_VERSION);
  // The toolkit's default minimum is TLS 1.2: an old client is refused in the handshake.
  const auto tls11 = https_request(port, {.max_version = TLS1_1_VERSION});
  EXPECT_EQ(tls11.status, 0);
  EXPECT_EQ(tls11.version, 0);
}

TEST_F(TlsServer, VersionsAndClientCertificatesFollowTheConfig) {
  const auto client = pki_.issue("client", {.common_name = "prometheus", .client = true});
  testing::TestPki stranger_pki;
  const auto stranger = stranger_pki.issue("stranger", {.common_name = "prometheus", .client = true});
  HttpServer http("127.0.0.1:0", metrics_routes(),
                  web("  max_version: TLS12\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                          pki_.ca_file() + "\n",
                      server_));
  const int port = http.ports().at(0);
  const auto verified = https_request(port, {.ca = pki_.ca_file(), .cert = client.cert, .key = client.key});
  EXPECT_EQ(verified.status, 200);
  EXPECT_EQ(verified.version, TLS1_2_VERSION);  // max_version applies per connection
  EXPECT_EQ(https_request(port, {.ca = pki_.ca_file()}).status, 0);  // no certificate
  EXPECT_EQ(https_request(port, {.ca = pki_.ca_file(), .cert = stranger.cert, .key = stranger.key}).status, 0);
}

TEST_F(TlsServer, BasicAuthGuardsAllButHealthAndReadiness) {
  HttpServer http("127.0.0.1:0", metrics_routes(),
                  web("basic_auth_users:\n  alice: " + std::string(kAliceHash) +
                          "\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
                      server_));
  const int port = http.ports().at(0);
  const auto anonymous = https_request(port, {.ca = pki_.ca_file()});
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_NE(anonymous.head.find("\r\nWWW-Authenticate: Basic realm=\"connectivity-agent\""), std::string::npos) << anonymous.head;
  EXPECT_NE(anonymous.head.find("\r\nX-Content-Type-Options: nosniff"), std::string::npos) << anonymous.head;
  EXPECT_EQ(anonymous.body.find("up_here"), std::string::npos);
  EXPECT_EQ(https_request(port, {.ca = pki_.ca_file(), .user = "alice", .password = "wrong"}).status, 401);
  EXPECT_EQ(https_request(port, {.ca = pki_.ca_file(), .user = "mallory", .password = "s3cret"}).status, 401);
  const auto alice = https_request(port, {.ca = pki_.ca_file(), .user = "alice", .password = "s3cret"});
  EXPECT_EQ(alice.status, 200);
  EXPECT_EQ(alice.body, "up_here 1\n");
  EXPECT_NE(alice.head.find("\r\nX-Content-Type-Options: nosniff"), std::string::npos);
  for (const char* path : {"/", "/-/reload", "/nonexistent"})
    EXPECT_EQ(https_request(port, {.ca = pki_.ca_file(), .path = path}).status, 401) << path;
  for (const char* path : {"/-/healthy", "/-/ready"})
    EXPECT_EQ(https_request(port, {.ca = pki_.ca_file(), .path = path}).status, 200) << path;
}

TEST_F(TlsServer, AReloadChangesTheCertificateAndUsersOfTheNextConnection) {
  HttpServer http("127.0.0.1:0", metrics_routes(), web("", server_));
  const int port = http.ports().at(0);
  EXPECT_EQ(https_request(port, {.ca = pki_.ca_file()}).server_serial_hex, serial_of(server_));
  const auto renewed = pki_.issue("renewed");
  const auto next = web("basic_auth_users:\n  alice: " + std::string(kAliceHash) + "\n", renewed);
  ASSERT_EQ(http.web_config_problem(next), std::nullopt);
  http.set_web_config(next);
  const auto after = https_request(port, {.ca = pki_.ca_file(), .user = "alice", .password = "s3cret"});
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.server_serial_hex, serial_of(renewed));
  EXPECT_EQ(https_request(port, {.ca = pki_.ca_file()}).status, 401);
  // TLS cannot be turned off (or on) without making the listening sockets again.
  const auto plain = load_web_config(files_.write("plain.yml", "basic_auth_users: {}\n"));
  EXPECT_NE(http.web_config_problem(plain), std::nullopt);
  EXPECT_NE(http.web_config_problem(nullptr), std::nullopt);
}

TEST_F(TlsServer, ReloadsWhileServingLoseNoRequest) {
  // Handshakes and requests on four threads while the web config is swapped under them: each
  // connection gets one whole config (old or new), never a mix, and none fails.
  const auto renewed = pki_.issue("renewed");
  const std::string users = "basic_auth_users:\n  alice: " + std::string(kAliceHash) + "\n";
  const std::vector<std::shared_ptr<const WebConfig>> configs{web(users, server_), web(users, renewed)};
  HttpServer http("127.0.0.1:0", metrics_routes(), configs[0]);
  const int port = http.ports().at(0);
  std::atomic<int> served{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c)
    clients.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        const auto reply = https_request(port, {.ca = pki_.ca_file(), .user = "alice", .password = "s3cret"});
        ++(reply.status == 200 && reply.body == "up_here 1\n" ? served : failed);
      }
    });
  for (int swap = 0; swap < 30; ++swap) {
    http.set_web_config(configs[static_cast<std::size_t>(swap % 2)]);
    std::this_thread::yield();
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(served.load(), 60);
  EXPECT_EQ(failed.load(), 0);
}

TEST(PlainServer, BasicAuthWithoutTls) {
  WebConfigFiles files;
  HttpServer http("127.0.0.1:0", metrics_routes(),
                  load_web_config(files.write("web.yml", "basic_auth_users:\n  alice: " + std::string(kAliceHash) + "\n")));
  EXPECT_FALSE(http.serves_tls());
  const int port = http.ports().at(0);
  asio::io_context io;
  const auto ask = [&](const std::string& authorization) {
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    asio::write(socket, asio::buffer("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + authorization + "\r\n"));
    std::string raw;
    boost::system::error_code error;
    asio::read(socket, asio::dynamic_buffer(raw), error);
    return raw.substr(0, 12);
  };
  EXPECT_EQ(ask(""), "HTTP/1.1 401");
  EXPECT_EQ(ask("Authorization: Basic " + base64("alice:s3cret") + "\r\n"), "HTTP/1.1 200");
  EXPECT_EQ(ask("Authorization: Basic " + base64("alice:nope") + "\r\n"), "HTTP/1.1 401");
  EXPECT_EQ(ask("Authorization: Basic !!!!\r\n"), "HTTP/1.1 401");
  const auto plain_again = load_web_config(files.write("none.yml", ""));
  ASSERT_EQ(http.web_config_problem(plain_again), std::nullopt);
  http.set_web_config(plain_again);
  EXPECT_EQ(ask(""), "HTTP/1.1 200");
}

TEST(PlainServer, ListensOnEveryAddressGiven) {
  HttpServer http(std::vector<std::string>{"127.0.0.1:0", "127.0.0.1:0"}, metrics_routes());
  const auto ports = http.ports();
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_NE(ports[0], ports[1]);
}

}  // namespace
}  // namespace connectivity

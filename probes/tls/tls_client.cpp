#include "probes/tls/tls_client.h"

#include "probes/config_table.h"
#include "probes/connect.h"
#include "probes/tls/system_roots.h"
#include "probes/utc_time.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <tuple>

namespace connectivity {

namespace {

namespace ssl = asio::ssl;

// A server may present a long chain; series per element are capped so it cannot grow the
// scrape, and label values are capped so a hostile subject cannot either.
constexpr int kMaxChainCertificates = 8;
constexpr std::size_t kMaxLabelValue = 256;

constexpr std::string_view kNotAfter = "connectivity_tls_cert_not_after_timestamp_seconds";
constexpr std::string_view kNotAfterHelp =
    "Expiry (notAfter) of each certificate the server presented, by position in the chain (0 = leaf).";
constexpr std::string_view kEarliest = "connectivity_tls_earliest_cert_not_after_timestamp_seconds";
constexpr std::string_view kEarliestHelp = "Earliest expiry (notAfter) over the chain the server presented.";
constexpr std::string_view kLeafInfo = "connectivity_tls_leaf_cert_info";
constexpr std::string_view kLeafInfoHelp =
    "The server's leaf certificate: a changed fingerprint means a new certificate or a middlebox swapping it.";
constexpr std::string_view kVersionInfo = "connectivity_tls_version_info";
constexpr std::string_view kVersionInfoHelp = "TLS version negotiated on the check's last handshake.";
constexpr std::string_view kCipherInfo = "connectivity_tls_cipher_info";
constexpr std::string_view kCipherInfoHelp = "Cipher suite (IANA name) negotiated on the check's last handshake.";
constexpr std::string_view kVerifyResult = "connectivity_tls_verify_result";
constexpr std::string_view kVerifyResultHelp =
    "Certificate verification of the last handshake: 1 for the reason it gave (ok when valid), 0 for the others.";

// The queued OpenSSL errors, worded as Asio words them ("wrong version number (SSL routines)"),
// so config errors and both handshake paths read alike.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    const char* why = ERR_reason_error_string(code);
    const char* library = ERR_lib_error_string(code);
    out += (out.empty() ? "" : "; ") + std::string(why ? why : "unknown error") + (library ? " (" + std::string(library) + ")" : "");
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string capped(std::string value) {
  if (value.size() > kMaxLabelValue) value.resize(kMaxLabelValue);
  return value;
}

// RFC 2253 form with non-ASCII and control characters escaped, so the label stays printable.
std::string name_text(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(std::max(size, 0L)));
  BIO_free(bio);
  return capped(std::move(out));
}

std::string serial_text(const X509* cert) {
  BIGNUM* number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (!number) return {};
  char* hex = BN_bn2hex(number);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(number);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto first = out.find_first_not_of('0');
  return capped(first == std::string::npos ? "0" : out.substr(first));
}

std::string sha256_fingerprint(const X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (X509_digest(cert, EVP_sha256(), digest.data(), &size) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

double unix_seconds(const ASN1_TIME* time) {
  std::tm parts{};
  if (!time || ASN1_TIME_to_tm(time, &parts) != 1) return 0;
  return static_cast<double>(utc_seconds(parts));
}

// The chain as presented (not as verified: a middlebox's substitute chain is what we report).
void add_chain_facts(SSL* ssl, std::vector<Fact>& facts) {
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  if (!chain || sk_X509_num(chain) == 0) return;
  double earliest = std::numeric_limits<double>::infinity();
  const int count = std::min(sk_X509_num(chain), kMaxChainCertificates);
  for (int i = 0; i < count; ++i) {
    const X509* cert = sk_X509_value(chain, i);
    const double not_after = unix_seconds(X509_get0_notAfter(cert));
    earliest = std::min(earliest, not_after);
    facts.push_back({kNotAfter, kNotAfterHelp,
                     {{"issuer", name_text(X509_get_issuer_name(cert))},
                      {"position", std::to_string(i)},
                      {"serial", serial_text(cert)},
                      {"subject", name_text(X509_get_subject_name(cert))}},
                     not_after});
  }
  facts.push_back({kEarliest, kEarliestHelp, {}, earliest});
  const X509* leaf = sk_X509_value(chain, 0);
  facts.push_back({kLeafInfo, kLeafInfoHelp,
                   {{"fingerprint_sha256", sha256_fingerprint(leaf)},
                    {"issuer", name_text(X509_get_issuer_name(leaf))},
                    {"serial", serial_text(leaf)},
                    {"subject", name_text(X509_get_subject_name(leaf))}}});
}

std::string_view verify_reason_of(int x509_error) {
  switch (x509_error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return verify_reason::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return verify_reason::not_yet_valid;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:  // the leaf signed itself
      return verify_reason::self_signed;
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:  // a root sent along that we do not trust
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return verify_reason::unknown_ca;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return verify_reason::hostname_mismatch;
    default:
      return verify_reason::invalid;
  }
}

std::size_t severity(std::string_view verify_reason) {
  return static_cast<std::size_t>(std::find(std::begin(kVerifyReasons), std::end(kVerifyReasons), verify_reason) -
                                  std::begin(kVerifyReasons));
}

// Verification problems met during one handshake: the callback records them and lets the
// handshake finish, so that an invalid certificate is still read and reported.
struct VerifyFindings {
  bool chain_checked = true;
  std::string_view worst = verify_reason::ok;
  int worst_error = X509_V_OK;

  void add(int x509_error) {
    const std::string_view found = verify_reason_of(x509_error);
    if (!chain_checked && found != verify_reason::hostname_mismatch) return;
    if (severity(found) < severity(worst)) {
      worst = found;
      worst_error = x509_error;
    }
  }
};

// What the server sent that the handshake's outcome alone does not tell.
struct ServerMessages {
  bool certificate_requested = false;
  int fatal_alert = -1;  // the description of a fatal alert received, if any
};

void observe_server_messages(int write_p, int /*version*/, int content_type, const void* buf, std::size_t len,
                             SSL* /*ssl*/, void* arg) {
  auto& seen = *static_cast<ServerMessages*>(arg);
  const auto* bytes = static_cast<const unsigned char*>(buf);
  if (write_p != 0 || len == 0) return;
  if (content_type == SSL3_RT_HANDSHAKE && bytes[0] == SSL3_MT_CERTIFICATE_REQUEST) seen.certificate_requested = true;
  if (content_type == SSL3_RT_ALERT && len >= 2 && bytes[0] == SSL3_AL_FATAL) seen.fatal_alert = bytes[1];
}

std::string alert_name(int description) {
  // TLS 1.3's certificate_required, which OpenSSL 3.0 has no name for.
  constexpr int kCertificateRequired = 116;
  return description == kCertificateRequired ? "certificate required" : SSL_alert_desc_string_long(description);
}

// Watches the server's messages for as long as it lives; `seen` must outlive it.
class MessageWatch {
 public:
  MessageWatch(SSL* ssl, ServerMessages& seen) : ssl_(ssl) {
    SSL_set_msg_callback(ssl_, observe_server_messages);
    SSL_set_msg_callback_arg(ssl_, &seen);
  }
  ~MessageWatch() {
    SSL_set_msg_callback(ssl_, nullptr);
    SSL_set_msg_callback_arg(ssl_, nullptr);
  }
  MessageWatch(const MessageWatch&) = delete;
  MessageWatch& operator=(const MessageWatch&) = delete;

 private:
  SSL* ssl_;
};

// During the handshake even a plain end of stream means the peer does not do TLS.
std::string_view classify_tls_error(const boost::system::error_code& error) {
  return error == asio::error::eof ? reason::tls_error : classify_tls_stream_error(error);
}

int protocol_version(const std::string& text) {
  if (text == "1.0") return TLS1_VERSION;
  if (text == "1.1") return TLS1_1_VERSION;
  if (text == "1.2") return TLS1_2_VERSION;
  return TLS1_3_VERSION;
}

std::string normalised_pin(ConfigTable& options) {
  auto text = options.string("pin_sha256");
  if (!text) return {};
  std::string hex;
  for (unsigned char c : *text)
    if (c != ':') hex += static_cast<char>(std::tolower(c));
  if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    options.fail("pin_sha256", "must be a SHA-256 fingerprint: 64 hex digits, colons allowed");
  return hex;
}

}  // namespace

std::span<const std::string_view> TlsClient::option_keys() {
  static constexpr std::string_view keys[] = {"server_name", "ca_file",    "verify",      "verify_hostname", "min_version",
                                              "max_version", "client_cert", "client_key", "pin_sha256"};
  return keys;
}

std::shared_ptr<const TlsClient> TlsClient::from_options(ConfigTable& options) {
  std::shared_ptr<TlsClient> client(new TlsClient);
  client->context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX* context = client->context_->native_handle();
  ERR_clear_error();

  client->server_name_ = options.string("server_name").value_or("");
  client->verify_chain_ = options.boolean("verify").value_or(true);
  client->verify_hostname_ = options.boolean("verify_hostname").value_or(true);

  if (auto ca_file = options.file_path("ca_file")) {
    if (SSL_CTX_load_verify_locations(context, ca_file->c_str(), nullptr) != 1)
      options.fail("ca_file", "cannot load CA certificates from \"" + *ca_file + "\": " + openssl_errors());
  } else if (!trust_system_roots(context)) {
    options.fail("ca_file", "cannot load the system CA store: " + openssl_errors());
  }

  const auto min_version = options.choice("min_version", {"1.0", "1.1", "1.2", "1.3"});
  const auto max_version = options.choice("max_version", {"1.0", "1.1", "1.2", "1.3"});
  if (min_version) {
    // Debian's OpenSSL refuses TLS 1.0/1.1 at its default security level; a check that asks
    // for them is watching a legacy server on purpose.
    if (protocol_version(*min_version) < TLS1_2_VERSION) SSL_CTX_set_security_level(context, 0);
    SSL_CTX_set_min_proto_version(context, protocol_version(*min_version));
  }
  if (max_version) {
    if (min_version && protocol_version(*max_version) < protocol_version(*min_version))
      options.fail("max_version", "is lower than min_version");
    SSL_CTX_set_max_proto_version(context, protocol_version(*max_version));
  }

  const auto client_cert = options.file_path("client_cert");
  const auto client_key = options.file_path("client_key");
  if (client_cert.has_value() != client_key.has_value())
    options.fail(client_cert ? "client_cert" : "client_key", "client_cert and client_key go together");
  if (client_cert) {
    if (SSL_CTX_use_certificate_chain_file(context, client_cert->c_str()) != 1)
      options.fail("client_cert", "cannot load \"" + *client_cert + "\": " + openssl_errors());
    if (SSL_CTX_use_PrivateKey_file(context, client_key->c_str(), SSL_FILETYPE_PEM) != 1)
      options.fail("client_key", "cannot load \"" + *client_key + "\": " + openssl_errors());
    if (SSL_CTX_check_private_key(context) != 1)
      options.fail("client_key", "does not match client_cert: " + openssl_errors());
  }
  client->pin_sha256_ = normalised_pin(options);
  return client;
}

// Everything one handshake sets on its SSL and observes there. It lives in the handshake's
// coroutine frame; the callbacks point into it, so it unhooks them before it goes.
class TlsClient::Watch {
 public:
  Watch(SSL* ssl, const std::string& name, bool verify_chain, bool verify_hostname) : ssl_(ssl), messages_(ssl, seen) {
    boost::system::error_code not_an_address;
    asio::ip::make_address(name, not_an_address);
    const bool is_address = !not_an_address;
    if (!is_address) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI never carries an address
    if (verify_hostname) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (is_address) {
        X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      }
    }
    findings.chain_checked = verify_chain;
    SSL_set_ex_data(ssl, findings_index(), &findings);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, record_verify_problem);
  }
  ~Watch() {
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    SSL_set_ex_data(ssl_, findings_index(), nullptr);
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  VerifyFindings findings;
  ServerMessages seen;

 private:
  static int findings_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }
  // Records what is wrong and lets the handshake go on, so an invalid certificate is still read.
  static int record_verify_problem(int preverified, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* findings = ssl ? static_cast<VerifyFindings*>(SSL_get_ex_data(ssl, findings_index())) : nullptr;
    if (preverified == 0 && findings) findings->add(X509_STORE_CTX_get_error(store));
    return 1;
  }

  SSL* ssl_;
  MessageWatch messages_;  // after `seen`, which it points into
};

TlsHandshake TlsClient::conclude(SSL* ssl, const Watch& watch, std::optional<ProbeResult> failure,
                                 const std::string& name) const {
  TlsHandshake out;
  out.client_certificate_requested = watch.seen.certificate_requested;
  add_chain_facts(ssl, out.facts);
  if (failure) {
    out.failure = std::move(failure);
    return out;
  }
  out.facts.push_back({kVersionInfo, kVersionInfoHelp, {{"version", SSL_get_version(ssl)}}});
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  const char* cipher_name = cipher ? SSL_CIPHER_standard_name(cipher) : nullptr;
  out.facts.push_back({kCipherInfo, kCipherInfoHelp, {{"cipher", cipher_name ? cipher_name : "unknown"}}});

  std::string_view worst = watch.findings.worst;
  std::string why = watch.findings.worst_error != X509_V_OK ? X509_verify_cert_error_string(watch.findings.worst_error) : "";
  if (!pin_sha256_.empty() && worst == verify_reason::ok) {
    X509* leaf = SSL_get1_peer_certificate(ssl);
    const std::string presented = leaf ? sha256_fingerprint(leaf) : "";
    X509_free(leaf);
    if (presented != pin_sha256_) {
      worst = verify_reason::pin_mismatch;
      why = "leaf fingerprint " + presented + " is not the pinned " + pin_sha256_;
    }
  }
  for (auto verify_reason : kVerifyReasons)
    out.facts.push_back({kVerifyResult, kVerifyResultHelp, {{"reason", std::string(verify_reason)}},
                         verify_reason == worst ? 1.0 : 0.0});
  if (worst != verify_reason::ok)
    out.failure = ProbeResult{reason::cert_invalid, "certificate of " + name + ": " + std::string(worst) + ": " + why};
  return out;
}

asio::awaitable<TlsHandshake> TlsClient::handshake(ProbeContext& ctx, TlsStream& stream, const std::string& host,
                                                   std::string_view alpn) const {
  SSL* ssl = stream.native_handle();
  const std::string& name = expected_name(host);
  if (!alpn.empty()) {
    const std::string wire = static_cast<char>(alpn.size()) + std::string(alpn);  // RFC 7301: length-prefixed
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  }
  Watch watch(ssl, name, verify_chain_, verify_hostname_);
  ctx.begin_phase("tls");
  auto [error] = co_await stream.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
  ctx.end_phase();
  std::optional<ProbeResult> failure;
  if (error) failure = ProbeResult{classify_tls_error(error), "TLS handshake with " + name + ": " + error.message()};
  co_return conclude(ssl, watch, std::move(failure), name);
}

asio::awaitable<TlsHandshake> TlsClient::handshake(ProbeContext& ctx, TlsRecordChannel& channel,
                                                   const std::string& host) const {
  // A TLS 1.2 handshake takes two flights each way; the server's may span several carrier
  // packets. Past this many exchanges the peer is not completing a handshake.
  constexpr int kMaxExchanges = 64;
  const std::string& name = expected_name(host);
  std::unique_ptr<SSL, decltype(&SSL_free)> owned(SSL_new(context_->native_handle()), SSL_free);
  BIO* from_server = BIO_new(BIO_s_mem());
  BIO* to_server = BIO_new(BIO_s_mem());
  if (!owned || !from_server || !to_server) {
    BIO_free(from_server);
    BIO_free(to_server);
    co_return TlsHandshake{ProbeResult{reason::resource_exhausted, "cannot set up TLS: " + openssl_errors()}, {}, false};
  }
  SSL* ssl = owned.get();
  SSL_set_bio(ssl, from_server, to_server);  // the SSL owns both now
  const int cap = channel.max_tls_version();
  const long configured_max = SSL_get_max_proto_version(ssl);
  if (cap != 0 && (configured_max == 0 || configured_max > cap)) SSL_set_max_proto_version(ssl, cap);
  SSL_set_connect_state(ssl);

  Watch watch(ssl, name, verify_chain_, verify_hostname_);
  std::optional<ProbeResult> failure;
  std::vector<unsigned char> buffer;
  ctx.begin_phase("tls");
  for (int exchange = 0;; ++exchange) {
    if (exchange == kMaxExchanges) {
      failure = ProbeResult{reason::tls_error, "TLS handshake with " + name + " did not finish in " +
                                                   std::to_string(kMaxExchanges) + " exchanges"};
      break;
    }
    ERR_clear_error();
    const int done = SSL_do_handshake(ssl);
    const int status = done == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, done);
    const std::string errors = status == SSL_ERROR_SSL ? openssl_errors() : "OpenSSL error " + std::to_string(status);
    // Whatever OpenSSL wrote goes out first, a fatal alert included.
    buffer.resize(BIO_ctrl_pending(to_server));
    if (!buffer.empty()) {
      BIO_read(to_server, buffer.data(), static_cast<int>(buffer.size()));
      failure = co_await channel.send(buffer);
      if (failure) break;
    }
    if (status == SSL_ERROR_NONE) break;
    if (status != SSL_ERROR_WANT_READ) {
      failure = ProbeResult{reason::tls_error, "TLS handshake with " + name + ": " + errors};
      break;
    }
    buffer.clear();
    failure = co_await channel.receive(buffer);
    if (failure) break;
    if (!buffer.empty()) BIO_write(from_server, buffer.data(), static_cast<int>(buffer.size()));
  }
  ctx.end_phase();
  co_return conclude(ssl, watch, std::move(failure), name);
}

asio::awaitable<std::optional<ProbeResult>> read_post_handshake_verdict(TlsStream& stream) {
  // Asio reports a shutdown ended by the server's fatal alert as a clean one, so the alert is
  // read off the wire as it arrives.
  ServerMessages seen;
  MessageWatch watch(stream.native_handle(), seen);
  auto [error] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
  if (seen.fatal_alert >= 0)
    co_return ProbeResult{reason::tls_error, "server refused the session after the handshake: alert " +
                                                 std::to_string(seen.fatal_alert) + " (" + alert_name(seen.fatal_alert) + ")"};
  if (error == asio::error::operation_aborted || error == boost::beast::error::timeout)
    co_return ProbeResult{reason::timeout, "no answer to close_notify before the deadline"};
  co_return std::nullopt;  // closed, with or without close_notify: no objection
}

std::string_view classify_tls_stream_error(const boost::system::error_code& error) {
  if (error.category() == asio::error::get_ssl_category() || error == ssl::error::stream_truncated)
    return reason::tls_error;
  return classify_network_error(error);
}

void describe_tls_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point now, FactWords& words) {
  for (const auto& fact : facts) {
    if (fact.metric == kEarliest && std::isfinite(fact.value)) {
      const double days = (fact.value - std::chrono::duration<double>(now.time_since_epoch()).count()) / 86400;
      char text[64];
      const double whole = days >= 0 ? std::floor(days) : std::ceil(-days);
      const char* unit = whole == 1 ? "day" : "days";
      if (days >= 0) std::snprintf(text, sizeof text, "cert expires in %.0f %s", whole, unit);
      else std::snprintf(text, sizeof text, "cert expired %.0f %s ago", whole, unit);
      words.summary.emplace_back(text);
    } else if (fact.metric == kVersionInfo) {
      words.summary.emplace_back(fact.label("version"));
    } else if (fact.metric == kNotAfter) {
      words.details.emplace_back("certificate " + std::string(fact.label("position")),
                                 std::string(fact.label("subject")) + ", issued by " + std::string(fact.label("issuer")) +
                                     ", serial " + std::string(fact.label("serial")) + ", valid until " +
                                     utc_minute_text(fact.value) + " (" + days_from_now(fact.value, now) + ")");
    } else if (fact.metric == kLeafInfo) {
      words.details.emplace_back("leaf certificate SHA-256", fact.label("fingerprint_sha256"));
    } else if (fact.metric == kCipherInfo) {
      words.details.emplace_back("cipher", fact.label("cipher"));
    } else if (fact.metric == kVerifyResult && fact.value == 1) {
      const std::string_view result = fact.label("reason");
      words.details.emplace_back("verification", result == verify_reason::ok ? std::string("the chain verifies")
                                                                              : "failed: " + std::string(result));
    }
  }
}

}  // namespace connectivity

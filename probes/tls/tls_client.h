// The TLS client every TLS-speaking probe shares (tls, https; later TDS and LDAPS): options
// read once from the check's config, a handshake over Asio's ssl stream, and what the server
// presented turned into facts, also when its certificate does not verify.
#pragma once

#include "probes/probe.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

class ConfigTable;

namespace reason {
inline constexpr std::string_view tls_error = "tls_error";        // no handshake
inline constexpr std::string_view cert_invalid = "cert_invalid";  // handshake done, certificate refused
}  // namespace reason

// Values of connectivity_tls_verify_result{reason}, most severe first: when a certificate has
// several problems, the first in this list is reported.
namespace verify_reason {
inline constexpr std::string_view expired = "expired";
inline constexpr std::string_view not_yet_valid = "not_yet_valid";
inline constexpr std::string_view self_signed = "self_signed";
inline constexpr std::string_view unknown_ca = "unknown_ca";
inline constexpr std::string_view hostname_mismatch = "hostname_mismatch";
inline constexpr std::string_view invalid = "invalid";  // any other verification error
inline constexpr std::string_view pin_mismatch = "pin_mismatch";
inline constexpr std::string_view ok = "ok";
}  // namespace verify_reason
inline constexpr std::string_view kVerifyReasons[] = {
    verify_reason::expired,           verify_reason::not_yet_valid, verify_reason::self_signed,
    verify_reason::unknown_ca,        verify_reason::hostname_mismatch, verify_reason::invalid,
    verify_reason::pin_mismatch,      verify_reason::ok};

// The words for the facts a TLS handshake reports, for every kind that speaks TLS: the earliest
// expiry and the version on one line, each certificate of the chain, the cipher and the
// verification on the check's page.
void describe_tls_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point now, FactWords& words);

// A TLS stream over Beast's tcp_stream, whose expiry closes the socket at the run's deadline
// even inside an operation that does not honour cancellation.
using TlsStream = asio::ssl::stream<boost::beast::tcp_stream>;

struct TlsHandshake {
  // Set when the run must end here: tls_error, cert_invalid, or a network reason.
  std::optional<ProbeResult> failure;
  // What the server presented: exported whether or not it verified.
  std::vector<Fact> facts;
  // The server asked for a client certificate (CertificateRequest seen). With TLS 1.3 it
  // judges ours only after the handshake, so a probe that cares must read on to learn that.
  bool client_certificate_requested = false;
};

// Carries TLS records for a handshake that does not run straight on the socket: TDS 7.x wraps
// them in its own packets. Each call returns the failure to report, if any.
class TlsRecordChannel {
 public:
  virtual ~TlsRecordChannel() = default;
  // Sends one flight of records.
  virtual asio::awaitable<std::optional<ProbeResult>> send(std::span<const unsigned char> records) = 0;
  // Appends the next bytes the server sent to `records`.
  virtual asio::awaitable<std::optional<ProbeResult>> receive(std::vector<unsigned char>& records) = 0;
  // The highest TLS version the carrying protocol allows (an OpenSSL *_VERSION), 0 for no cap.
  virtual int max_tls_version() const { return 0; }
};

class TlsClient {
 public:
  // The option keys from_options reads: a probe whose TLS is optional refuses them when TLS is off.
  static std::span<const std::string_view> option_keys();

  // Reads the TLS options (server_name, ca_file, verify, verify_hostname, min_version,
  // max_version, client_cert, client_key, pin_sha256) from the probe's options table; bad
  // values and unreadable files are config errors at their key.
  static std::shared_ptr<const TlsClient> from_options(ConfigTable& options);

  // Handshakes over `stream` (connected), as phase "tls", for `host` (SNI unless an address;
  // the name the certificate must carry, unless server_name overrides it), offering ALPN
  // protocol `alpn` when not empty.
  asio::awaitable<TlsHandshake> handshake(ProbeContext& ctx, TlsStream& stream, const std::string& host,
                                          std::string_view alpn = {}) const;
  // The same handshake with OpenSSL on memory buffers and the records carried by `channel`.
  // It ends when the handshake does: nothing is sent inside the session.
  asio::awaitable<TlsHandshake> handshake(ProbeContext& ctx, TlsRecordChannel& channel, const std::string& host) const;

  asio::ssl::context& context() const { return *context_; }

 private:
  class Watch;
  // The name the certificate must carry and SNI sends.
  const std::string& expected_name(const std::string& host) const { return server_name_.empty() ? host : server_name_; }
  // What the handshake on `ssl` ended with (`failure` when it did not complete) as facts and verdict.
  TlsHandshake conclude(SSL* ssl, const Watch& watch, std::optional<ProbeResult> failure, const std::string& name) const;

  std::unique_ptr<asio::ssl::context> context_;
  std::string server_name_;  // empty: the target's host
  bool verify_chain_ = true;
  bool verify_hostname_ = true;
  std::string pin_sha256_;  // lowercase hex; empty: no pin
};

// Waits for the server's answer to our close_notify. Used where the server asked for a client
// certificate: with TLS 1.3 a rejection arrives as an alert after the handshake. Returns the
// failure to report, or nullopt when the server did not object.
asio::awaitable<std::optional<ProbeResult>> read_post_handshake_verdict(TlsStream& stream);

// The reason for an error reading or writing a stream that may run TLS: OpenSSL's errors and a
// TLS session cut without close_notify are tls_error, the rest as classify_network_error.
std::string_view classify_tls_stream_error(const boost::system::error_code& error);

}  // namespace connectivity

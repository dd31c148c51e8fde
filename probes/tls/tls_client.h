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

#include <memory>
#include <optional>
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

class TlsClient {
 public:
  // Reads the TLS options (server_name, ca_file, verify, verify_hostname, min_version,
  // max_version, client_cert, client_key, pin_sha256) from the probe's options table; bad
  // values and unreadable files are config errors at their key.
  static std::shared_ptr<const TlsClient> from_options(ConfigTable& options);

  // Handshakes over `stream` (connected), as phase "tls", for `host` (SNI unless an address;
  // the name the certificate must carry, unless server_name overrides it).
  asio::awaitable<TlsHandshake> handshake(ProbeContext& ctx, TlsStream& stream, const std::string& host) const;

  asio::ssl::context& context() const { return *context_; }

 private:
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

}  // namespace connectivity

// probe = "http": does the endpoint answer HTTP(S) as expected? The target is the URL.
// Resolve, connect (through a CONNECT proxy if configured), TLS for https, request (until
// the response header: time to first byte), transfer (the body). Redirects are followed up to
// a limit, each hop's phases adding up.
#pragma once

#include "probes/probe.h"
#include "probes/tls/tls_client.h"

#include <boost/regex.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace connectivity {

namespace reason {
inline constexpr std::string_view http_status = "http_status";        // status not in valid_status_codes
inline constexpr std::string_view body_mismatch = "body_mismatch";    // body_regex / body_must_not_match
inline constexpr std::string_view body_too_large = "body_too_large";  // over max_body_bytes
inline constexpr std::string_view too_many_redirects = "too_many_redirects";
inline constexpr std::string_view proxy_error = "proxy_error";        // the proxy refused CONNECT
}  // namespace reason

struct HttpSettings {
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<std::pair<int, int>> valid_status;  // inclusive ranges
  std::optional<boost::regex> body_regex;
  std::optional<boost::regex> body_must_not_match;
  unsigned max_redirects = 5;
  std::size_t max_body_bytes = 1 << 20;
  std::string authorization;    // "Basic ..." built from basic_auth_user and the password file
  std::optional<Target> proxy;  // an http:// proxy, spoken to with CONNECT for https
  AddressFamily family = AddressFamily::any;
  std::shared_ptr<const TlsClient> tls;
};

class HttpProbe final : public Probe {
 public:
  explicit HttpProbe(HttpSettings settings) : settings_(std::move(settings)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  HttpSettings settings_;
};

const ProbeKind& http_probe_kind();

// Where a Location header leads from `from` (absolute, scheme-relative, absolute-path or
// relative-path references); throws std::invalid_argument for what is not an http(s) URL.
Target resolve_redirect(const Target& from, std::string_view location);

}  // namespace connectivity

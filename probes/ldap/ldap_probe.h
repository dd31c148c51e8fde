// probe = "ldap": does a directory server answer LDAP, and how? Resolve, connect, then TLS
// first (tls = true: LDAPS, usually 636) or StartTLS (starttls = true, on 389), an optional
// simple bind with a DN and a password from a file, and an anonymous-or-bound search of the
// RootDSE (RFC 4512 5.1) for namingContexts and supportedLDAPVersion. Unbinds before closing.
// The codec (ldap_codec.h) is ours: pure functions over bytes, fuzzed.
#pragma once

#include "probes/probe.h"
#include "probes/tls/tls_client.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace connectivity {

namespace reason {
// bind (or search) answered invalidCredentials, inappropriateAuthentication,
// insufficientAccessRights, authMethodNotSupported, strongerAuthRequired or confidentialityRequired.
inline constexpr std::string_view auth_failed = "auth_failed";
// busy, unavailable, unwillingToPerform: the server is there but will not serve now.
inline constexpr std::string_view unavailable = "unavailable";
// Any other non-zero resultCode, or a RootDSE search that returned no entry.
inline constexpr std::string_view ldap_error = "ldap_error";
}  // namespace reason

struct LdapSettings {
  bool tls = false;       // LDAPS: TLS before anything else
  bool starttls = false;  // StartTLS extended operation, then TLS
  std::string bind_dn;    // empty: no bind, the search runs anonymously
  std::string password;   // read from password_file at config load
  AddressFamily family = AddressFamily::any;
  std::shared_ptr<const TlsClient> tls_client;  // set when tls or starttls
};

class LdapProbe final : public Probe {
 public:
  explicit LdapProbe(LdapSettings settings) : settings_(std::move(settings)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  LdapSettings settings_;
};

// The failure reason for a non-zero LDAP resultCode.
std::string_view ldap_result_reason(std::uint32_t code);

const ProbeKind& ldap_probe_kind();

}  // namespace connectivity

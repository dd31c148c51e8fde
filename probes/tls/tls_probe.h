// probe = "tls": does the port complete a TLS handshake, with a certificate that verifies?
// Resolve, connect, handshake; the presented chain is reported also when it does not verify.
#pragma once

#include "probes/probe.h"
#include "probes/tls/tls_client.h"

#include <memory>

namespace connectivity {

class TlsProbe final : public Probe {
 public:
  TlsProbe(AddressFamily family, std::shared_ptr<const TlsClient> tls) : family_(family), tls_(std::move(tls)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  AddressFamily family_;
  std::shared_ptr<const TlsClient> tls_;
};

const ProbeKind& tls_probe_kind();

}  // namespace connectivity

// probe = "tds": is SQL Server really the thing answering on the port, and how? Resolve,
// connect, PRELOGIN (MS-TDS 2.2.6.5) and read the answer: version, encryption, instance. With
// tls, continue into the TLS handshake TDS 7.x wraps in PRELOGIN packets to read the server's
// certificate; with strict (TDS 8.0), TLS comes first and PRELOGIN travels inside it. With
// browser, ask the SQL Server Browser (UDP 1434) which port the instance listens on.
// Never sends LOGIN7: no credentials, nothing that logs in.
#pragma once

#include "probes/probe.h"
#include "probes/tds/prelogin.h"
#include "probes/tls/tls_client.h"

#include <boost/beast/core/tcp_stream.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace connectivity {

namespace reason {
// The server is not the configured instance, or the Browser says it listens elsewhere.
inline constexpr std::string_view instance_mismatch = "instance_mismatch";
}  // namespace reason

struct TdsSettings {
  std::string instance;        // empty: no instance check
  bool tls = false;            // TDS 7.x: the handshake wrapped in PRELOGIN packets
  bool strict = false;         // TDS 8.0: TLS first, ALPN "tds/8.0"
  bool browser = false;        // ask the SQL Server Browser for the instance's port
  std::uint16_t browser_port = 1434;
  AddressFamily family = AddressFamily::any;
  std::shared_ptr<const TlsClient> tls_client;  // set when tls or strict
};

class TdsProbe final : public Probe {
 public:
  explicit TdsProbe(TdsSettings settings) : settings_(std::move(settings)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  TdsSettings settings_;
  asio::awaitable<std::optional<ProbeResult>> classic_session(ProbeContext& ctx, boost::beast::tcp_stream& stream,
                                                              std::vector<Fact>& facts) const;
  asio::awaitable<std::optional<ProbeResult>> strict_session(ProbeContext& ctx, boost::beast::tcp_stream stream,
                                                             std::vector<Fact>& facts) const;
  // The PRELOGIN outcome as facts, and the failure it means, if any.
  std::optional<ProbeResult> judge(std::variant<tds::PreloginReply, ProbeResult> prelogin, std::vector<Fact>& facts) const;
};

const ProbeKind& tds_probe_kind();

}  // namespace connectivity

#include "probes/tls/tls_probe.h"

#include "probes/config_table.h"
#include "probes/connect.h"

namespace connectivity {

asio::awaitable<ProbeResult> TlsProbe::run(ProbeContext& ctx) const {
  asio::ip::tcp::socket socket(ctx.executor());
  if (auto failure = co_await resolve_and_connect(ctx, family_, socket)) co_return *failure;
  TlsStream stream(boost::beast::tcp_stream(std::move(socket)), tls_->context());
  stream.next_layer().expires_at(ctx.deadline());

  TlsHandshake handshake = co_await tls_->handshake(ctx, stream, ctx.target().host);
  if (!handshake.failure && handshake.client_certificate_requested) {
    // With TLS 1.3 the server judges our certificate (or its absence) after the handshake.
    ctx.begin_phase("tls");
    handshake.failure = co_await read_post_handshake_verdict(stream);
    ctx.end_phase();
  }
  if (handshake.failure) {
    handshake.failure->facts = std::move(handshake.facts);
    co_return std::move(*handshake.failure);
  }
  co_return ProbeResult{reason::success, {}, std::move(handshake.facts)};
}


const ProbeKind& tls_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect", "tls"};
  static constexpr std::string_view reasons[] = {reason::tls_error, reason::cert_invalid};
  static const ProbeKind kind{
      .name = "tls",
      .phases = phases,
      .extra_reasons = reasons,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        const AddressFamily family = parse_address_family(options);
        return std::make_unique<TlsProbe>(family, TlsClient::from_options(options));
      },
      .describe = describe_tls_facts};
  return kind;
}

}  // namespace connectivity

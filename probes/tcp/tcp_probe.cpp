#include "probes/tcp/tcp_probe.h"

#include "probes/connect.h"
#include "probes/config_table.h"

#include <boost/asio/ip/tcp.hpp>

namespace connectivity {

asio::awaitable<ProbeResult> TcpProbe::run(ProbeContext& ctx) const {
  asio::ip::tcp::socket socket(ctx.executor());
  if (auto failure = co_await resolve_and_connect(ctx, family_, socket)) co_return *failure;
  // close() alone sends the FIN: a shutdown() first would only add a system call per probe.
  boost::system::error_code ignored;
  socket.close(ignored);
  co_return ProbeResult{reason::success};
}

const ProbeKind& tcp_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect"};
  static const ProbeKind kind{
      .name = "tcp",
      .phases = phases,
      .extra_reasons = {},
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        return std::make_unique<TcpProbe>(parse_address_family(options));
      }};
  return kind;
}

}  // namespace connectivity

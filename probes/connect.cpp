#include "probes/connect.h"

#include "probes/config_table.h"
#include "probes/resolver.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <sstream>
#include <tuple>

namespace connectivity {

std::string_view classify_network_error(const boost::system::error_code& error) {
  namespace e = asio::error;
  if (error.category() == e::get_netdb_category() ||
      error.category() == e::get_addrinfo_category())
    return reason::dns_error;
  if (error == e::host_not_found || error == e::host_not_found_try_again ||
      error == e::address_family_not_supported)
    return reason::dns_error;
  if (error == e::connection_refused) return reason::refused;
  if (error == e::timed_out || error == e::operation_aborted || error == boost::beast::error::timeout)
    return reason::timeout;
  if (error == e::host_unreachable || error == e::network_unreachable ||
      error == e::network_down || error == e::access_denied ||
      error == boost::system::errc::operation_not_permitted)
    return reason::unreachable;  // ICMP unreachable, no route, or a local firewall rule
  if (error == e::connection_reset || error == e::connection_aborted || error == e::broken_pipe)
    return reason::reset;
  if (error == e::no_descriptors || error == e::no_buffer_space || error == e::no_memory ||
      error == boost::system::errc::too_many_files_open_in_system)
    return reason::resource_exhausted;
  return reason::error;
}

AddressFamily parse_address_family(ConfigTable& options) {
  const auto value = options.choice("address_family", {"any", "ipv4", "ipv6"});
  if (!value || *value == "any") return AddressFamily::any;
  return *value == "ipv4" ? AddressFamily::ipv4 : AddressFamily::ipv6;
}

asio::awaitable<std::optional<ProbeResult>> resolve_and_connect(ProbeContext& ctx,
                                                                AddressFamily family,
                                                                asio::ip::tcp::socket& socket) {
  return resolve_and_connect(ctx, ctx.target(), family, socket);
}

asio::awaitable<std::optional<ProbeResult>> resolve_and_connect(ProbeContext& ctx, const Target& target,
                                                                AddressFamily family,
                                                                asio::ip::tcp::socket& socket) {
  ctx.begin_phase("resolve");
  const ResolveOutcome resolved = co_await ctx.resolver().resolve(target, family);
  if (resolved.error)
    co_return ProbeResult{classify_network_error(resolved.error), "resolve " + target.host + ": " + resolved.error.message()};

  // The first address only: falling back to the next one would hide exactly the broken path
  // (say, IPv6 firewalled) that this agent exists to report.
  const auto& endpoint = resolved.endpoints.front();
  ctx.begin_phase("connect");
  boost::system::error_code error;
  socket.open(endpoint.protocol(), error);
  if (!error) {
    std::tie(error) = co_await socket.async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
  }
  ctx.end_phase();
  if (error) {
    std::ostringstream address;
    address << endpoint;
    co_return ProbeResult{classify_network_error(error), "connect " + address.str() + ": " + error.message()};
  }
  co_return std::nullopt;
}

}  // namespace connectivity

#include "probes/connect.h"

#include "probes/config_table.h"
#include "probes/resolver.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <sstream>
#include <tuple>

#if defined(_WIN32)
#include <winsock2.h>
#include <mstcpip.h>
#else
#include <cerrno>
#include <sys/socket.h>
#endif

namespace connectivity {

namespace {

// Whether `error` is a name lookup's. Asio gives those categories of their own, except on
// Windows, where getaddrinfo's errors are Winsock codes in the system category, with every
// socket error: there the codes only a lookup gives tell them.
bool is_lookup_error(const boost::system::error_code& error) {
  namespace e = asio::error;
#if defined(_WIN32)
  return error == e::host_not_found || error == e::host_not_found_try_again || error == e::no_data ||
         error == e::no_recovery || error == e::service_not_found;
#else
  return error.category() == e::get_netdb_category() || error.category() == e::get_addrinfo_category();
#endif
}

#if defined(_WIN32)
// Windows answers a RST to its SYN by sending the SYN again, as if it were lost: a refused port
// takes about 2 s to be reported, not the 1 ms it takes on Linux. Its documented ioctl
// SIO_TCP_INITIAL_RTO, set between open and connect, turns SYN retransmission off, so the
// first RST ends the connect as refused. (wine does not show this either way: its network
// stack is the host's, Linux's, and it may not know the ioctl, which then changes nothing.)
void refuse_at_first_reset(asio::ip::tcp::socket& socket) {
  TCP_INITIAL_RTO_PARAMETERS parameters{};
  parameters.Rtt = TCP_INITIAL_RTO_UNSPECIFIED_RTT;
  parameters.MaxSynRetransmissions = TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS;
  DWORD returned = 0;
  WSAIoctl(socket.native_handle(), SIO_TCP_INITIAL_RTO, &parameters, sizeof parameters, nullptr, 0, &returned,
           nullptr, nullptr);
}

// Opens `socket` and connects it to `endpoint`; the error, if any. With no SYN retransmission a
// lost SYN ends the attempt at the initial RTO (about 1 s) as timed out: until the run's
// deadline each such attempt is made again, on a fresh socket, as Linux's kernel would send
// the SYN again.
asio::awaitable<boost::system::error_code> open_and_connect_retrying_lost_syn(const ProbeContext& ctx,
                                                                              asio::ip::tcp::socket& socket,
                                                                              const asio::ip::tcp::endpoint& endpoint) {
  for (;;) {
    boost::system::error_code error;
    socket.open(endpoint.protocol(), error);
    if (error) co_return error;
    refuse_at_first_reset(socket);
    std::tie(error) = co_await socket.async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
    if (error != asio::error::timed_out || Clock::now() >= ctx.deadline()) co_return error;
    socket.close(error);
  }
}
#else
// Connected by hand, and handed to Asio only to wait until it is writable: Asio's own
// async_connect, once the socket is writable, polls it again before reading SO_ERROR, a system
// call the kernel's answer does not need. (Creating the socket non-blocking and assign()ing it
// would save the ioctl too, but Asio then takes the descriptor for a possible duplicate and
// removes it from epoll by hand at close: one call more, not less.)
asio::awaitable<boost::system::error_code> open_and_connect(asio::ip::tcp::socket& socket,
                                                            const asio::ip::tcp::endpoint& endpoint) {
  boost::system::error_code error;
  socket.open(endpoint.protocol(), error);
  if (!error) socket.native_non_blocking(true, error);
  if (error) co_return error;
  if (::connect(socket.native_handle(), endpoint.data(), static_cast<socklen_t>(endpoint.size())) == 0) co_return error;
  if (errno != EINPROGRESS) co_return boost::system::error_code(errno, boost::system::system_category());
  // Cancelled at the run's deadline: operation_aborted, a timeout.
  std::tie(error) = co_await socket.async_wait(asio::socket_base::wait_write, asio::as_tuple(asio::use_awaitable));
  if (error) co_return error;
  int connect_error = 0;
  socklen_t length = sizeof connect_error;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &connect_error, &length) != 0)
    co_return boost::system::error_code(errno, boost::system::system_category());
  co_return boost::system::error_code(connect_error, boost::system::system_category());
}
#endif

}  // namespace

std::string_view classify_network_error(const boost::system::error_code& error) {
  namespace e = asio::error;
  if (is_lookup_error(error)) return reason::dns_error;
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
#if defined(_WIN32)
  error = co_await open_and_connect_retrying_lost_syn(ctx, socket, endpoint);
#else
  error = co_await open_and_connect(socket, endpoint);
#endif
  ctx.end_phase();
  if (error) {
    std::ostringstream address;
    address << endpoint;
    co_return ProbeResult{classify_network_error(error), "connect " + address.str() + ": " + error.message()};
  }
  co_return std::nullopt;
}

}  // namespace connectivity

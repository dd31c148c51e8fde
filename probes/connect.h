// The resolve and connect phases every TCP-based probe starts with, and the mapping of
// socket errors to failure reasons, so all probes classify the same errno the same way.
#pragma once

#include "probes/probe.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <optional>

namespace connectivity {

// The reason for a socket or resolver error (never `success`).
std::string_view classify_network_error(const boost::system::error_code& error);

// Resolves ctx.target() (phase "resolve") and connects `socket` to the first address of the
// wanted family (phase "connect"). On failure returns the result to report; on success
// nullopt, with `socket` open and connected.
asio::awaitable<std::optional<ProbeResult>> resolve_and_connect(ProbeContext& ctx,
                                                                AddressFamily family,
                                                                asio::ip::tcp::socket& socket);
// The same for another endpoint than the check's target: a proxy, or a redirect's host.
asio::awaitable<std::optional<ProbeResult>> resolve_and_connect(ProbeContext& ctx, const Target& target,
                                                                AddressFamily family,
                                                                asio::ip::tcp::socket& socket);

// Parses the shared `address_family` option ("any", "ipv4", "ipv6").
AddressFamily parse_address_family(class ConfigTable& options);

}  // namespace connectivity

// Name resolution for probes: getaddrinfo on a small pool of threads, awaited cancellably.
#pragma once

#include "probes/probe.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <memory>
#include <vector>

namespace connectivity {

struct ResolveOutcome {
  boost::system::error_code error;  // asio::error::netdb_errors / addrinfo_errors, or aborted
  std::vector<asio::ip::tcp::endpoint> endpoints;  // preferred family first
};

// Asio's own async_resolve runs every lookup on one hidden thread and cannot be abandoned
// once started: one slow DNS server would stall every probe behind it. Here
// lookups run on `threads` workers, and a cancelled probe stops waiting at once; the lookup
// finishes in the background and its answer is dropped.
class Resolver {
 public:
  // Blocking lookup run on a worker thread; the default is the system's getaddrinfo. Tests
  // pass one that blocks, to show a probe does not wait for it.
  using Lookup = std::function<ResolveOutcome(const std::string& host, std::uint16_t port, AddressFamily family)>;

  explicit Resolver(std::size_t threads = 4, Lookup lookup = {});
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // IP literals are answered without a lookup. With `family` any, IPv6 then IPv4 as the
  // system orders them; with ipv4/ipv6, only that family (empty endpoints and
  // host_not_found when the name has none).
  asio::awaitable<ResolveOutcome> resolve(const Target& target, AddressFamily family);

 private:
  struct Pool;
  std::shared_ptr<Pool> pool_;
  Lookup lookup_;
};

}  // namespace connectivity

#include "probes/resolver.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#if defined(_WIN32)
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#endif

#include <condition_variable>
#include <cstring>
#include <optional>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace connectivity {

struct Resolver::Pool {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  bool stopping = false;
  std::vector<std::thread> threads;
};

namespace {

// getaddrinfo's failure `rc` (read at once: EAI_SYSTEM leaves the cause in errno) as an error
// code. Not found (for the family asked, too) is asio's host_not_found on both platforms.
boost::system::error_code lookup_error(int rc) {
#if defined(_WIN32)
  // Winsock's getaddrinfo returns WSA codes (EAI_* name them), in Asio's system category;
  // it has no EAI_SYSTEM or EAI_ADDRFAMILY. classify_network_error knows the lookup-only ones.
  if (rc == EAI_NONAME || rc == EAI_NODATA) return asio::error::host_not_found;
  return {rc, boost::system::system_category()};
#else
  // AI_ADDRCONFIG with only loopback configured can hide every family: say "no such host".
  if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_ADDRFAMILY) return asio::error::host_not_found;
  if (rc == EAI_SYSTEM) return {errno, boost::system::system_category()};
  return {rc, asio::error::get_addrinfo_category()};
#endif
}

ResolveOutcome system_lookup(const std::string& host, std::uint16_t port, AddressFamily family) {
  addrinfo hints{};
  hints.ai_family = family == AddressFamily::ipv4   ? AF_INET
                    : family == AddressFamily::ipv6 ? AF_INET6
                                                    : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  ResolveOutcome out;
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    out.error = lookup_error(rc);
    return out;
  }
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    asio::ip::tcp::endpoint ep;
    if (ai->ai_addrlen > ep.capacity()) continue;
    std::memcpy(ep.data(), ai->ai_addr, ai->ai_addrlen);
    ep.resize(ai->ai_addrlen);
    out.endpoints.push_back(ep);
  }
  ::freeaddrinfo(list);
  if (out.endpoints.empty()) out.error = asio::error::host_not_found;
  return out;
}

}  // namespace

Resolver::Resolver(std::size_t threads, Lookup lookup)
    : pool_(std::make_shared<Pool>()), lookup_(lookup ? std::move(lookup) : Lookup(system_lookup)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
    pool_->threads.emplace_back([pool = pool_] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(pool->mutex);
          pool->wake.wait(lock, [&] { return pool->stopping || !pool->jobs.empty(); });
          if (pool->stopping) return;
          job = std::move(pool->jobs.front());
          pool->jobs.pop_front();
        }
        job();
      }
    });
  }
}

Resolver::~Resolver() {
  {
    std::lock_guard lock(pool_->mutex);
    pool_->stopping = true;
    pool_->jobs.clear();
  }
  pool_->wake.notify_all();
  // A worker may sit in getaddrinfo for the resolver's own timeout (seconds). Shutdown must
  // not wait for it: the worker owns a reference to the pool and will not post its answer,
  // because `stopping` is checked under the lock it posts under.
  for (auto& t : pool_->threads) t.detach();
}

asio::awaitable<ResolveOutcome> Resolver::resolve(const Target& target, AddressFamily family) {
  boost::system::error_code parse_error;
  const auto literal = asio::ip::make_address(target.host, parse_error);
  if (!parse_error) {
    ResolveOutcome out;
    const bool wrong_family = (family == AddressFamily::ipv4 && !literal.is_v4()) ||
                              (family == AddressFamily::ipv6 && !literal.is_v6());
    if (wrong_family)
      out.error = asio::error::address_family_not_supported;
    else
      out.endpoints.emplace_back(literal, target.port);
    co_return out;
  }

  // The answer is handed back on the probe's own executor, so `answer` is only ever touched
  // by that executor's thread; the timer is just a cancellable way to wait for it.
  struct Pending {
    explicit Pending(const asio::any_io_executor& ex) : wakeup(ex, Clock::time_point::max()) {}
    asio::steady_timer wakeup;
    std::optional<ResolveOutcome> answer;
  };
  auto executor = co_await asio::this_coro::executor;
  auto pending = std::make_shared<Pending>(executor);
  {
    std::lock_guard lock(pool_->mutex);
    if (pool_->stopping) co_return ResolveOutcome{asio::error::operation_aborted, {}};
    // The job holds the waiter weakly: a worker that outlives the io_context must never be the
    // one to destroy its timer.
    pool_->jobs.emplace_back([pool = std::weak_ptr<Pool>(pool_),
                              waiter = std::weak_ptr<Pending>(pending), host = target.host,
                              port = target.port, family, executor, lookup = lookup_] {
      // Its probe gave up (deadline, removal) while the job queued: behind a slow DNS server,
      // running it anyway would only make every later lookup wait longer.
      if (waiter.expired()) return;
      auto outcome = lookup(host, port, family);  // may block for the resolver's own timeout
      auto alive = pool.lock();
      if (!alive) return;
      std::lock_guard lock(alive->mutex);
      // Nobody waits any more: the probe ended, and its io_context may be gone with it.
      if (alive->stopping || waiter.expired()) return;
      asio::post(executor, [waiter, outcome = std::move(outcome)]() mutable {
        if (auto pending = waiter.lock()) {
          pending->answer = std::move(outcome);
          pending->wakeup.cancel();
        }
      });
    });
  }
  pool_->wake.notify_one();
  co_await pending->wakeup.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!pending->answer) co_return ResolveOutcome{asio::error::operation_aborted, {}};
  co_return std::move(*pending->answer);
}

}  // namespace connectivity

// Runs one check once, the way the scheduler does (deadline included), on a private io_context.
#pragma once

#include "agent/config.h"
#include "agent/results.h"
#include "agent/scheduler.h"
#include "probes/resolver.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <string>

namespace connectivity::testing {

inline RunRecord run_once(const CheckConfig& check) {
  asio::io_context io;
  Resolver resolver(2);  // destroyed before io: a late lookup answer is dropped, not posted
  RunRecord out;
  std::exception_ptr failure;
  asio::co_spawn(io, run_probe(check, resolver), [&](std::exception_ptr e, RunRecord r) {
    failure = std::move(e);
    out = std::move(r);
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return out;
}

// A one-check config in TOML, parsed the way the agent parses it.
inline CheckConfig tcp_check(const std::string& target, const std::string& timeout = "2s",
                             const std::string& options = "") {
  const std::string text = "[[check]]\nname = \"t\"\nprobe = \"tcp\"\ntarget = \"" + target +
                           "\"\ninterval = \"10s\"\ntimeout = \"" + timeout + "\"\n" +
                           (options.empty() ? "" : "[check.tcp]\n" + options + "\n");
  return parse_config(text, "test.toml").checks.at(0);
}

}  // namespace connectivity::testing

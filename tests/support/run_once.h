// Runs one check once, the way the scheduler does (deadline included), on a private io_context.
#pragma once

#include "agent/config.h"
#include "agent/results.h"
#include "agent/scheduler.h"
#include "probes/resolver.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

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
  // CONNECTIVITY_TEST_REPORT=1 prints what every run reported: the matrix behind the tests.
  if (std::getenv("CONNECTIVITY_TEST_REPORT")) {  // NOLINT(concurrency-mt-unsafe): read-only
    std::cout << "[ report   ] " << check.target.to_string() << " -> " << out.reason;
    for (const auto& fact : out.facts)
      if (fact.metric == "connectivity_tls_verify_result" && fact.value == 1) std::cout << " verify=" << fact.labels.at(0).second;
    for (const auto& fact : out.facts)
      if (fact.metric == "connectivity_tds_server_info")
        for (const auto& [label, value] : fact.labels) std::cout << " " << label << "=" << value;
    for (const auto& fact : out.facts)
      if (fact.metric == "connectivity_dns_address_info") std::cout << " address=" << fact.labels.at(0).second;
    std::cout << (out.detail.empty() ? "" : " (" + out.detail + ")") << "\n";
  }
  return out;
}

// A one-check config in TOML, parsed the way the agent parses it; `options` is the body of
// the [check.<probe>] sub-table.
inline CheckConfig make_check(const std::string& probe, const std::string& target, const std::string& options = "",
                              const std::string& timeout = "2s") {
  const std::string text = "[[check]]\nname = \"t\"\nprobe = \"" + probe + "\"\ntarget = \"" + target +
                           "\"\ninterval = \"10s\"\ntimeout = \"" + timeout + "\"\n" +
                           (options.empty() ? "" : "[check." + probe + "]\n" + options + "\n");
  return parse_config(text, "test.toml").checks.at(0);
}

// The config error a one-check config with these options gives; "<no error>" when it loads.
inline std::string config_error(const std::string& probe, const std::string& target, const std::string& options) {
  try {
    make_check(probe, target, options);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

inline CheckConfig tcp_check(const std::string& target, const std::string& timeout = "2s",
                             const std::string& options = "") {
  return make_check("tcp", target, options, timeout);
}

// The value of the fact `metric` whose labels include all of `labels`; nullopt if none.
inline std::optional<double> fact_value(const RunRecord& run, std::string_view metric, const Labels& labels = {}) {
  for (const auto& fact : run.facts) {
    if (fact.metric != metric) continue;
    const bool all = std::all_of(labels.begin(), labels.end(), [&](const auto& wanted) {
      return std::find(fact.labels.begin(), fact.labels.end(), wanted) != fact.labels.end();
    });
    if (all) return fact.value;
  }
  return std::nullopt;
}

// The value of label `name` on the first fact `metric`; empty if none.
inline std::string fact_label(const RunRecord& run, std::string_view metric, std::string_view name) {
  for (const auto& fact : run.facts)
    if (fact.metric == metric)
      for (const auto& [label, value] : fact.labels)
        if (label == name) return value;
  return {};
}

// Phase duration of the run in seconds (summed over repeats); nullopt if not reached.
inline std::optional<double> phase_seconds(const RunRecord& run, std::string_view phase) {
  std::optional<double> total;
  for (const auto& p : run.phases)
    if (p.name == phase) total = total.value_or(0) + std::chrono::duration<double>(p.took).count();
  return total;
}

}  // namespace connectivity::testing

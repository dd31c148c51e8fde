// The checks as JSON, one form for `connectivity-agent check --format json` and for the agent's
// GET /api/v1/checks and /api/v1/checks/<name> (README, "Status page and JSON API"). The schema
// is "connectivity-agent-check/1": fields are only ever added to it; a field removed or
// changed in meaning would make it /2.
#pragma once

#include "agent/status.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

inline constexpr std::string_view kChecksSchema = "connectivity-agent-check/1";

struct ChecksDocument {
  std::string_view agent_version;
  const std::vector<CheckStatus>* checks = nullptr;
  // `check`: when the round started and how long it took. The API: when the state was read.
  std::optional<std::chrono::system_clock::time_point> started_at{};
  std::optional<double> took_seconds{};
  std::optional<std::chrono::system_clock::time_point> generated_at{};
  const std::vector<InboundSnapshot>* inbound = nullptr;  // the API's only
};

// "pass" (up), "fail" (down), "pending" (not run yet), "skipped".
std::string_view result_name(CheckState state);
// 1 when a required check is down, else 0: `check`'s exit code, and the API's "exit_code".
int exit_code_of(const std::vector<CheckStatus>& checks);

std::string render_checks_json(const ChecksDocument& document);
// One check with its recent runs and settings: GET /api/v1/checks/<name>.
std::string render_check_json(const CheckStatus& check, std::string_view agent_version,
                              std::chrono::system_clock::time_point now);

// RFC 3339 in UTC, to the second: "2026-12-03T14:02:05Z".
std::string rfc3339(double unix_seconds);

}  // namespace connectivity

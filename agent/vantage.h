// Vantage roles: where on a library's network a check has to start for its result to mean
// anything. The vendors' port lists describe who talks to whom (SQL Server from the ILLiad web
// server and from every staff client, OCLC from the web server only, the public pages from the
// patrons' side of the firewall), so each profile check names the roles it runs from, and an
// agent told its role loads only those checks.
#pragma once

#include <toml++/toml.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

struct VantageRole {
  std::string_view name;
  std::string_view description;
};

// The fixed vocabulary, in the order the README's table lists them.
std::span<const VantageRole> vantage_roles();
bool is_vantage_role(std::string_view name);
// "illiad-web-server, staff-client, ...": for error messages.
std::string vantage_role_names();

// A list of roles: the `run_from` of a [[check]] or [[inbound]] table, or [agent] roles (`node`
// is the key's value, or null when the key is absent), validated against the vocabulary,
// duplicates dropped. Throws a ConfigError at the offending element; `context` names the
// table, e.g. `check "illiad-sql"`.
std::vector<std::string> read_run_from(const toml::node* node, const std::string& context,
                                       std::string_view key = "run_from");

// The roles an agent runs as, chosen with --role or [agent] roles; empty runs every check.
struct RoleSelection {
  std::vector<std::string> roles;

  bool chosen() const { return !roles.empty(); }
  // Whether a check with this `run_from` is loaded: every check when no role is chosen; a check
  // that names no role (a site's own [[check]]) always; otherwise when the lists share a role.
  bool includes(const std::vector<std::string>& run_from) const;
};

// The `vantage` label when [agent] vantage is not set: the role, the roles joined with "+", or
// "any" for an agent that runs every check.
std::string default_vantage(const RoleSelection& selection);

}  // namespace connectivity

#include "agent/vantage.h"

#include "probes/config_table.h"

#include <algorithm>
#include <array>

namespace connectivity {

namespace {

// Derived from the vendors' port lists: each role is a host a row of them starts from.
constexpr std::array kRoles{
    VantageRole{"illiad-web-server",
                "the ILLiad web server: SQL Server, OCLC, Article Exchange, Atlas updates, patron authentication "
                "(PatronAPI, SymphonyAPI, LDAP), ISO ILL and Odyssey out to partners"},
    VantageRole{"staff-client",
                "a library staff PC (ILLiad client, BookWhere): SQL Server, the Web Platform, client updates direct "
                "from Atlas, Z39.50 holdings, Odyssey to the web server"},
    VantageRole{"sql-server", "the host of the ILLiad database, for checks a site writes from it"},
    VantageRole{"catalogue-host", "the library system's host: the Talis Courseflow inbound watch"},
    VantageRole{"ill-server", "a library's ISO ILL requester or responder that is not ILLiad"},
    VantageRole{"outside",
                "a host on the patrons' and partners' side of the campus firewall: the public web pages, Odyssey "
                "and ISO ILL inbound, Remote Desktop for Atlas support, the catalogue as Talis Courseflow reaches it"},
};

}  // namespace

std::span<const VantageRole> vantage_roles() { return kRoles; }

bool is_vantage_role(std::string_view name) {
  return std::any_of(kRoles.begin(), kRoles.end(), [&](const VantageRole& role) { return role.name == name; });
}

std::string vantage_role_names() {
  std::string out;
  for (const auto& role : kRoles) out.append(out.empty() ? "" : ", ").append(role.name);
  return out;
}

std::vector<std::string> read_run_from(const toml::node* node, const std::string& context, std::string_view key) {
  std::vector<std::string> roles;
  if (!node) return roles;
  const std::string about = context + ": " + std::string(key);
  const toml::array* list = node->as_array();
  if (!list || list->empty())
    throw_config_error(node->source(), about + " must be a list of one or more roles (" + vantage_role_names() + ")");
  for (const auto& item : *list) {
    const auto name = item.value<std::string>();
    if (!name || !item.is_string()) throw_config_error(item.source(), about + " holds role names (strings)");
    if (!is_vantage_role(*name))
      throw_config_error(item.source(), about + ": unknown role \"" + *name + "\" (known: " + vantage_role_names() + ")");
    if (std::find(roles.begin(), roles.end(), *name) == roles.end()) roles.push_back(*name);
  }
  return roles;
}

bool RoleSelection::includes(const std::vector<std::string>& run_from) const {
  if (roles.empty() || run_from.empty()) return true;
  return std::any_of(run_from.begin(), run_from.end(),
                     [&](const std::string& role) { return std::find(roles.begin(), roles.end(), role) != roles.end(); });
}

std::string default_vantage(const RoleSelection& selection) {
  if (!selection.chosen()) return "any";
  std::string out;
  for (const auto& role : selection.roles) out.append(out.empty() ? "" : "+").append(role);
  return out;
}

}  // namespace connectivity

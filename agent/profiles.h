// Vendor profiles: the checks a vendor's port list asks for (configs/profiles/, compiled in),
// with the site's own values (hosts, ports) left as ${variables}. A config pulls one in with
// [[include]] profile = "illiad" and sets the variables in [vars], in the include's `vars`, or
// on the command line (--var name=value).
#pragma once

#include "agent/config.h"
#include "agent/vantage.h"

#include <toml++/toml.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

// The text of the built-in profile `name`; nullopt when there is none.
std::optional<std::string_view> builtin_profile(std::string_view name);
// Every built-in profile's name, sorted.
std::vector<std::string_view> builtin_profile_names();

// Site values that apply to every include: the config's top-level [vars] and --var. Tracks
// which names some included profile declared, so a misspelt variable is an error rather than
// a value silently unused.
class SiteVars {
 public:
  SiteVars(const toml::table* vars_table, const std::vector<std::pair<std::string, std::string>>& command_line);
  // Reports (as a ConfigError) a variable no included profile declares.
  void check_all_declared() const;

 private:
  friend class ProfileExpansion;
  struct Setting {
    std::string value;
    const toml::node* node = nullptr;  // null when it came from the command line
    bool declared = false;
  };
  std::map<std::string, Setting, std::less<>> config_;
  std::map<std::string, Setting, std::less<>> command_line_;
};

// One [[include]] (or --profile), as config.cpp has read it.
struct ProfileInclude {
  std::string profile;                    // a built-in name, or a path to a profile file
  std::string base_dir;                   // where a relative path is looked up
  const toml::node* vars = nullptr;       // the include's own `vars` table, if any
  const toml::node* skip = nullptr;       // `skip = ["check-name", ...]`, if any
  Labels labels;                          // the include's `labels`: set on every check it adds
  std::optional<toml::source_region> where;  // the include table; none for --profile
  std::string context;                    // e.g. `include "illiad"` or `--profile illiad`
  RoleSelection roles;                    // the agent's roles: checks for others are left out
};

// A profile loaded and its variables substituted: the check tables config.cpp parses like its
// own [[check]] tables (they point into `document`, whose source positions they keep).
class ProfileExpansion {
 public:
  ProfileExpansion(const ProfileInclude& include, SiteVars& site);

  const std::string& name() const { return name_; }
  const std::vector<const toml::table*>& checks() const { return checks_; }
  const std::vector<const toml::table*>& inbound() const { return inbound_; }
  std::vector<SkippedCheck>& skipped() { return skipped_; }
  // Checks and watches left out because they run from roles the agent was not given.
  std::size_t left_out() const { return left_out_; }
  // Every role the profile's checks and watches name, loaded or not.
  const std::set<std::string, std::less<>>& roles_named() const { return roles_named_; }

 private:
  struct Declared {
    std::string kind;  // host, port, path, text
    std::string description;
    std::optional<std::string> value;  // after substitution form (IPv6 hosts bracketed)
  };
  void load(const ProfileInclude& include);
  void read_declarations();
  void assign(const ProfileInclude& include, SiteVars& site);
  void expand(const ProfileInclude& include);

  std::string name_;
  std::unique_ptr<toml::table> document_;
  std::map<std::string, Declared, std::less<>> declared_;
  std::vector<const toml::table*> checks_;
  std::vector<const toml::table*> inbound_;
  std::vector<SkippedCheck> skipped_;
  std::size_t left_out_ = 0;
  std::set<std::string, std::less<>> roles_named_;
};

}  // namespace connectivity

// Vendor profiles: every built-in profile loads and labels its checks as the seeds say; a site
// includes them with [[include]], [vars], the include's vars and --var, in that order of
// precedence; every unset or wrong site value is an error naming the variable and where.
#include "agent/config.h"
#include "agent/profiles.h"
#include "tests/support/platform.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace connectivity {
namespace {

std::string error_of(const std::string& text, const ConfigOverrides& overrides = {}) {
  try {
    parse_config(text, "site.toml", builtin_probes(), overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

const CheckConfig* find_check(const Config& config, std::string_view name) {
  for (const auto& check : config.checks)
    if (check.name == name) return &check;
  return nullptr;
}

std::string label(const Labels& labels, std::string_view name) {
  for (const auto& [k, v] : labels)
    if (k == name) return v;
  return "<unset>";
}

// A sample value of each kind, for loading a profile with every variable set.
std::string sample_value(const std::string& kind) {
  if (kind == "port") return "1234";
  if (kind == "path") return "/sample/";
  if (kind == "host") return "host.example.org";
  return "sample";
}

// The profile's variables and kinds, read from its text.
std::map<std::string, std::string> declared_vars(std::string_view text) {
  const toml::table doc = toml::parse(text);
  std::map<std::string, std::string> out;
  if (const auto* vars = doc["vars"].as_table())
    for (const auto& [name, decl] : *vars) out[std::string(name.str())] = *decl.as_table()->get("kind")->value<std::string>();
  return out;
}

TEST(Profiles, TheSeedsSystemsAreBuiltIn) {
  const auto names = builtin_profile_names();
  const std::set<std::string_view> have(names.begin(), names.end());
  for (auto wanted : {"illiad", "bookwhere", "talis-courseflow", "rapido-iso", "iso-ill"})
    EXPECT_TRUE(have.contains(wanted)) << wanted;
  // The compiled-in text is the file in configs/profiles/, so the two cannot drift.
  for (auto name : names) {
    std::ifstream file(std::string(CONNECTIVITY_CONFIGS_DIR) + "/profiles/" + std::string(name) + ".toml");
    std::stringstream text;
    text << file.rdbuf();
    EXPECT_EQ(text.str(), *builtin_profile(name)) << name;
  }
}

// With every variable set, each profile's checks load, and each carries the labels an alert
// quotes: vendor, system, direction (inbound/outbound), required (matching the check) and doc.
TEST(Profiles, EveryProfileLoadsAndLabelsEachCheck) {
  for (auto name : builtin_profile_names()) {
    SCOPED_TRACE(std::string(name));
    ConfigOverrides overrides{{std::string(name)}, {}};
    for (const auto& [var, kind] : declared_vars(*builtin_profile(name))) overrides.vars.emplace_back(var, sample_value(kind));
    Config config;
    ASSERT_NO_THROW(config = parse_config("", "site.toml", builtin_probes(), overrides));
    EXPECT_TRUE(config.skipped.empty());
    ASSERT_FALSE(config.checks.empty());
    EXPECT_EQ(config.profiles, std::vector<std::string>{std::string(name)});
    for (const auto& check : config.checks) {
      SCOPED_TRACE(check.name);
      EXPECT_NE(label(check.labels, "vendor"), "<unset>");
      EXPECT_NE(label(check.labels, "system"), "<unset>");
      const std::string direction = label(check.labels, "direction");
      EXPECT_TRUE(direction == "inbound" || direction == "outbound") << direction;
      EXPECT_EQ(label(check.labels, "required"), check.required ? "true" : "false");
      EXPECT_GT(label(check.labels, "doc").size(), 10u);
      EXPECT_EQ(check.target.to_string().find("${"), std::string::npos);
      EXPECT_FALSE(check.run_from.empty()) << "a built-in profile check must name the roles it runs from";
    }
  }
}

// The watches too: every [[check]] and [[inbound]] of a built-in profile names where it runs.
TEST(Profiles, EveryBuiltInCheckAndWatchNamesItsRoles) {
  for (auto name : builtin_profile_names()) {
    const toml::table profile = toml::parse(*builtin_profile(name));
    for (const char* kind : {"check", "inbound"}) {
      const toml::array* tables = profile[kind].as_array();
      if (!tables) continue;
      for (const auto& table : *tables) {
        const toml::array* run_from = table.as_table()->get_as<toml::array>("run_from");
        EXPECT_TRUE(run_from && !run_from->empty()) << name << ": " << *table.as_table();
      }
    }
  }
}

TEST(Profiles, IlliadHasEverySeedRowWithItsProbeKind) {
  const Config config = parse_config("", "site.toml", builtin_probes(),
                                     {{"illiad"},
                                      {{"sql_host", "db.example.edu"}, {"web_host", "illiad.example.edu"},
                                       {"catalogue_host", "opac.example.edu"}, {"patronapi_host", "iii.example.edu"},
                                       {"symphony_host", "sirsi.example.edu"}, {"ldap_host", "ldap.example.edu"},
                                       {"file_share_host", "files.example.edu"}, {"odyssey_partner_host", "ill.partner.example.org"},
                                       {"staff_client_host", "staff-pc-1.example.edu"}, {"iso_partner_host", "iso.partner.example.org"}}});
  // The kind, the target and where it runs from: who talks to whom, row by row of the list.
  std::map<std::string, std::string> kind_and_target;
  for (const auto& check : config.checks) {
    std::string from;
    for (const auto& role : check.run_from) from += (from.empty() ? "" : ",") + role;
    kind_and_target[check.name] = std::string(check.kind->name) + " " + check.target.to_string() +
                                  (check.required ? "" : " optional") + " from " + from;
  }
  const std::map<std::string, std::string> expected{
      {"illiad-sql", "tds db.example.edu:1433 from illiad-web-server,staff-client"},
      {"illiad-web-pages", "http https://illiad.example.edu/illiad/logon.html from outside"},
      {"oclc-webservices", "tls webservices.oclc.org:443 from illiad-web-server"},
      {"atlas-update", "tls update.atlas-sys.com:443 from illiad-web-server"},
      {"illiad-client-updates", "tls update.atlas-sys.com:443 from staff-client"},
      {"illiad-web-platform", "tls illiad.example.edu:443 from staff-client"},
      {"illiad-odyssey", "tcp illiad.example.edu:7968 from staff-client,outside"},
      {"illiad-odyssey-outbound", "tcp ill.partner.example.org:7968 optional from illiad-web-server"},
      {"illiad-odyssey-to-staff-client", "tcp staff-pc-1.example.edu:7968 optional from illiad-web-server"},
      {"oclc-article-exchange", "http https://ill.sd00.worldcat.org/articleexchange/ from illiad-web-server"},
      {"illiad-z3950", "z3950 opac.example.edu:210 optional from staff-client"},
      {"illiad-iso-ill", "isoill illiad.example.edu:1611 optional from outside"},
      {"illiad-iso-ill-outbound", "isoill iso.partner.example.org:1611 optional from illiad-web-server"},
      {"illiad-patronapi", "http http://iii.example.edu:4500/PATRONAPI/ optional from illiad-web-server"},
      {"illiad-symphonyapi", "http http://sirsi.example.edu:8080/symws/ optional from illiad-web-server"},
      {"illiad-ldap", "ldap ldap.example.edu:389 optional from illiad-web-server"},
      {"illiad-ldaps", "ldap ldap.example.edu:636 optional from illiad-web-server"},
      {"illiad-rdp", "tcp illiad.example.edu:3389 optional from outside"},
      {"illiad-file-share", "tcp files.example.edu:445 optional from illiad-web-server,staff-client"},
  };
  EXPECT_EQ(kind_and_target, expected);
}

TEST(Profiles, OptionalChecksWithUnsetVariablesAreSkippedAndListed) {
  const Config config = parse_config("", "site.toml", builtin_probes(),
                                     {{"illiad"}, {{"sql_host", "db.example.edu"}, {"web_host", "illiad.example.edu"}}});
  std::map<std::string, std::vector<std::string>> skipped;
  for (const auto& s : config.skipped) {
    skipped[s.name] = s.missing_vars;
    EXPECT_FALSE(s.required);
    EXPECT_EQ(label(s.labels, "required"), "false");
    EXPECT_NE(label(s.labels, "doc"), "<unset>");
  }
  EXPECT_EQ(skipped, (std::map<std::string, std::vector<std::string>>{
                         {"illiad-z3950", {"catalogue_host"}},
                         {"illiad-patronapi", {"patronapi_host"}},
                         {"illiad-symphonyapi", {"symphony_host"}},
                         {"illiad-ldap", {"ldap_host"}},
                         {"illiad-ldaps", {"ldap_host"}},
                         {"illiad-file-share", {"file_share_host"}},
                         {"illiad-odyssey-outbound", {"odyssey_partner_host"}},
                         {"illiad-odyssey-to-staff-client", {"staff_client_host"}},
                         {"illiad-iso-ill-outbound", {"iso_partner_host"}}}));
  // Optional checks that need only variables that are set still run.
  EXPECT_NE(find_check(config, "illiad-rdp"), nullptr);
  EXPECT_NE(find_check(config, "illiad-iso-ill"), nullptr);
}

TEST(Profiles, UnsetRequiredVariablesAreOneErrorNamingEach) {
  const std::string from_file = error_of("[[include]]\nprofile = \"illiad\"\n");
  EXPECT_EQ(from_file.rfind("site.toml:1:1: include \"illiad\": profile \"illiad\" needs sql_host (", 0), 0u) << from_file;
  EXPECT_NE(from_file.find("for illiad-sql) and web_host ("), std::string::npos) << from_file;
  EXPECT_NE(from_file.find("Set them in [vars], in this include's vars, or with --var sql_host=... --var web_host=..."),
            std::string::npos)
      << from_file;

  const std::string from_command_line = error_of("", {{"illiad"}, {{"web_host", "w.example.edu"}}});
  EXPECT_EQ(from_command_line.rfind("--profile illiad: profile \"illiad\" needs sql_host (the SQL Server", 0), 0u)
      << from_command_line;
  EXPECT_NE(from_command_line.find("Set it with --var sql_host=..."), std::string::npos) << from_command_line;
}

TEST(Profiles, CommandLineOverIncludeOverVarsOverDefault) {
  const std::string text = R"(
[vars]
sql_host = "from-vars.example.edu"
web_host = "web.example.edu"
sql_port = "1344"

[[include]]
profile = "illiad"
vars = { sql_host = "from-include.example.edu" }
)";
  const Config from_include = parse_config(text, "site.toml");
  EXPECT_EQ(find_check(from_include, "illiad-sql")->target.to_string(), "from-include.example.edu:1344");
  EXPECT_EQ(find_check(from_include, "illiad-odyssey")->target.to_string(), "web.example.edu:7968");

  const Config from_command_line = parse_config(text, "site.toml", builtin_probes(), {{}, {{"sql_host", "cli.example.edu"}}});
  EXPECT_EQ(find_check(from_command_line, "illiad-sql")->target.to_string(), "cli.example.edu:1344");

  const Config defaults = parse_config("[[include]]\nprofile = \"rapido-iso\"\nvars = { illiad_host = \"i.example.edu\" }\n", "site.toml");
  EXPECT_EQ(find_check(defaults, "rapido-alma-iso")->target.to_string(), "na03.alma.exlibrisgroup.com:9001");
}

TEST(Profiles, IncludeLabelsSkipAndOwnChecksTogether) {
  const Config config = parse_config(R"(
[agent]
labels = { site = "main", vendor = "overridden-by-profile" }

[[check]]
name = "own"
probe = "tcp"
target = "127.0.0.1:9"

[[include]]
profile = "talis-courseflow"
vars = { catalogue_host = "::1", catalogue_port = 2200 }
labels = { team = "catalogue", system = "courseflow-eu" }

[[include]]
profile = "bookwhere"
vars = { egress_host = "192.0.2.1" }
skip = ["bookwhere-support-5500", "bookwhere-support-5501"]
)",
                                     "site.toml");
  ASSERT_EQ(config.checks.front().name, "own");
  const CheckConfig* talis = find_check(config, "talis-catalogue-z3950");
  ASSERT_NE(talis, nullptr);
  EXPECT_EQ(talis->target.to_string(), "[::1]:2200");  // an IPv6 host is bracketed where it lands
  EXPECT_EQ(label(talis->labels, "site"), "main");
  EXPECT_EQ(label(talis->labels, "vendor"), "talis");         // the profile's over the agent's
  EXPECT_EQ(label(talis->labels, "system"), "courseflow-eu");  // the include's over the profile's
  EXPECT_EQ(label(talis->labels, "team"), "catalogue");
  EXPECT_EQ(find_check(config, "bookwhere-support-5500"), nullptr);
  EXPECT_EQ(find_check(config, "bookwhere-z3950-9991")->target.to_string(), "192.0.2.1:9991");
  EXPECT_EQ(config.profiles, (std::vector<std::string>{"talis-courseflow", "bookwhere"}));
}

TEST(Profiles, EveryWrongSiteValueNamesTheVariableAndWhereItWasSet) {
  struct Case {
    const char* what;
    std::string text;
    ConfigOverrides overrides;
    std::string expected;
  };
  const std::string talis = "[[include]]\nprofile = \"talis-courseflow\"\n";
  const std::vector<Case> cases{
      {"port out of range", "[vars]\ncatalogue_host = \"h.example\"\ncatalogue_port = 99999\n" + talis, {},
       "site.toml:3:18: [vars]: variable \"catalogue_port\" (port): \"99999\" must be a port number from 1 to 65535"},
      {"host with a port", "[vars]\ncatalogue_host = \"h.example:210\"\n" + talis, {},
       "site.toml:2:18: [vars]: variable \"catalogue_host\" (host): \"h.example:210\" a host only"},
      {"host not a DNS name", talis + "vars = { catalogue_host = \"bad host\" }\n", {},
       "site.toml:3:27: include \"talis-courseflow\": variable \"catalogue_host\" (host): \"bad host\" character ' '"},
      {"misspelt [vars] name", "[vars]\ncatalog_host = \"h\"\n" + talis + "vars = { catalogue_host = \"h\" }\n", {},
       "site.toml:2:16: [vars]: no included profile has a variable \"catalog_host\""},
      {"misspelt include var", talis + "vars = { catalog_host = \"h\" }\n", {},
       "site.toml:3:25: include \"talis-courseflow\": profile \"talis-courseflow\" has no variable \"catalog_host\" (it has: catalogue_host, catalogue_port)"},
      {"misspelt --var", talis, {{}, {{"catalogue_host", "h"}, {"catalog_port", "1"}}},
       "--var catalog_port: no included profile has this variable"},
      {"bad --var value", talis, {{}, {{"catalogue_host", "h"}, {"catalogue_port", "x"}}},
       "--var catalogue_port: variable \"catalogue_port\" (port): \"x\" must be a port number"},
      {"unknown profile", "[[include]]\nprofile = \"iliad\"\n", {},
       "site.toml:1:1: include \"iliad\": no profile \"iliad\" (built in: bookwhere, illiad, iso-ill, rapido-iso, talis-courseflow; or give a file path)"},
      {"unknown skip", talis + "vars = { catalogue_host = \"h\" }\nskip = [\"talis-z3950\"]\n", {},
       "site.toml:4:8: include \"talis-courseflow\": skip: profile \"talis-courseflow\" has no check \"talis-z3950\""},
      {"unknown include key", talis + "var = { catalogue_host = \"h\" }\n", {}, "site.toml:3:1: include \"talis-courseflow\": unknown key \"var\""},
      {"include without profile", "[[include]]\nvars = {}\n", {}, "site.toml:1:1: include #1: missing required key \"profile\""},
      {"include not an array", "include = \"illiad\"\n", {}, "site.toml:1:11: \"include\" must be an array of tables"},
      {"vars not a table", "vars = 3\n", {}, "site.toml:1:8: [vars] must be a table"},
      {"var not a string", "[vars]\ncatalogue_host = true\n" + talis, {}, "site.toml:2:18: [vars]: \"catalogue_host\" must be a string"},
      {"profile check collides", "[[check]]\nname = \"talis-catalogue-z3950\"\nprobe = \"tcp\"\ntarget = \"h:1\"\n" + talis +
           "vars = { catalogue_host = \"h\" }\n", {},
       ": check \"talis-catalogue-z3950\": duplicate check name"},
  };
  for (const auto& c : cases) {
    const std::string message = error_of(c.text, c.overrides);
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.what << "\n  got:      " << message << "\n  expected: " << c.expected;
  }
  EXPECT_THROW(parse_var_assignment("sql_host"), ConfigError);
  EXPECT_THROW(parse_var_assignment("=x"), ConfigError);
  EXPECT_EQ(parse_var_assignment("path=/a=b"), (std::pair<std::string, std::string>{"path", "/a=b"}));
}

// A site's own profile file, found beside the config; its mistakes point into that file.
class ProfileFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("profile-test"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }
  // The path the agent makes of a profile named relative to site.toml: joined with the system's
  // separator (a backslash on Windows).
  std::string beside(const std::string& name) const { return (std::filesystem::path(dir_) / name).string(); }
  std::string load_error() {
    try {
      load_config_file(dir_ + "/site.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "<no error>";
  }
  std::string dir_;
};

constexpr const char* kLocalProfile = R"([profile]
description = "our own"

[vars.host]
kind = "host"
description = "the host"

[[check]]
name = "local-web"
probe = "tcp"
target = "${host}:8443"
labels = { vendor = "us", system = "web", direction = "inbound", doc = "local rule" }
)";

TEST_F(ProfileFile, IsFoundBesideTheConfig) {
  write("local.toml", kLocalProfile);
  write("site.toml", "[[include]]\nprofile = \"./local.toml\"\nvars = { host = \"10.0.0.1\" }\n");
  const Config config = load_config_file(dir_ + "/site.toml");
  ASSERT_EQ(config.checks.size(), 1u);
  EXPECT_EQ(config.checks[0].target.to_string(), "10.0.0.1:8443");
  EXPECT_EQ(config.profiles, std::vector<std::string>{"local"});
}

TEST_F(ProfileFile, ItsMistakesPointIntoIt) {
  struct Case {
    const char* what;
    std::string profile;
    std::string expected;
  };
  const std::string text = kLocalProfile;
  const std::vector<Case> cases{
      {"undeclared placeholder", std::string(text).replace(text.find("${host}"), 7, "${hots}"),
       "local.toml:11:10: profile \"local\": ${hots} is not declared under [vars]"},
      {"unclosed placeholder", std::string(text).replace(text.find("${host}"), 7, "${host"),
       "local.toml:11:10: profile \"local\": \"${\" without its closing \"}\""},
      {"unknown kind", std::string(text).replace(text.find("\"host\"\ndesc"), 6, "\"hostname\""),
       "local.toml:5:8: profile \"local\" variable \"host\": key \"kind\": must be one of"},
      {"bad default", std::string(text).replace(text.find("description = \"the host\""), 0, "default = \"a b\"\n"),
       "local.toml:6:11: profile \"local\" variable \"host\": key \"default\": character ' '"},
      {"no [profile]", text.substr(text.find("[vars.host]")), "profile \"local\": missing its [profile] table"},
      {"unknown root key", text + "[agent]\n", "local.toml:13:1: profile \"local\": unknown key \"agent\""},
      {"TOML syntax", text + "[[check\n", "local.toml:13:8:"},
  };
  for (const auto& c : cases) {
    write("local.toml", c.profile);
    write("site.toml", "[[include]]\nprofile = \"local.toml\"\nvars = { host = \"h\" }\n");
    const std::string message = load_error();
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.what << "\n  got:      " << message << "\n  expected: " << c.expected;
  }
  write("site.toml", "[[include]]\nprofile = \"missing.toml\"\n");
  EXPECT_EQ(load_error(), dir_ + "/site.toml:1:1: include \"missing.toml\": profile file \"" + beside("missing.toml") +
                             "\": cannot read the file: No such file or directory");
}

// A profile path naming /dev/zero (or any runaway file) is cut off at the cap, and a directory
// is named as one, both at the include.
TEST_F(ProfileFile, AnEndlessFileOrADirectoryIsRefusedAtTheInclude) {
  const std::string endless = testing::endless_file(dir_);  // /dev/zero on Linux
  write("site.toml", "[agent]\nallow_empty = true\n[[include]]\nprofile = \"" + endless + "\"\n");
  EXPECT_EQ(load_error(), dir_ + "/site.toml:3:1: include \"" + endless + "\": profile file \"" + endless +
                              "\": larger than 16 MiB, the most a config or profile file may be");
  std::filesystem::create_directory(dir_ + "/shelf.toml");
  write("site.toml", "[[include]]\nprofile = \"shelf.toml\"\n");
  EXPECT_EQ(load_error(), dir_ + "/site.toml:1:1: include \"shelf.toml\": profile file \"" + beside("shelf.toml") + "\": is a directory");
}

// Every check a profile has is optional and skipped: nothing would run, which is an error
// naming the skipped checks, unless the config says it means it.
TEST_F(ProfileFile, OnlySkippedChecksIsNothingToRun) {
  std::string optional = kLocalProfile;
  optional.replace(optional.find("labels ="), 0, "required = false\n");
  write("local.toml", optional);
  write("site.toml", "[[include]]\nprofile = \"local.toml\"\n");
  EXPECT_EQ(load_error(), dir_ + "/site.toml:1:1: no [[check]] or [[inbound]] to run (1 optional check skipped: its variables "
                                 "are unset); to run none on purpose, set allow_empty = true in [agent]");
  write("site.toml", "[agent]\nallow_empty = true\n[[include]]\nprofile = \"local.toml\"\n");
  EXPECT_EQ(load_error(), "<no error>");
}

// ---- Vantage roles ------------------------------------------------------------------------

std::set<std::string> check_names(const Config& config) {
  std::set<std::string> names;
  for (const auto& check : config.checks) names.insert(check.name);
  return names;
}

ConfigOverrides illiad_with_roles(std::vector<std::string> roles) {
  ConfigOverrides overrides;
  overrides.profiles = {"illiad"};
  overrides.vars = {{"sql_host", "db.example.edu"}, {"web_host", "illiad.example.edu"}};
  overrides.roles = std::move(roles);
  return overrides;
}

// `check --profile illiad --role staff-client` runs exactly what a staff PC must reach, and
// every series says it comes from a staff client.
TEST(Roles, ARoleLoadsExactlyItsChecks) {
  const Config staff = parse_config("", "site.toml", builtin_probes(), illiad_with_roles({"staff-client"}));
  EXPECT_EQ(check_names(staff), (std::set<std::string>{"illiad-sql", "illiad-client-updates", "illiad-web-platform",
                                                       "illiad-odyssey"}));
  for (const auto& check : staff.checks) EXPECT_EQ(label(check.labels, "vantage"), "staff-client") << check.name;
  // Its optional checks with unset variables are still listed; the web server's are not.
  std::set<std::string> skipped;
  for (const auto& s : staff.skipped) skipped.insert(s.name);
  EXPECT_EQ(skipped, (std::set<std::string>{"illiad-z3950", "illiad-file-share"}));
  EXPECT_EQ(staff.agent.roles, std::vector<std::string>{"staff-client"});
  // 19 checks in the profile: 4 loaded, 2 skipped for their variables, 13 for other hosts.
  EXPECT_EQ(staff.left_out_for_roles, 13u);

  const Config web = parse_config("", "site.toml", builtin_probes(), illiad_with_roles({"illiad-web-server"}));
  EXPECT_EQ(check_names(web), (std::set<std::string>{"illiad-sql", "oclc-webservices", "atlas-update",
                                                     "oclc-article-exchange"}));
  // Two roles: the union, and a vantage that names both.
  const Config both = parse_config("", "site.toml", builtin_probes(), illiad_with_roles({"illiad-web-server", "staff-client"}));
  EXPECT_EQ(check_names(both).size(), 7u);
  EXPECT_EQ(both.agent.vantage, "illiad-web-server+staff-client");
  // No role: every check, as before roles existed, with vantage "any".
  const Config all = parse_config("", "site.toml", builtin_probes(), illiad_with_roles({}));
  EXPECT_EQ(all.left_out_for_roles, 0u);
  EXPECT_EQ(all.agent.vantage, "any");
  EXPECT_EQ(check_names(all).size(), 10u);
  EXPECT_TRUE(std::all_of(all.checks.begin(), all.checks.end(),
                          [](const CheckConfig& c) { return label(c.labels, "vantage") == "any"; }));
}

// A host asks only for the variables of its own checks: the web server has no use for the
// web_host its staff clients reach, and the outside host none for the SQL Server.
TEST(Roles, OnlyTheRolesChecksNeedTheirVariables) {
  ConfigOverrides web;
  web.profiles = {"illiad"};
  web.vars = {{"sql_host", "db.example.edu"}};
  web.roles = {"illiad-web-server"};
  EXPECT_EQ(error_of("", web), "<no error>");
  web.roles = {"staff-client"};
  EXPECT_NE(error_of("", web).find("needs web_host"), std::string::npos) << error_of("", web);
  ConfigOverrides outside;
  outside.profiles = {"illiad"};
  outside.vars = {{"web_host", "illiad.example.edu"}};
  outside.roles = {"outside"};
  EXPECT_EQ(error_of("", outside), "<no error>");
}

// The Talis profile splits across two hosts: the watch on the catalogue host, the Init from
// outside the firewall.
TEST(Roles, WatchesFollowTheirRolesToo) {
  ConfigOverrides talis;
  talis.profiles = {"talis-courseflow"};
  talis.vars = {{"catalogue_host", "opac.example.edu"}};
  talis.roles = {"catalogue-host"};
  const Config catalogue = parse_config("", "site.toml", builtin_probes(), talis);
  EXPECT_TRUE(catalogue.checks.empty());
  ASSERT_EQ(catalogue.inbound.size(), 1u);
  EXPECT_EQ(label(catalogue.inbound[0].labels, "vantage"), "catalogue-host");
  talis.roles = {"outside"};
  const Config outside = parse_config("", "site.toml", builtin_probes(), talis);
  EXPECT_EQ(check_names(outside), std::set<std::string>{"talis-catalogue-z3950"});
  EXPECT_TRUE(outside.inbound.empty());
}

// Hand-written checks: run_from filters them like a profile's; one without it runs everywhere.
TEST(Roles, ASitesOwnChecksMayNameRoles) {
  const std::string text = R"([agent]
roles = ["staff-client"]

[[check]]
name = "printer"
probe = "tcp"
target = "printer.example.edu:9100"
run_from = ["staff-client"]

[[check]]
name = "backup"
probe = "tcp"
target = "backup.example.edu:22"
run_from = ["sql-server"]

[[check]]
name = "gateway"
probe = "tcp"
target = "gw.example.edu:22"
)";
  const Config config = parse_config(text, "site.toml");
  EXPECT_EQ(check_names(config), (std::set<std::string>{"printer", "gateway"}));
  EXPECT_EQ(config.left_out_for_roles, 1u);
  EXPECT_EQ(config.roles_named, (std::vector<std::string>{"sql-server", "staff-client"}));
  // --role replaces [agent] roles.
  ConfigOverrides sql;
  sql.roles = {"sql-server"};
  EXPECT_EQ(check_names(parse_config(text, "site.toml", builtin_probes(), sql)),
            (std::set<std::string>{"backup", "gateway"}));
  // [agent] vantage names this host in the label; the roles still choose the checks.
  const Config named = parse_config("[agent]\nvantage = \"staff-pc-3\"\n" + text.substr(text.find("\n\n")), "site.toml",
                                    builtin_probes(), sql);
  EXPECT_EQ(named.agent.vantage, "staff-pc-3");
  for (const auto& check : named.checks) EXPECT_EQ(label(check.labels, "vantage"), "staff-pc-3");
}

// Every mistake names the known roles, and where it was made.
TEST(Roles, EveryRoleMistakeNamesTheKnownRoles) {
  const std::string known = "illiad-web-server, staff-client, sql-server, catalogue-host, ill-server, outside";
  EXPECT_EQ(error_of("", illiad_with_roles({"staff"})), "--role staff: unknown role (known: " + known + ")");
  EXPECT_EQ(error_of("", illiad_with_roles({"sql-server"})),
            "--role sql-server: role \"sql-server\": no check or watch in this config runs from it (they run from: "
            "illiad-web-server, outside, staff-client; every role: " + known + ")");
  EXPECT_EQ(error_of("[agent]\nroles = [\"staff-client\", \"webserver\"]\n"),
            "site.toml:2:26: [agent]: roles: unknown role \"webserver\" (known: " + known + ")");
  EXPECT_EQ(error_of("[agent]\nroles = []\n"),
            "site.toml:2:9: [agent]: roles must be a list of one or more roles (" + known + ")");
  EXPECT_EQ(error_of("[agent]\nroles = [\"outside\"]\n[[include]]\nprofile = \"bookwhere\"\nvars = { egress_host = \"e.example.org\" }\n"),
            "site.toml:2:9: [agent]: roles: role \"outside\": no check or watch in this config runs from it (they run from: "
            "staff-client; every role: " + known + ")");
  EXPECT_EQ(error_of("[[check]]\nname = \"a\"\nprobe = \"tcp\"\ntarget = \"a.example.edu:1\"\nrun_from = [\"staf-client\"]\n"),
            "site.toml:5:13: check \"a\": run_from: unknown role \"staf-client\" (known: " + known + ")");
  EXPECT_EQ(error_of("[[check]]\nname = \"a\"\nprobe = \"tcp\"\ntarget = \"a.example.edu:1\"\nrun_from = \"outside\"\n"),
            "site.toml:5:12: check \"a\": run_from must be a list of one or more roles (" + known + ")");
  EXPECT_EQ(error_of("[agent]\nlabels = { vantage = \"x\" }\n"),
            "site.toml:2:12: [agent]: label name \"vantage\" is set by the agent: write vantage = \"...\" in [agent]");
  EXPECT_EQ(error_of("[agent]\nvantage = \"\"\n"), "site.toml:2:11: [agent]: key \"vantage\": must be 1 to 64 characters");
  // Roles that leave nothing to run say so, rather than starting an agent that tests nothing.
  EXPECT_EQ(error_of("[agent]\nroles = [\"outside\"]\n[[check]]\nname = \"a\"\nprobe = \"tcp\"\ntarget = \"a.example.edu:1\"\n"
                     "run_from = [\"staff-client\"]\n[[check]]\nname = \"b\"\nprobe = \"tcp\"\ntarget = \"b.example.edu:1\"\n"
                     "run_from = [\"outside\", \"staff-client\"]\nrequired = false\n"),
            "<no error>");
}

}  // namespace
}  // namespace connectivity

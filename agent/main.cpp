// connectivity-agent: parses the command line and hands over to the runtime.
#include "agent/log.h"
#include "agent/preflight.h"
#include "agent/runtime.h"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace {

// Windows has no SIGHUP: there, without the endpoint, a changed config takes a restart.
#if defined(_WIN32)
constexpr const char* kLifecycleHelp = "Serve POST /-/reload (without it, 403; a restart reloads)";
#else
constexpr const char* kLifecycleHelp = "Serve POST /-/reload (without it, 403; SIGHUP always reloads)";
#endif

// --config, --profile and --var, as the agent and both subcommands take them.
struct ConfigFlags {
  std::optional<std::string> config_path;
  std::vector<std::string> profiles;
  std::vector<std::string> vars;

  void add_to(CLI::App& app, const char* config_help) {
    app.add_option("--config", config_path, config_help);
    app.add_option("--profile", profiles,
                   "Include a vendor profile (illiad, bookwhere, talis-courseflow, rapido-iso, iso-ill, or a file); repeatable");
    app.add_option("--var", vars, "Set a profile variable, NAME=VALUE (e.g. sql_host=illiad-db.example.edu); repeatable");
  }
  // Throws ConfigError for a --var without '='.
  connectivity::ConfigOverrides overrides() const {
    connectivity::ConfigOverrides out;
    out.profiles = profiles;
    for (const auto& v : vars) out.vars.push_back(connectivity::parse_var_assignment(v));
    return out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace connectivity;
  CLI::App app{"connectivity-agent: watches the network paths library resource-sharing systems depend on "
               "(ILLiad, Alma/Rapido, Z39.50, Talis Courseflow) and exposes them as Prometheus metrics."};
  app.set_version_flag("--version", std::string("connectivity-agent ") + std::string(agent_version()));

  AgentOptions options;
  ConfigFlags agent_flags;
  std::string log_level = "info";
  agent_flags.add_to(app, "TOML config file (default: the embedded ILLiad essentials, or only the --profile list)");
  // Checked as the config's `listen` is, so a bad address is a usage error (exit 2), not a
  // failure to start (exit 1).
  app.add_option("--listen", options.listen, "HTTP listen address host:port, overrides [agent].listen")
      ->check([](const std::string& listen) { return listen_address_problem(listen).value_or(""); });
  app.add_flag("--web.enable-lifecycle", options.web_enable_lifecycle, kLifecycleHelp);
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  ConfigFlags validate_flags;
  auto* validate = app.add_subcommand("validate", "Check a config (and its profiles); exit 0 when valid, 2 when not");
  validate_flags.add_to(*validate, "TOML config file");

  ConfigFlags check_flags;
  std::string format = "table";
  bool only_required = false;
  auto* check = app.add_subcommand(
      "check", "Run every check once, now, and report: exit 0 when every required check passes, 1 when one fails, "
               "2 for a bad config");
  check_flags.add_to(*check, "TOML config file (default: the --profile list, or the embedded ILLiad essentials)");
  check->add_option("--format", format, "table (for people) or json (for scripts)")->check(CLI::IsMember({"table", "json"}));
  check->add_flag("--only-required", only_required, "Run only required checks");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  log::set_level(*log::parse_level(log_level));
  try {
    if (*validate) return validate_command(validate_flags.config_path, validate_flags.overrides());
    if (*check) {
      // Probes log nothing a table reader needs; warnings would interleave with the progress line.
      if (log_level == "info") log::set_level(log::Level::error);
      return check_command(CheckCommandOptions{.config_path = check_flags.config_path,
                                               .overrides = check_flags.overrides(),
                                               .format = format == "json" ? ReportFormat::json : ReportFormat::table,
                                               .only_required = only_required},
                           agent_version());
    }
    options.config_path = agent_flags.config_path;
    options.overrides = agent_flags.overrides();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return run_agent_command(options);
}

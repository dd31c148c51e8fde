// connectivity-agent: parses the command line and hands over to the runtime.
#include "agent/log.h"
#include "agent/preflight.h"
#include "agent/runtime.h"
#include "agent/vantage.h"
#if defined(_WIN32)
#include "agent/windows_service.h"
#endif

#include <CLI/CLI.hpp>

#include <cstdio>

namespace {

// Windows has no SIGHUP: there, without the endpoint, a changed config takes a restart.
#if defined(_WIN32)
constexpr const char* kLifecycleHelp = "Serve POST /-/reload (without it, 403; a restart reloads)";
#else
constexpr const char* kLifecycleHelp = "Serve POST /-/reload (without it, 403; SIGHUP always reloads)";
#endif

// --config, --profile, --var and --role, as the agent and its subcommands take them.
struct ConfigFlags {
  std::optional<std::string> config_path;
  std::vector<std::string> profiles;
  std::vector<std::string> vars;
  std::vector<std::string> roles;

  void add_to(CLI::App& app, const char* config_help) {
    app.add_option("--config", config_path, config_help);
    // The lists may also come in one argument (an MSI property): profiles split at commas, vars at semicolons.
    app.add_option("--profile", profiles,
                   "Include a vendor profile (illiad, bookwhere, talis-courseflow, rapido-iso, iso-ill, or a file); "
                   "repeatable, or comma-separated")
        ->delimiter(',');
    app.add_option("--var", vars,
                   "Set a profile variable, NAME=VALUE (e.g. sql_host=illiad-db.example.edu); repeatable, or "
                   "semicolon-separated")
        ->delimiter(';');
    app.add_option("--role", roles,
                   "Run only the checks meant to start from this host's role (" + connectivity::vantage_role_names() +
                       "); repeatable, or comma-separated; overrides [agent].roles")
        ->delimiter(',');
  }
  // Throws ConfigError for a --var without '='.
  connectivity::ConfigOverrides overrides() const {
    connectivity::ConfigOverrides out;
    out.profiles = profiles;
    for (const auto& v : vars) out.vars.push_back(connectivity::parse_var_assignment(v));
    out.roles = roles;
    return out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace connectivity;
  CLI::App app{"connectivity-agent: watches the network paths library resource-sharing systems depend on "
               "(ILLiad, Alma/Rapido, Z39.50, Talis Courseflow) and exposes them as Prometheus metrics."};
  app.set_version_flag("--version", version_text());

  AgentOptions options;
  ConfigFlags agent_flags;
  std::string log_level = "info";
  agent_flags.add_to(app, "TOML config file (default: the embedded ILLiad essentials, or only the --profile list)");
  // Checked as the config's `listen` is, so a bad address is a usage error (exit 2), not a
  // failure to start (exit 1).
  // --web.listen-address: the name Prometheus' own exporters use, so an admin's habit works.
  app.add_option("--listen,--web.listen-address", options.listen,
                 "HTTP listen address host:port (\"[::]:9470\" for IPv6); repeatable; overrides [agent].listen")
      ->check([](const std::string& listen) { return listen_address_problem(listen).value_or(""); });
  app.add_option("--web.config.file", options.web_config_file,
                 "Web config (TLS, basic auth, headers) in the exporters' YAML format; overrides [agent].web_config_file");
  app.add_flag("--web.enable-lifecycle", options.web_enable_lifecycle, kLifecycleHelp);
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  std::optional<std::string> log_file;
  app.add_option("--log-file", log_file, "Append the log lines to this file as well as to stderr");
#if defined(_WIN32)
  bool service_mode = false;
  app.add_flag(std::string(service::kServiceModeFlag), service_mode)->group("");  // given by the SCM only
  service::ServiceSettings install_settings;
  ConfigFlags install_flags;
  auto* service_command = app.add_subcommand("service", "Install, start, stop, reload or remove the Windows service (elevated prompt)");
  service_command->require_subcommand(1);
  auto* service_install = service_command->add_subcommand(
      "install", "Register the service (auto start, account NT SERVICE\\connectivity-agent), its event log source and a "
                 "firewall rule for its port");
  install_flags.add_to(*service_install, "TOML config file (default: %ProgramData%\\connectivity-agent\\agent.toml, "
                                         "written from the embedded default when missing)");
  service_install->add_option("--listen", install_settings.listen, "HTTP listen address host:port")
      ->check([](const std::string& listen) { return listen_address_problem(listen).value_or(""); });
  service_install->add_option("--log-file", install_settings.log_file, "Also append the service's log to this file");
  service_install->add_flag("--web.enable-lifecycle", install_settings.web_enable_lifecycle, kLifecycleHelp);
  service_install->add_option("--web.config.file", install_settings.web_config_file,
                              "Web config (TLS, basic auth, headers) in the exporters' YAML format");
  auto* service_uninstall = service_command->add_subcommand("uninstall", "Stop and remove the service, its event source and firewall rule (the config stays)");
  auto* service_start = service_command->add_subcommand("start", "Start the service and wait until it serves /metrics");
  auto* service_stop = service_command->add_subcommand("stop", "Stop the service and wait until it has");
  auto* service_reload = service_command->add_subcommand("reload", "Make the service re-read its config (PARAMCHANGE)");
  std::string firewall_action;
  service::ServiceSettings firewall_settings;
  ConfigFlags firewall_flags;
  auto* service_firewall = service_command->add_subcommand(
      "firewall", "Add or delete the inbound rule for the metrics port of the installed service (or of a service with these flags)");
  service_firewall->add_option("action", firewall_action, "add or delete")->required()->check(CLI::IsMember({"add", "delete"}));
  firewall_flags.add_to(*service_firewall, "TOML config file, as the service is given it");
  service_firewall->add_option("--listen", firewall_settings.listen, "HTTP listen address host:port, as the service is given it");
#endif

  ConfigFlags validate_flags;
  auto* validate = app.add_subcommand("validate", "Check a config (and its profiles); exit 0 when valid, 2 when not");
  validate_flags.add_to(*validate, "TOML config file");
  std::optional<std::string> validate_web_config;
  validate->add_option("--web.config.file", validate_web_config, "Check this web config too (else the config's own)");

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
  if (log_file) {
    if (auto problem = log::add_file_sink(*log_file)) {
      std::fprintf(stderr, "--log-file: %s\n", problem->c_str());
      return 2;
    }
  }
#if defined(_WIN32)
  if (*service_command) {
    if (*service_uninstall) return service::uninstall();
    if (*service_start) return service::start();
    if (*service_stop) return service::stop();
    if (*service_reload) return service::reload();
    if (*service_firewall) {
      firewall_settings.config_path = firewall_flags.config_path;
      firewall_settings.profiles = firewall_flags.profiles;
      firewall_settings.vars = firewall_flags.vars;
      firewall_settings.roles = firewall_flags.roles;
      return service::firewall_rule(firewall_action == "add", firewall_settings);
    }
    install_settings.config_path = install_flags.config_path;
    install_settings.profiles = install_flags.profiles;
    install_settings.vars = install_flags.vars;
    install_settings.roles = install_flags.roles;
    return service::install(install_settings);
  }
#endif
  try {
    if (*validate) return validate_command(validate_flags.config_path, validate_flags.overrides(), validate_web_config);
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
#if defined(_WIN32)
  if (service_mode) return service::run_under_service_manager(options);
#endif
  return run_agent_command(options);
}

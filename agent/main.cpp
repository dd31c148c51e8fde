// connectivity-agent: parses the command line and hands over to the runtime.
#include "agent/log.h"
#include "agent/runtime.h"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  using namespace connectivity;
  CLI::App app{"connectivity-agent: watches the network paths library resource-sharing systems depend on "
               "(ILLiad, Alma/Rapido, Z39.50, Talis Courseflow) and exposes them as Prometheus metrics."};
  app.set_version_flag("--version", std::string("connectivity-agent ") + std::string(agent_version()));

  AgentOptions options;
  std::string log_level = "info";
  app.add_option("--config", options.config_path, "TOML config file (default: the embedded ILLiad essentials)");
  app.add_option("--listen", options.listen, "HTTP listen address host:port, overrides [agent].listen");
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  std::string validate_path;
  auto* validate = app.add_subcommand("validate", "Check a config file; exit 0 when valid, 2 when not");
  validate->add_option("--config", validate_path, "TOML config file")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  log::set_level(*log::parse_level(log_level));
  if (*validate) return validate_command(validate_path);
  return run_agent_command(options);
}

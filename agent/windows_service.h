// The agent as a Windows service: run under the Service Control Manager, and the `service` subcommands that
// install, start, stop, reload and remove it. Windows only.
#pragma once

#include <string>

#include "agent/runtime.h"
#include "agent/service_setup.h"

namespace connectivity::service {

// %ProgramData%\connectivity-agent\agent.toml: the config a service started without --config reads.
std::string default_config_path();

// The --windows-service mode: hands the process to the SCM, which calls back with START (the agent loads its
// config and listens, then reports RUNNING), STOP and SHUTDOWN (a clean stop within the wait hint) and
// PARAMCHANGE (a reload, as SIGHUP is on Linux). Logs go to the Application event log (source
// connectivity-agent) as well. Returns the exit code; 2 when the process was not started by the SCM.
int run_under_service_manager(AgentOptions options);

// Registers the service (auto start, virtual account), its event log source and a firewall rule for the port
// it will listen on; writes the embedded default config to default_config_path() when no --config is given
// and that file does not exist yet. 0, or 1 with the reason on stderr.
int install(ServiceSettings settings);
// Stops and removes the service, its event source and its firewall rule; the config stays.
int uninstall();
int start();   // waits until the service is running, or reports why it stopped
int stop();    // waits until it has stopped
int reload();  // PARAMCHANGE: the service re-reads its config
// Adds (or deletes) the inbound rule for the port a service with these settings listens on; with no settings
// given, the installed service's own. The MSI's custom actions pass the flags they also give the service, so
// the rule follows the same settings.
int firewall_rule(bool add, ServiceSettings settings);

}  // namespace connectivity::service

// What installing the agent as a Windows service writes, worked out without the Windows API so it is tested
// on every platform: the service's command line (quoted as Windows' own parser reads it back), the firewall
// rule for the metrics port, and the errors an admin sees. agent/windows_service.cpp hands these to the
// Service Control Manager and netsh.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity::service {

inline constexpr std::string_view kServiceName = "connectivity-agent";
inline constexpr std::string_view kDisplayName = "connectivity-agent (Prometheus exporter)";
// A virtual account, not LocalSystem: it holds no administrator rights and has a SID of its own, so an admin
// can grant a password file to this service alone; and unlike LocalService it is not shared with other
// services.
inline constexpr std::string_view kServiceAccount = "NT SERVICE\\connectivity-agent";
// Given to a service-mode agent by the command line the SCM starts; an admin never types it.
inline constexpr std::string_view kServiceModeFlag = "--windows-service";

// How `service install` (and the MSI) configure the service.
struct ServiceSettings {
  std::optional<std::string> config_path;  // none: %ProgramData%\connectivity-agent\agent.toml
  std::optional<std::string> listen;
  std::vector<std::string> profiles;
  std::vector<std::string> vars;  // NAME=VALUE
  std::vector<std::string> roles;  // vantage roles (--role)
  std::optional<std::string> log_file;
  bool web_enable_lifecycle = false;
  std::optional<std::string> web_config_file;  // --web.config.file
};

// One argument quoted so CommandLineToArgvW (and the C runtime) read it back unchanged: bare when it has no
// space, tab or quote; else in quotes, with the backslashes before a quote (or before the closing quote)
// doubled.
std::string quote_windows_argument(std::string_view argument);
// The service's command line (its ImagePath): the quoted executable, the service-mode flag and the settings
// as flags.
std::string service_command_line(std::string_view executable, const ServiceSettings& settings);

// The TCP port of a listen address ("0.0.0.0:9470", "[::]:9470"); nullopt when it has none.
std::optional<int> listen_port(std::string_view listen);
// The firewall rule's name: one per port, so a reinstall on another port replaces nothing else.
std::string firewall_rule_name(int port);
// netsh's arguments for an inbound allow rule on exactly this TCP port, and for deleting it.
std::vector<std::string> firewall_add_arguments(int port);
std::vector<std::string> firewall_delete_arguments(int port);

// "cannot <action>: <system text>", with advice for the errors an admin can act on: access denied (not
// elevated), the service already there or missing, a service that will not stop.
std::string service_error_message(std::string_view action, unsigned long windows_error, std::string_view system_text);

}  // namespace connectivity::service

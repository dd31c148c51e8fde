#include "agent/service_setup.h"

#include <charconv>

namespace connectivity::service {

namespace {

// The Win32 error codes the messages below explain (winerror.h).
constexpr unsigned long kAccessDenied = 5;
constexpr unsigned long kServiceRequestTimeout = 1053;
constexpr unsigned long kServiceAlreadyRunning = 1056;
constexpr unsigned long kServiceDoesNotExist = 1060;
constexpr unsigned long kServiceNotActive = 1062;
constexpr unsigned long kServiceMarkedForDelete = 1072;
constexpr unsigned long kServiceExists = 1073;

void add_flag(std::string& line, std::string_view flag, std::string_view value) {
  line += ' ';
  line += flag;
  line += ' ';
  line += quote_windows_argument(value);
}

}  // namespace

std::string quote_windows_argument(std::string_view argument) {
  if (!argument.empty() && argument.find_first_of(" \t\n\v\"") == std::string_view::npos) return std::string(argument);
  std::string quoted = "\"";
  std::size_t backslashes = 0;
  for (char c : argument) {
    if (c == '\\') {
      ++backslashes;
      continue;
    }
    // Backslashes are literal unless a quote follows: then each is doubled and the quote escaped.
    quoted.append(c == '"' ? backslashes * 2 + 1 : backslashes, '\\');
    backslashes = 0;
    quoted += c;
  }
  quoted.append(backslashes * 2, '\\');  // before the closing quote
  return quoted + "\"";
}

std::string service_command_line(std::string_view executable, const ServiceSettings& settings) {
  // The executable is always quoted: an unquoted path with a space ("C:\Program Files\...") is the classic
  // way a service starts C:\Program.exe instead.
  std::string line = "\"" + std::string(executable) + "\" " + std::string(kServiceModeFlag);
  if (settings.config_path) add_flag(line, "--config", *settings.config_path);
  if (settings.listen) add_flag(line, "--listen", *settings.listen);
  for (const auto& profile : settings.profiles) add_flag(line, "--profile", profile);
  for (const auto& var : settings.vars) add_flag(line, "--var", var);
  for (const auto& role : settings.roles) add_flag(line, "--role", role);
  if (settings.log_file) add_flag(line, "--log-file", *settings.log_file);
  if (settings.web_enable_lifecycle) line += " --web.enable-lifecycle";
  if (settings.web_config_file) add_flag(line, "--web.config.file", *settings.web_config_file);
  return line;
}

std::optional<int> listen_port(std::string_view listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view digits = listen.substr(colon + 1);
  int port = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (error != std::errc() || end != digits.data() + digits.size() || port < 1 || port > 65535) return std::nullopt;
  return port;
}

std::string firewall_rule_name(int port) {
  // No spaces: the name is one netsh argument either way, and an admin can type it unquoted.
  return std::string(kServiceName) + "-metrics-tcp-" + std::to_string(port);
}

std::vector<std::string> firewall_add_arguments(int port) {
  return {"advfirewall",
          "firewall",
          "add",
          "rule",
          "name=" + firewall_rule_name(port),
          "dir=in",
          "action=allow",
          "protocol=TCP",
          "localport=" + std::to_string(port),
          "profile=any",
          "enable=yes"};
}

std::vector<std::string> firewall_delete_arguments(int port) {
  return {"advfirewall",
          "firewall",
          "delete",
          "rule",
          "name=" + firewall_rule_name(port),
          "dir=in",
          "protocol=TCP",
          "localport=" + std::to_string(port)};
}

std::string service_error_message(std::string_view action, unsigned long windows_error, std::string_view system_text) {
  std::string message = "cannot " + std::string(action) + ": " + std::string(system_text);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r' || message.back() == ' '))
    message.pop_back();
  switch (windows_error) {
    case kAccessDenied:
      return message +
             " (run this from an elevated prompt: right-click Command "
             "Prompt or PowerShell, "
             "\"Run as administrator\")";
    case kServiceExists:
      return message +
             " (the service is already installed: `connectivity-agent "
             "service uninstall` first, "
             "or uninstall the MSI)";
    case kServiceDoesNotExist:
      return message +
             " (the service is not installed: `connectivity-agent "
             "service install`)";
    case kServiceMarkedForDelete:
      return message +
             " (the service is being removed: close the Services "
             "console and Event Viewer, then retry)";
    case kServiceAlreadyRunning:
      return message + " (it is already running)";
    case kServiceNotActive:
      return message + " (it is not running)";
    case kServiceRequestTimeout:
      return message +
             " (it did not answer in time: see the Application event "
             "log, source connectivity-agent)";
    default:
      return message;
  }
}

}  // namespace connectivity::service

#include "agent/windows_service.h"

#include "agent/log.h"

#include <windows.h>
#include <shellapi.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace connectivity::service {

namespace {

std::wstring wide(std::string_view utf8) {
  if (utf8.empty()) return {};
  const int size = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring out(static_cast<std::size_t>(size), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(), size);
  return out;
}

std::string narrow(std::wstring_view text) {
  if (text.empty()) return {};
  const int size =
      WideCharToMultiByte(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<std::size_t>(size), '\0');
  WideCharToMultiByte(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), out.data(), size, nullptr, nullptr);
  return out;
}

std::string system_text(DWORD error) {
  wchar_t* buffer = nullptr;
  const DWORD length =
      FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                     nullptr, error, 0, reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
  std::string text = length ? narrow(std::wstring_view(buffer, length)) : "error " + std::to_string(error);
  if (buffer) LocalFree(buffer);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text + " [" + std::to_string(error) + "]";
}

// Prints the failure of `action` (the last Win32 error) and returns 1.
int fail(std::string_view action, DWORD error = GetLastError()) {
  std::fprintf(stderr, "%s\n", service_error_message(action, error, system_text(error)).c_str());
  return 1;
}

struct ServiceHandleCloser {
  void operator()(SC_HANDLE handle) const { CloseServiceHandle(handle); }
};
using ServiceHandle = std::unique_ptr<std::remove_pointer_t<SC_HANDLE>, ServiceHandleCloser>;

ServiceHandle open_manager(DWORD access) { return ServiceHandle(OpenSCManagerW(nullptr, nullptr, access)); }

ServiceHandle open_service(SC_HANDLE manager, DWORD access) {
  return ServiceHandle(OpenServiceW(manager, wide(kServiceName).c_str(), access));
}

// The installed service, opened for `access`; null after printing why not (not installed, not
// elevated). Its handle stays valid once the manager's is closed.
ServiceHandle open_installed_service(DWORD access) {
  ServiceHandle manager = open_manager(SC_MANAGER_CONNECT);
  if (!manager) {
    fail("open the Service Control Manager");
    return nullptr;
  }
  ServiceHandle service = open_service(manager.get(), access);
  if (!service) fail("open the service");
  return service;
}

const std::wstring kEventSourceKey =
    L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" + wide(kServiceName);

std::string executable_path() {
  std::wstring path(MAX_PATH, L'\0');
  for (int attempt = 0; attempt < 8; ++attempt) {
    const DWORD length = GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
    if (length < path.size()) return narrow(std::wstring_view(path.data(), length));
    path.resize(path.size() * 2);
  }
  return {};
}

std::string absolute(const std::string& path) {
  return std::filesystem::absolute(std::filesystem::path(path)).string();
}

// The installed service's settings, read back from its command line.
std::optional<ServiceSettings> installed_settings(SC_HANDLE service) {
  DWORD needed = 0;
  QueryServiceConfigW(service, nullptr, 0, &needed);
  std::vector<unsigned char> buffer(needed);
  auto* config = reinterpret_cast<QUERY_SERVICE_CONFIGW*>(buffer.data());
  if (needed == 0 || !QueryServiceConfigW(service, config, needed, &needed)) return std::nullopt;
  int count = 0;
  wchar_t** argv = CommandLineToArgvW(config->lpBinaryPathName, &count);
  if (!argv) return std::nullopt;
  ServiceSettings settings;
  for (int i = 1; i + 1 < count; ++i) {
    const std::string flag = narrow(argv[i]);
    if (flag == "--config")
      settings.config_path = narrow(argv[++i]);
    else if (flag == "--listen")
      settings.listen = narrow(argv[++i]);
    else if (flag == "--profile")
      settings.profiles.push_back(narrow(argv[++i]));
    else if (flag == "--var")
      settings.vars.push_back(narrow(argv[++i]));
    else if (flag == "--role")
      settings.roles.push_back(narrow(argv[++i]));
  }
  LocalFree(argv);
  return settings;
}

// The port the service will listen on: --listen, else the config's [agent].listen, found the way the service
// itself loads it.
std::optional<int> port_for(const ServiceSettings& settings, std::string& problem) {
  std::string listen;
  if (settings.listen) {
    listen = *settings.listen;
  } else {
    try {
      ConfigOverrides overrides;
      overrides.profiles = settings.profiles;
      for (const auto& var : settings.vars) overrides.vars.push_back(parse_var_assignment(var));
      overrides.roles = settings.roles;
      listen = load_config(settings.config_path.value_or(default_config_path()), overrides).agent.listen.front();
    } catch (const std::exception& e) {
      problem = e.what();
      return std::nullopt;
    }
  }
  auto port = listen_port(listen);
  if (!port) problem = "no port in the listen address \"" + listen + "\"";
  return port;
}

// Runs netsh with `arguments` and waits (at most 60 s); its exit code, or -1 when it could not run.
int run_netsh(const std::vector<std::string>& arguments) {
  std::wstring system_dir(MAX_PATH, L'\0');
  system_dir.resize(GetSystemDirectoryW(system_dir.data(), MAX_PATH));
  std::string line = quote_windows_argument(narrow(system_dir) + "\\netsh.exe");
  for (const auto& argument : arguments) line += " " + quote_windows_argument(argument);
  std::wstring command = wide(line);
  STARTUPINFOW startup{};
  startup.cb = sizeof startup;
  PROCESS_INFORMATION process{};
  if (!CreateProcessW(nullptr, command.data(), nullptr, nullptr, FALSE, CREATE_NO_WINDOW, nullptr, nullptr, &startup,
                      &process))
    return -1;
  DWORD code = 1;
  if (WaitForSingleObject(process.hProcess, 60'000) == WAIT_OBJECT_0)
    GetExitCodeProcess(process.hProcess, &code);
  else
    TerminateProcess(process.hProcess, 1);  // a netsh that hangs must not hold up an install
  CloseHandle(process.hThread);
  CloseHandle(process.hProcess);
  return static_cast<int>(code);
}

// The port of the rule that was added, kept with the service (its Parameters key goes when the service is
// deleted), so the rule is removed even when the config has since become unreadable.
const std::wstring kParametersKey = L"SYSTEM\\CurrentControlSet\\Services\\" + wide(kServiceName) + L"\\Parameters";
constexpr const wchar_t* kRulePortValue = L"FirewallRulePort";

void remember_rule_port(int port) {
  HKEY key = nullptr;
  if (RegCreateKeyExW(HKEY_LOCAL_MACHINE, kParametersKey.c_str(), 0, nullptr, 0, KEY_SET_VALUE, nullptr, &key,
                      nullptr) != ERROR_SUCCESS)
    return;
  const DWORD value = static_cast<DWORD>(port);
  RegSetValueExW(key, kRulePortValue, 0, REG_DWORD, reinterpret_cast<const BYTE*>(&value), sizeof value);
  RegCloseKey(key);
}

std::optional<int> remembered_rule_port() {
  DWORD value = 0;
  DWORD size = sizeof value;
  if (RegGetValueW(HKEY_LOCAL_MACHINE, kParametersKey.c_str(), kRulePortValue, RRF_RT_REG_DWORD, nullptr, &value,
                   &size) != ERROR_SUCCESS ||
      value < 1 || value > 65535)
    return std::nullopt;
  return static_cast<int>(value);
}

int change_firewall_rule(bool add, int port) {
  // netsh adds a second rule of the same name rather than replacing it: a reinstall or repair first deletes
  // the one it may have left (an error when there is none is expected).
  if (add) run_netsh(firewall_delete_arguments(port));
  const int code = run_netsh(add ? firewall_add_arguments(port) : firewall_delete_arguments(port));
  if (code != 0) {
    std::fprintf(stderr, "cannot %s the firewall rule %s: netsh %s\n", add ? "add" : "delete",
                 firewall_rule_name(port).c_str(),
                 code < 0 ? "did not start" : ("exited " + std::to_string(code)).c_str());
    return 1;
  }
  if (add) remember_rule_port(port);
  std::printf("firewall rule %s: %s (inbound TCP %d)\n", add ? "added" : "deleted", firewall_rule_name(port).c_str(),
              port);
  return 0;
}

// Waits (at most `bound`) until the service leaves `pending`; its status then.
SERVICE_STATUS_PROCESS wait_while(SC_HANDLE service, DWORD pending, std::chrono::seconds bound) {
  SERVICE_STATUS_PROCESS status{};
  DWORD needed = 0;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (
      QueryServiceStatusEx(service, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&status), sizeof status, &needed) &&
      status.dwCurrentState == pending && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polled, as sc.exe and net.exe do
  return status;
}

std::string exit_reason(const SERVICE_STATUS_PROCESS& status) {
  if (status.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR) {
    return status.dwServiceSpecificExitCode == 2 ? "exit code 2: the config is not valid"
                                                 : "exit code " + std::to_string(status.dwServiceSpecificExitCode);
  }
  return system_text(status.dwWin32ExitCode);
}

// ---- service mode ----

struct RunningService {
  std::mutex mutex;
  Agent* agent = nullptr;       // while it runs; the control handler reaches it under the mutex
  bool stop_requested = false;  // a STOP or SHUTDOWN that came while the agent was starting
  bool finished = false;        // the agent has stopped: no later report may say STOP_PENDING
  SERVICE_STATUS_HANDLE status_handle = nullptr;
  std::atomic<DWORD> checkpoint{0};  // reported from the handler and from service_main
  AgentOptions options;
  int exit_code = 0;
};
RunningService g_service;

void report(DWORD state, DWORD wait_hint_ms = 0, int exit_code = 0) {
  SERVICE_STATUS status{};
  status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  status.dwCurrentState = state;
  // STOP is taken while starting too: an installer that stops the service it has just started (an upgrade
  // right after an install) must not meet "cannot accept control messages" and leave a running service marked
  // for deletion.
  status.dwControlsAccepted = state == SERVICE_RUNNING
                                  ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
                              : state == SERVICE_START_PENDING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
                                                               : 0;
  if (exit_code != 0) {
    status.dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR;
    status.dwServiceSpecificExitCode = static_cast<DWORD>(exit_code);
  }
  status.dwWaitHint = wait_hint_ms;
  status.dwCheckPoint = (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING) ? ++g_service.checkpoint : 0;
  SetServiceStatus(g_service.status_handle, &status);
}

DWORD WINAPI control_handler(DWORD control, DWORD, void*, void*) {
  switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN: {
      std::lock_guard lock(g_service.mutex);
      if (g_service.finished) return NO_ERROR;  // STOPPED is being (or has been) reported
      report(SERVICE_STOP_PENDING, 10'000);
      log::info("shutting down", {{"control", control == SERVICE_CONTROL_STOP ? "STOP" : "SHUTDOWN"}});
      if (g_service.agent)
        g_service.agent->stop();
      else
        g_service.stop_requested = true;  // still starting: service_main stops once the agent exists
      return NO_ERROR;
    }
    case SERVICE_CONTROL_PARAMCHANGE: {
      std::lock_guard lock(g_service.mutex);
      if (g_service.agent) g_service.agent->request_reload("PARAMCHANGE");
      return NO_ERROR;
    }
    case SERVICE_CONTROL_INTERROGATE:
      return NO_ERROR;
    default:
      return ERROR_CALL_NOT_IMPLEMENTED;
  }
}

void WINAPI service_main(DWORD, wchar_t**) {
  g_service.status_handle = RegisterServiceCtrlHandlerExW(wide(kServiceName).c_str(), control_handler, nullptr);
  if (!g_service.status_handle) {
    g_service.exit_code = 1;
    return;
  }
  // Loading the config and the system's CA store takes well under this; the SCM shows the service as starting
  // until RUNNING, which comes only once /metrics listens.
  report(SERVICE_START_PENDING, 30'000);
  std::unique_ptr<Agent> agent;
  try {
    agent = std::make_unique<Agent>(g_service.options);
  } catch (const ConfigError& e) {
    log::error("invalid config", {{"error", e.what()}});
    g_service.exit_code = 2;
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    g_service.exit_code = 1;
  }
  if (!agent) {
    std::lock_guard lock(g_service.mutex);
    g_service.finished = true;
    report(SERVICE_STOPPED, 0, g_service.exit_code);
    return;
  }
  {
    std::lock_guard lock(g_service.mutex);
    if (g_service.stop_requested) {
      g_service.finished = true;
      agent.reset();
      report(SERVICE_STOPPED);
      return;
    }
    g_service.agent = agent.get();
    report(SERVICE_RUNNING);  // under the lock: a STOP now finds the agent, and reports after this
  }
  g_service.exit_code = agent->run();
  {
    std::lock_guard lock(g_service.mutex);
    g_service.agent = nullptr;
    g_service.finished = true;
  }
  report(SERVICE_STOP_PENDING, 10'000);
  agent.reset();
  report(SERVICE_STOPPED, 0, g_service.exit_code);
}

void add_event_log_sink() {
  HANDLE source = RegisterEventSourceW(nullptr, wide(kServiceName).c_str());
  if (!source) return;  // the process-wide handle lives as long as the process
  log::add_sink([source](log::Level level, std::string_view line) {
    // The message file registered for the source is the system's EventCreate.exe, whose event IDs 1-1000 each
    // display their one string as is: the logfmt line, every field included.
    const WORD type = level == log::Level::error  ? EVENTLOG_ERROR_TYPE
                      : level == log::Level::warn ? EVENTLOG_WARNING_TYPE
                                                  : EVENTLOG_INFORMATION_TYPE;
    const DWORD event_id = 1 + static_cast<DWORD>(level);  // 1 debug, 2 info, 3 warn, 4 error
    const std::wstring text = wide(line);
    const wchar_t* strings[] = {text.c_str()};
    ReportEventW(source, type, 0, event_id, nullptr, 1, 0, strings, nullptr);
  });
}

bool write_default_config(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  std::ofstream file(path, std::ios::binary);
  const std::string_view text = embedded_default_config();
  file.write(text.data(), static_cast<std::streamsize>(text.size()));
  return static_cast<bool>(file);
}

}  // namespace

std::string default_config_path() {
  std::wstring program_data(MAX_PATH, L'\0');
  const DWORD length = GetEnvironmentVariableW(L"ProgramData", program_data.data(), MAX_PATH);
  const std::string base = length > 0 && length < MAX_PATH ? narrow(std::wstring_view(program_data.data(), length))
                                                           : std::string("C:\\ProgramData");
  return base + "\\connectivity-agent\\agent.toml";
}

int run_under_service_manager(AgentOptions options) {
  if (!options.config_path && options.overrides.profiles.empty()) options.config_path = default_config_path();
  // Console signals do not reach a service; STOP and SHUTDOWN come through the handler.
  options.handle_signals = false;
  g_service.options = std::move(options);
  add_event_log_sink();
  std::wstring name = wide(kServiceName);
  SERVICE_TABLE_ENTRYW table[] = {{name.data(), service_main}, {nullptr, nullptr}};
  if (!StartServiceCtrlDispatcherW(table)) {
    const DWORD error = GetLastError();
    if (error == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
      std::fprintf(stderr,
                   "%s is for the Service Control Manager, which starts the service with it; from a console, "
                   "run the agent without it (or `connectivity-agent service start`)\n",
                   std::string(kServiceModeFlag).c_str());
      return 2;
    }
    return fail("start the service dispatcher", error);
  }
  return g_service.exit_code;
}

int install(ServiceSettings settings) {
  if (settings.config_path) {
    settings.config_path = absolute(*settings.config_path);  // the service runs in System32
  } else if (settings.profiles.empty()) {
    settings.config_path = default_config_path();
    if (!std::filesystem::exists(*settings.config_path)) {
      if (!write_default_config(*settings.config_path))
        return fail("write the default config " + *settings.config_path, ERROR_WRITE_FAULT);
      std::printf("wrote the default config: %s\n", settings.config_path->c_str());
    }
  }
  if (settings.log_file) settings.log_file = absolute(*settings.log_file);
  std::string problem;
  const auto port = port_for(settings, problem);
  if (!port) {
    std::fprintf(stderr, "cannot install the service: %s\n", problem.c_str());
    return 2;
  }

  ServiceHandle manager = open_manager(SC_MANAGER_CREATE_SERVICE);
  if (!manager) return fail("open the Service Control Manager");
  const std::wstring command_line = wide(service_command_line(executable_path(), settings));
  const std::wstring account = wide(kServiceAccount);
  ServiceHandle created(CreateServiceW(manager.get(), wide(kServiceName).c_str(), wide(kDisplayName).c_str(),
                                       SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
                                       SERVICE_ERROR_NORMAL, command_line.c_str(), nullptr, nullptr, nullptr,
                                       account.c_str(), nullptr));
  if (!created) return fail("create the service");
  std::wstring description =
      L"Probes the network paths library resource sharing depends on and "
      L"serves them as Prometheus metrics.";
  SERVICE_DESCRIPTIONW service_description{description.data()};
  ChangeServiceConfig2W(created.get(), SERVICE_CONFIG_DESCRIPTION, &service_description);

  HKEY key = nullptr;
  if (RegCreateKeyExW(HKEY_LOCAL_MACHINE, kEventSourceKey.c_str(), 0, nullptr, 0, KEY_SET_VALUE, nullptr, &key,
                      nullptr) == ERROR_SUCCESS) {
    const std::wstring message_file = L"%SystemRoot%\\System32\\EventCreate.exe";
    const DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ, reinterpret_cast<const BYTE*>(message_file.c_str()),
                   static_cast<DWORD>((message_file.size() + 1) * sizeof(wchar_t)));
    RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD, reinterpret_cast<const BYTE*>(&types), sizeof types);
    RegCloseKey(key);
  }
  std::printf("installed the service %s: %s\n", std::string(kServiceName).c_str(), narrow(command_line).c_str());
  change_firewall_rule(true, *port);  // a failure is reported; the service works
                                      // on localhost without it
  std::printf("start it with: connectivity-agent service start\n");
  return 0;
}

int uninstall() {
  ServiceHandle service = open_installed_service(SERVICE_STOP | SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG | DELETE);
  if (!service) return 1;
  SERVICE_STATUS status{};
  if (ControlService(service.get(), SERVICE_CONTROL_STOP, &status))
    wait_while(service.get(), SERVICE_STOP_PENDING, std::chrono::seconds(30));
  std::string problem = "cannot read the service's command line";
  auto port = remembered_rule_port();
  if (!port) {
    const auto settings = installed_settings(service.get());
    if (settings) port = port_for(*settings, problem);
  }
  if (!DeleteService(service.get())) return fail("delete the service");
  RegDeleteKeyW(HKEY_LOCAL_MACHINE, kEventSourceKey.c_str());
  if (port)
    change_firewall_rule(false, *port);
  else
    std::fprintf(stderr, "the firewall rule was left: cannot tell its port (%s)\n", problem.c_str());
  std::printf("removed the service %s (its config is kept)\n", std::string(kServiceName).c_str());
  return 0;
}

int start() {
  ServiceHandle service = open_installed_service(SERVICE_START | SERVICE_QUERY_STATUS);
  if (!service) return 1;
  if (!StartServiceW(service.get(), 0, nullptr)) return fail("start the service");
  const SERVICE_STATUS_PROCESS status = wait_while(service.get(), SERVICE_START_PENDING, std::chrono::seconds(60));
  if (status.dwCurrentState == SERVICE_RUNNING) {
    std::printf("the service is running\n");
    return 0;
  }
  if (status.dwCurrentState == SERVICE_START_PENDING) {
    std::fprintf(stderr, "the service is still starting after 60 s: see the Application event log\n");
    return 1;
  }
  std::fprintf(stderr, "the service stopped as it started (%s): see the Application event log, source %s\n",
               exit_reason(status).c_str(), std::string(kServiceName).c_str());
  return 1;
}

int stop() {
  ServiceHandle service = open_installed_service(SERVICE_STOP | SERVICE_QUERY_STATUS);
  if (!service) return 1;
  SERVICE_STATUS status{};
  if (!ControlService(service.get(), SERVICE_CONTROL_STOP, &status)) return fail("stop the service");
  const SERVICE_STATUS_PROCESS stopped = wait_while(service.get(), SERVICE_STOP_PENDING, std::chrono::seconds(30));
  if (stopped.dwCurrentState != SERVICE_STOPPED) {
    std::fprintf(stderr, "the service has not stopped within 30 s\n");
    return 1;
  }
  std::printf("the service has stopped\n");
  return 0;
}

int reload() {
  ServiceHandle service = open_installed_service(SERVICE_PAUSE_CONTINUE);
  if (!service) return 1;
  SERVICE_STATUS status{};
  if (!ControlService(service.get(), SERVICE_CONTROL_PARAMCHANGE, &status)) return fail("ask the service to reload");
  std::printf("asked the service to reload its config: the outcome is in the event log and in "
              "connectivity_agent_config_last_reload_successful\n");
  return 0;
}

int firewall_rule(bool add, ServiceSettings settings) {
  std::string problem = "cannot read the service's command line";
  std::optional<int> port;
  if (settings.config_path || settings.listen || !settings.profiles.empty()) {
    port = port_for(settings, problem);
  } else {
    ServiceHandle service = open_installed_service(SERVICE_QUERY_CONFIG);
    if (!service) return 1;
    port = remembered_rule_port();
    if (!port) {
      const auto installed = installed_settings(service.get());
      if (installed) port = port_for(*installed, problem);
    }
  }
  if (!port) {
    std::fprintf(stderr, "cannot %s the firewall rule: %s\n", add ? "add" : "delete", problem.c_str());
    return 1;
  }
  return change_firewall_rule(add, *port);
}

}  // namespace connectivity::service

// What `service install` and the MSI write for Windows (command line, firewall rule, errors), checked on
// every platform; the --log-file sink; file keys resolved against their config's folder.
#include "agent/config.h"
#include "agent/log.h"
#include "agent/service_setup.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace connectivity {
namespace {

using service::quote_windows_argument;

// The reading rules of CommandLineToArgvW (and the C runtime's argv), as Microsoft documents them: used to
// check that what quote_windows_argument writes reads back as it was.
std::vector<std::string> parse_windows_command_line(std::string_view line) {
  std::vector<std::string> args;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string arg;
    bool in_quotes = false;
    while (i < line.size() && (in_quotes || (line[i] != ' ' && line[i] != '\t'))) {
      std::size_t backslashes = 0;
      while (i < line.size() && line[i] == '\\') ++backslashes, ++i;
      if (i < line.size() && line[i] == '"') {
        arg.append(backslashes / 2, '\\');
        if (backslashes % 2 == 1) {
          arg += '"';
        } else {
          in_quotes = !in_quotes;
        }
        ++i;
      } else {
        arg.append(backslashes, '\\');
        if (i < line.size() && (in_quotes || (line[i] != ' ' && line[i] != '\t'))) arg += line[i++];
      }
    }
    args.push_back(arg);
  }
  return args;
}

TEST(WindowsArgumentQuoting, ReadsBackAsWritten) {
  const std::vector<std::string> cases = {
      "plain",
      "C:\\Program Files\\connectivity-agent\\agent.toml",
      "C:\\ProgramData\\connectivity-agent\\",  // a trailing backslash must not
                                                // escape the closing quote
      "say \"hi\"",
      "back\\\\\"slash",
      "",
      "sql_host=illiad-db.example.edu;web_host=illiad.example.edu",
      "tab\there",
  };
  for (const auto& argument : cases) {
    const std::string line = "agent.exe " + quote_windows_argument(argument);
    const auto parsed = parse_windows_command_line(line);
    ASSERT_EQ(parsed.size(), 2u) << line;
    EXPECT_EQ(parsed[1], argument) << line;
  }
  EXPECT_EQ(quote_windows_argument("plain"), "plain");
  EXPECT_EQ(quote_windows_argument("C:\\a b\\"), "\"C:\\a b\\\\\"");
}

TEST(ServiceCommandLine, QuotesTheExecutableAndCarriesEverySetting) {
  service::ServiceSettings settings;
  settings.config_path = "C:\\ProgramData\\connectivity-agent\\agent.toml";
  settings.listen = "0.0.0.0:9470";
  settings.profiles = {"illiad", "rapido-iso"};
  settings.vars = {"sql_host=illiad db"};
  settings.roles = {"staff-client"};
  settings.log_file = "C:\\ProgramData\\connectivity-agent\\agent.log";
  settings.web_enable_lifecycle = true;
  settings.web_config_file = "C:\\ProgramData\\connectivity-agent\\web config.yml";
  const std::string line =
      service::service_command_line("C:\\Program Files\\connectivity-agent\\connectivity-agent.exe", settings);
  EXPECT_TRUE(
      line.starts_with("\"C:\\Program Files\\connectivity-agent\\connectivity-agent.exe\" "
                       "--windows-service"))
      << line;
  const auto args = parse_windows_command_line(line);
  const std::vector<std::string> expected = {"C:\\Program Files\\connectivity-agent\\connectivity-agent.exe",
                                             "--windows-service",
                                             "--config",
                                             "C:\\ProgramData\\connectivity-agent\\agent.toml",
                                             "--listen",
                                             "0.0.0.0:9470",
                                             "--profile",
                                             "illiad",
                                             "--profile",
                                             "rapido-iso",
                                             "--var",
                                             "sql_host=illiad db",
                                             "--role",
                                             "staff-client",
                                             "--log-file",
                                             "C:\\ProgramData\\connectivity-agent\\agent.log",
                                             "--web.enable-lifecycle",
                                             "--web.config.file",
                                             "C:\\ProgramData\\connectivity-agent\\web config.yml"};
  EXPECT_EQ(args, expected);

  const auto bare = parse_windows_command_line(service::service_command_line("C:\\a.exe", {}));
  EXPECT_EQ(bare, (std::vector<std::string>{"C:\\a.exe", "--windows-service"}));
}

TEST(ServiceFirewallRule, OpensExactlyTheMetricsPort) {
  EXPECT_EQ(service::listen_port("0.0.0.0:9470"), 9470);
  EXPECT_EQ(service::listen_port("[::]:9100"), 9100);
  EXPECT_EQ(service::listen_port("9470"), std::nullopt);
  EXPECT_EQ(service::listen_port("host:0"), std::nullopt);
  EXPECT_EQ(service::listen_port("host:70000"), std::nullopt);
  EXPECT_EQ(service::listen_port("host:94x"), std::nullopt);

  const auto add = service::firewall_add_arguments(9470);
  const std::vector<std::string> expected_add = {
      "advfirewall", "firewall",     "add",          "rule",           "name=connectivity-agent-metrics-tcp-9470",
      "dir=in",      "action=allow", "protocol=TCP", "localport=9470", "profile=any",
      "enable=yes"};
  EXPECT_EQ(add, expected_add);
  const auto remove = service::firewall_delete_arguments(9470);
  EXPECT_EQ(remove[2], "delete");
  EXPECT_NE(std::find(remove.begin(), remove.end(), "name=connectivity-agent-metrics-tcp-9470"), remove.end());
  EXPECT_NE(std::find(remove.begin(), remove.end(), "localport=9470"), remove.end());
  for (const auto& argument : add) EXPECT_EQ(argument.find(' '), std::string::npos) << argument;
}

TEST(ServiceErrors, AccessDeniedSaysToElevate) {
  const std::string denied = service::service_error_message("create the service", 5, "Access is denied.\r\n");
  EXPECT_EQ(denied.rfind("cannot create the service: Access is denied. (run "
                         "this from an elevated prompt",
                         0),
            0u)
      << denied;
  EXPECT_NE(denied.find("Run as administrator"), std::string::npos);
  EXPECT_NE(service::service_error_message("create the service", 1073, "exists").find("service uninstall"),
            std::string::npos);
  EXPECT_NE(service::service_error_message("open the service", 1060, "missing").find("service install"),
            std::string::npos);
  EXPECT_EQ(service::service_error_message("x", 87, "The parameter is incorrect."),
            "cannot x: The parameter is incorrect.");
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("service-setup-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    log::clear_sinks();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

using LogFileSink = TempDir;

TEST_F(LogFileSink, AppendsEveryLineAtOrAboveTheLevel) {
  const std::string path = (dir_ / "agent.log").string();
  { std::ofstream(path) << "kept from before\n"; }
  ASSERT_EQ(log::add_file_sink(path), std::nullopt);
  log::set_level(log::Level::info);
  log::debug("not written");
  log::info("config reloaded", {{"checks", "3"}});
  log::error("config rejected; previous config still running", {{"error", "a.toml:2:1: bad"}});
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  const std::string written = text.str();
  EXPECT_EQ(written.rfind("kept from before\n", 0), 0u);
  EXPECT_EQ(written.find("not written"), std::string::npos);
  EXPECT_NE(written.find(" level=info msg=\"config reloaded\" checks=3\n"), std::string::npos) << written;
  EXPECT_NE(written.find(" level=error msg=\"config rejected; previous config "
                         "still running\" error=\"a.toml:2:1: bad\"\n"),
            std::string::npos)
      << written;
}

TEST_F(LogFileSink, AFileThatCannotBeOpenedIsReported) {
  const auto problem = log::add_file_sink((dir_ / "no-such-folder" / "agent.log").string());
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("no-such-folder"), std::string::npos) << *problem;
}

using ConfigFilePaths = TempDir;

// A Windows service runs in System32, so a relative ca_file or password_file is taken from the config's own
// folder, whatever the working directory.
TEST_F(ConfigFilePaths, RelativeFilesAreTakenFromTheConfigsFolder) {
  std::filesystem::create_directories(dir_ / "secrets");
  { std::ofstream(dir_ / "secrets" / "ldap-password") << "s3cret\n"; }
  { std::ofstream(dir_ / "ca.pem") << "not a certificate\n"; }
  const std::string config_path = (dir_ / "agent.toml").string();
  {
    std::ofstream(config_path) << "[[check]]\nname = \"dir\"\nprobe = \"ldap\"\ntarget = "
                                  "\"127.0.0.1:389\"\n"
                                  "[check.ldap]\nbind_dn = \"cn=agent\"\npassword_file = "
                                  "\"secrets/ldap-password\"\n"
                                  "tls = true\n";
  }
  const Config config = load_config(config_path);
  ASSERT_EQ(config.checks.size(), 1u);

  // The same file name, read against the working directory, would not exist; and a relative ca_file that is
  // not a certificate is named by its full path in the error.
  {
    std::ofstream(config_path) << "[[check]]\nname = \"tls\"\nprobe = "
                                  "\"tls\"\ntarget = \"127.0.0.1:443\"\n"
                                  "[check.tls]\nca_file = \"ca.pem\"\n";
  }
  try {
    load_config(config_path);
    FAIL() << "a ca_file without certificates loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "ca.pem").string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace connectivity

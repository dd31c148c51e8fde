#include "agent/config.h"
#include "agent/duration.h"
#include "tests/support/platform.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace connectivity {
namespace {

using namespace std::chrono_literals;

// Parses and returns the error message; fails the test if the config is accepted.
std::string error_of(const std::string& text) {
  try {
    parse_config(text, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "config was accepted:\n" << text;
  return {};
}

// The same, for a config named `source_name`.
std::string error_of_named(const std::string& text, const std::string& source_name) {
  try {
    parse_config(text, source_name);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "config was accepted:\n" << text;
  return {};
}

constexpr const char* kValid = R"(
[agent]
listen = "127.0.0.1:9470"
interval = "15s"
timeout = "2s"
labels = { site = "main-library" }

[[check]]
name = "oclc"
probe = "tcp"
target = "webservices.oclc.org:443"
labels = { vendor = "oclc", site = "override" }

[[check]]
name = "v6"
probe = "tcp"
target = "[2001:db8::1]:210"
interval = "1m"
timeout = "500ms"
required = false
[check.tcp]
address_family = "ipv6"
)";

TEST(Duration, ParsesPrometheusStyle) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("1m30s"), 90s);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("1d"), 24h);
  EXPECT_EQ(parse_duration("1s500ms"), 1500ms);
  for (const char* bad : {"", "30", "s", "1.5s", "30sec", "-1s", "1s1m", "1s1s", "99999999999999999999s", " 1s"})
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Target, ParsesHostPortAndBracketedIPv6) {
  auto t = parse_target("webservices.oclc.org:443");
  EXPECT_EQ(t.host, "webservices.oclc.org");
  EXPECT_EQ(t.port, 443);
  t = parse_target("[::1]:210");
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.to_string(), "[::1]:210");
  for (const char* bad : {"host", "host:", ":80", "host:0", "host:65536", "host:http", "::1:80", "[::1]80",
                          "[nothost]:80", "bad host:80", "[::1:80"})
    EXPECT_THROW(parse_target(bad), std::invalid_argument) << bad;
}

TEST(Target, ABareNameForKindsThatResolveItThemselves) {
  auto t = parse_host_target("webservices.oclc.org");
  EXPECT_EQ(t.host, "webservices.oclc.org");
  EXPECT_EQ(t.port, 0);
  EXPECT_EQ(t.to_string(), "webservices.oclc.org");  // the target label: no ":0"
  EXPECT_EQ(parse_host_target("Update.Atlas-Sys.com.").host, "Update.Atlas-Sys.com.");
  for (const char* bad : {"", "webservices.oclc.org:443", "192.0.2.1", "::1", "[::1]", "[::1]:53", "a..b", ".a",
                          "bad host", "host/path", "https://oclc.org"})
    EXPECT_THROW(parse_host_target(bad), std::invalid_argument) << bad;
  EXPECT_THROW(parse_host_target(std::string(64, 'a') + ".org"), std::invalid_argument);
}

TEST(Config, AHostTargetKindTakesANameAndRejectsAPortOrAnAddress) {
  auto load = [](const std::string& target) {
    return parse_config("[[check]]\nname = \"n\"\nprobe = \"dns\"\ntarget = \"" + target + "\"\n", "a.toml");
  };
  const Config good = load("webservices.oclc.org");
  EXPECT_EQ(good.checks.at(0).target.to_string(), "webservices.oclc.org");
  auto error = [&](const std::string& target) -> std::string {
    try {
      load(target);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "<no error>";
  };
  EXPECT_EQ(error("webservices.oclc.org:443"),
            "a.toml:4:10: check \"n\": key \"target\": bad target \"webservices.oclc.org:443\": expected a bare DNS "
            "name such as webservices.oclc.org, without :port");
  EXPECT_EQ(error("[2001:db8::1]"),
            "a.toml:4:10: check \"n\": key \"target\": bad target \"[2001:db8::1]\": an IP address is not a name to "
            "resolve: give the DNS name");
}

TEST(Config, ParsesAValidConfig) {
  const Config c = parse_config(kValid, "test.toml");
  EXPECT_EQ(c.agent.listen, std::vector<std::string>{"127.0.0.1:9470"});
  ASSERT_EQ(c.checks.size(), 2u);
  const auto& oclc = c.checks[0];
  EXPECT_EQ(oclc.kind->name, "tcp");
  EXPECT_EQ(oclc.interval, 15s);  // agent default
  EXPECT_EQ(oclc.timeout, 2s);
  EXPECT_TRUE(oclc.required);
  // Global labels merged in, the check's own value wins; every check carries the vantage.
  const Labels expected{{"site", "override"}, {"vantage", "any"}, {"vendor", "oclc"}};
  EXPECT_EQ(oclc.labels, expected);
  const auto& v6 = c.checks[1];
  EXPECT_EQ(v6.target.host, "2001:db8::1");
  EXPECT_EQ(v6.interval, 60s);
  EXPECT_EQ(v6.timeout, 500ms);
  EXPECT_FALSE(v6.required);
  EXPECT_EQ(v6.labels, (Labels{{"site", "main-library"}, {"vantage", "any"}}));
  EXPECT_NE(v6.options_text.find("ipv6"), std::string::npos);
  // Failures are confirmed by four re-runs, 1 s apart, unless a check or [agent] says otherwise.
  EXPECT_EQ(oclc.confirm_runs, 4u);
  EXPECT_EQ(oclc.confirm_delay, 1s);
}

TEST(Config, ConfirmationIsSetForTheAgentAndPerCheck) {
  const Config c = parse_config(R"(
[agent]
confirm_delay = "2s"
confirm_runs = 2
[[check]]
name = "inherits"
probe = "tcp"
target = "h:1"
[[check]]
name = "own"
probe = "tcp"
target = "h:2"
confirm_runs = 0
[[check]]
name = "older-key-off"
probe = "tcp"
target = "h:3"
confirm_failures = false
[[check]]
name = "older-key-on"
probe = "tcp"
target = "h:4"
confirm_failures = true
)", "test.toml");
  ASSERT_EQ(c.checks.size(), 4u);
  EXPECT_EQ(c.checks[0].confirm_runs, 2u);
  EXPECT_EQ(c.checks[1].confirm_runs, 0u);
  EXPECT_EQ(c.checks[2].confirm_runs, 0u);
  EXPECT_EQ(c.checks[3].confirm_runs, 2u);  // true: as [agent] does
  EXPECT_EQ(c.checks[1].confirm_delay, 2s);
  EXPECT_EQ(parse_config("[agent]\nallow_empty = true\n", "empty.toml").agent.interval, 15s);
  // [agent] confirm_failures = false turns it off; a check's `true` then means the default.
  const Config off = parse_config("[agent]\nconfirm_failures = false\n[[check]]\nname = \"a\"\nprobe = \"tcp\"\n"
                                  "target = \"h:1\"\n[[check]]\nname = \"b\"\nprobe = \"tcp\"\ntarget = \"h:2\"\n"
                                  "confirm_failures = true\n",
                                  "off.toml");
  EXPECT_EQ(off.checks[0].confirm_runs, 0u);
  EXPECT_EQ(off.checks[1].confirm_runs, 4u);
  CheckConfig toggled = c.checks[1];
  toggled.confirm_runs = 1;
  EXPECT_FALSE(toggled.same_schedule_as(c.checks[1]));  // a reload restarts its schedule
}

TEST(Config, ConfirmationReRunsThatCannotFitTheIntervalAreWarnedAbout) {
  // 10 s: two 4 s timeouts and four 1 s delays need 12 s; two re-runs fit. The default (15 s,
  // 5 s, four 1 s) fits exactly and is not warned about.
  const Config c = parse_config(R"([[check]]
name = "tight"
probe = "tcp"
target = "h:1"
interval = "10s"
timeout = "4s"
[[check]]
name = "defaults"
probe = "tcp"
target = "h:2"
[[check]]
name = "not-confirming"
probe = "tcp"
target = "h:3"
interval = "1s"
timeout = "1s"
confirm_runs = 0
)", "test.toml");
  ASSERT_EQ(c.checks[0].warnings.size(), 1u);
  EXPECT_EQ(c.checks[0].warnings[0].text(),
            "test.toml:5:12: check \"tight\": key \"interval\": the interval 10s leaves room for 2 of 4 confirmation "
            "re-runs after a failure that takes the whole timeout 4s (they need 2 x timeout + confirm_runs x "
            "confirm_delay = 12s): a failure is reported after fewer re-runs, so a lossy path raises more false alarms");
  EXPECT_TRUE(c.checks[1].warnings.empty());
  EXPECT_TRUE(c.checks[2].warnings.empty());
}

TEST(Config, EveryErrorNamesFileLineColumnAndKey) {
  struct Case {
    const char* what;
    std::string text;
    std::string expected;  // a substring of the message, position included
  };
  const std::string head = "[[check]]\nname = \"a\"\nprobe = \"tcp\"\n";
  const std::vector<Case> cases{
      {"missing key", "[[check]]\nname = \"a\"\nprobe = \"tcp\"\n", "test.toml:1:1: check \"a\": missing required key \"target\""},
      {"missing name", "[[check]]\nprobe = \"tcp\"\ntarget = \"h:1\"\n", "test.toml:1:1: check #1: missing required key \"name\""},
      {"unknown key", head + "target = \"h:1\"\nintervall = \"5s\"\n", "test.toml:5:1: check \"a\": unknown key \"intervall\""},
      {"unknown agent key", "[agent]\nlisten = \"x:1\"\nport = 9\n", "test.toml:3:1: [agent]: unknown key \"port\""},
      {"unknown top-level", "[agnet]\n", "test.toml:1:2: unknown top-level key \"agnet\""},
      {"unknown probe option", head + "target = \"h:1\"\n[check.tcp]\nfamily = \"ipv4\"\n", "test.toml:6:1: check \"a\": unknown key \"family\""},
      {"option of another probe", head + "target = \"h:1\"\n[check.tls]\nserver_name = \"x\"\n", "check \"a\": unknown key \"tls\""},
      {"bad option value", head + "target = \"h:1\"\n[check.tcp]\naddress_family = \"ip4\"\n", "test.toml:6:18: check \"a\": key \"address_family\": must be one of"},
      {"bad duration", head + "target = \"h:1\"\ninterval = \"30 seconds\"\n", "test.toml:5:12: check \"a\": key \"interval\": bad duration \"30 seconds\""},
      {"duration not a string", head + "target = \"h:1\"\ntimeout = 5\n", "test.toml:5:11: check \"a\": key \"timeout\": must be a duration string"},
      {"timeout over interval", head + "target = \"h:1\"\ninterval = \"1s\"\ntimeout = \"2s\"\n", "test.toml:6:11: check \"a\": timeout 2s is longer than the interval 1s"},
      {"duplicate name", head + "target = \"h:1\"\n" + head + "target = \"h:2\"\n", "test.toml:6:8: check \"a\": duplicate check name"},
      {"bad target", head + "target = \"h\"\n", "test.toml:4:10: check \"a\": key \"target\": bad target \"h\": expected host:port"},
      {"bad port", head + "target = \"h:99999\"\n", "key \"target\": bad target \"h:99999\": port must be"},
      {"unknown probe", "[[check]]\nname = \"a\"\nprobe = \"icmp\"\ntarget = \"h:1\"\n", "test.toml:3:9: check \"a\": key \"probe\": unknown probe kind \"icmp\" (known: dns, http, isoill, ldap, tcp, tds, tls, z3950)"},
      {"reserved label", head + "target = \"h:1\"\nlabels = { target = \"x\" }\n", "label name \"target\" is reserved"},
      {"invalid label name", head + "target = \"h:1\"\nlabels = { \"my-label\" = \"x\" }\n", "label name \"my-label\" is not a valid Prometheus label name"},
      {"label not a string", head + "target = \"h:1\"\nlabels = { tier = 1 }\n", "label \"tier\" must be a string"},
      {"wrong type", head + "target = \"h:1\"\nrequired = \"yes\"\n", "test.toml:5:12: check \"a\": key \"required\": must be true or false"},
      {"check not an array", "check = { name = \"a\" }\n", "test.toml:1:9: \"check\" must be an array of tables"},
      {"TOML syntax", "[agent\nlisten = 1\n", "test.toml:1:7: "},
      {"agent timeout over interval", "[agent]\ninterval = \"1s\"\ntimeout = \"5s\"\n", "[agent]: default timeout 5s is longer than the default interval 1s"},
      {"zero duration", head + "target = \"h:1\"\ninterval = \"0s\"\n", "key \"interval\": must be greater than zero"},
      {"zero confirm delay", "[agent]\nconfirm_delay = \"0s\"\n", "test.toml:2:17: [agent]: key \"confirm_delay\": must be greater than zero"},
      {"confirm not a boolean", head + "target = \"h:1\"\nconfirm_failures = 1\n", "test.toml:5:20: check \"a\": key \"confirm_failures\": must be true or false"},
      {"too many confirmation re-runs", "[agent]\nconfirm_runs = 11\n", "test.toml:2:16: [agent]: key \"confirm_runs\""},
      {"negative confirmation re-runs", head + "target = \"h:1\"\nconfirm_runs = -1\n", "test.toml:5:16: check \"a\": key \"confirm_runs\""},
      {"both confirmation keys", head + "target = \"h:1\"\nconfirm_runs = 2\nconfirm_failures = true\n", "test.toml:6:20: check \"a\": key \"confirm_failures\": set confirm_runs or confirm_failures, not both"},
  };
  for (const auto& c : cases) {
    const std::string message = error_of(c.text);
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.what << "\n  got:      " << message << "\n  expected: " << c.expected;
  }
}

TEST(Config, MissingFileIsAConfigError) {
  EXPECT_THROW(load_config_file("/nonexistent/connectivity.toml"), ConfigError);
}

// The message of the ConfigError loading `path` gives; "<no error>" when it loads.
std::string file_error_of(const std::string& path) {
  try {
    load_config_file(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

// A reload onto an empty file would drop every check and still report success: a config that
// runs nothing is a mistake unless it says it means it.
TEST(Config, AConfigWithNothingToRunIsAnErrorUnlessItSaysSo) {
  const std::string expected =
      "empty.toml:1:1: no [[check]] or [[inbound]] to run (an empty or wrong file?); "
      "to run none on purpose, set allow_empty = true in [agent]";
  EXPECT_EQ(error_of_named("", "empty.toml"), expected);
  EXPECT_EQ(error_of_named("# only a comment\n\n[agent]\ninterval = \"30s\"\n", "empty.toml"), expected);
  EXPECT_EQ(error_of_named("[agent]\nallow_empty = false\n", "empty.toml"), expected);
  EXPECT_EQ(error_of_named("[agent]\nallow_empty = \"yes\"\n", "empty.toml"),
            "empty.toml:2:15: [agent]: key \"allow_empty\": must be true or false");
  EXPECT_TRUE(parse_config("[agent]\nallow_empty = true\n", "empty.toml").checks.empty());
  // An inbound watch alone does something.
  EXPECT_EQ(parse_config("[[inbound]]\nname = \"w\"\nport = 210\nsources = [{ source = \"a\", address = \"192.0.2.1\" }]\n",
                         "inbound.toml")
                .inbound.size(),
            1u);
  EXPECT_EQ(file_error_of(testing::kNullDevice),
            std::string(testing::kNullDevice) + ":1:1: no [[check]] or [[inbound]] to run (an empty or wrong file?); "
                                                "to run none on purpose, set allow_empty = true in [agent]");
}

TEST(Config, ADirectoryIsNamedAsOne) {
  const std::string dir = std::filesystem::temp_directory_path().string();
  EXPECT_EQ(file_error_of(dir), dir + ": is a directory");
}

// /dev/zero, a FIFO or a runaway file is cut off at the cap, never read whole into memory.
TEST(Config, AFileOverTheCapIsRefusedWithoutReadingItAll) {
  const std::string dir = testing::kWindows ? testing::make_temp_dir("config-cap") : "";
  const std::string endless = testing::endless_file(dir);  // /dev/zero on Linux
  EXPECT_EQ(file_error_of(endless), endless + ": larger than 16 MiB, the most a config or profile file may be");
  if (!dir.empty()) std::filesystem::remove_all(dir);
}

TEST(Config, DurationsBeyondTheirBoundAreRejectedAtTheirPosition) {
  const std::string head = "[[check]]\nname = \"a\"\nprobe = \"tcp\"\ntarget = \"h:1\"\n";
  EXPECT_EQ(error_of(head + "interval = \"200000d\"\n"),
            "test.toml:5:12: check \"a\": key \"interval\": \"200000d\" is longer than 7d, the longest interval");
  EXPECT_EQ(error_of(head + "interval = \"106752d\"\ntimeout = \"106752d\"\n"),
            "test.toml:5:12: check \"a\": key \"interval\": \"106752d\" is longer than 7d, the longest interval");
  EXPECT_EQ(error_of(head + "interval = \"7d\"\ntimeout = \"1d1ms\"\n"),
            "test.toml:6:11: check \"a\": key \"timeout\": \"1d1ms\" is longer than 1d, the longest timeout");
  EXPECT_EQ(error_of("[agent]\ninterval = \"7d1s\"\n"),
            "test.toml:2:12: [agent]: key \"interval\": \"7d1s\" is longer than 7d, the longest interval");
  EXPECT_EQ(error_of("[agent]\ntimeout = \"25h\"\n"),
            "test.toml:2:11: [agent]: key \"timeout\": \"25h\" is longer than 1d, the longest timeout");
  EXPECT_EQ(error_of("[agent]\nconfirm_delay = \"2d\"\n"),
            "test.toml:2:17: [agent]: key \"confirm_delay\": \"2d\" is longer than 1d, the longest confirm_delay");
  EXPECT_EQ(error_of("[[inbound]]\nname = \"w\"\nport = 210\nexpect_within = \"32d\"\n"
                     "sources = [{ source = \"a\", address = \"192.0.2.1\" }]\n"),
            "test.toml:4:17: inbound \"w\": key \"expect_within\": \"32d\" is longer than 31d, the longest expect_within");
  // The bounds themselves are allowed.
  const Config longest = parse_config(head + "interval = \"7d\"\ntimeout = \"1d\"\n", "test.toml");
  EXPECT_EQ(longest.checks.at(0).interval, 7 * 24h);
  EXPECT_EQ(longest.checks.at(0).timeout, 24h);
}

TEST(Config, TheListenAddressIsCheckedAtLoad) {
  const auto listen_error = [](const std::string& listen) {
    return error_of("[agent]\nallow_empty = true\nlisten = \"" + listen + "\"\n");
  };
  const std::string why = " (expected host:port, \":port\" or \"[v6-address]:port\", port 0 to 65535)";
  EXPECT_EQ(listen_error(":99999"), "test.toml:3:10: [agent]: key \"listen\": bad listen address \":99999\": port must be 0 to 65535" + why);
  EXPECT_EQ(listen_error("garbage"), "test.toml:3:10: [agent]: key \"listen\": bad listen address \"garbage\": no :port" + why);
  for (const char* bad : {"", ":", "127.0.0.1", "9470", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:-1", "::1:9470",
                          "[::1]9470", "[::1", "[nothost]:9470", "[127.0.0.1]:9470", "bad host:9470", "a,b:1",
                          "127.0.0.1:9470s", "127.0.0.1:9470,[::1]:9470", "host/x:1", "1.2.3.4.5:1"}) {
    const std::string message = listen_error(bad);
    EXPECT_EQ(message.rfind("test.toml:3:10: [agent]: key \"listen\": bad listen address", 0), 0u) << bad << ": " << message;
  }
  for (const char* good : {":0", ":9470", "0.0.0.0:9470", "127.0.0.1:0", "[::]:9470", "[::1]:65535", "localhost:9470",
                           "agent.example.org:9470"}) {
    EXPECT_EQ(parse_config("[agent]\nallow_empty = true\nlisten = \"" + std::string(good) + "\"\n", "test.toml").agent.listen,
              std::vector<std::string>{std::string(good)});
  }
}

TEST(Config, AgentCountsAreBounded) {
  EXPECT_EQ(error_of("[agent]\nresolver_threads = 100000\n"),
            "test.toml:2:20: [agent]: key \"resolver_threads\": must be an integer from 1 to 64");
  EXPECT_EQ(error_of("[agent]\nresolver_threads = 0\n"),
            "test.toml:2:20: [agent]: key \"resolver_threads\": must be an integer from 1 to 64");
  EXPECT_EQ(error_of("[agent]\nmax_concurrent_probes = 9223372036854775807\n"),
            "test.toml:2:25: [agent]: key \"max_concurrent_probes\": must be an integer from 1 to 65536");
  EXPECT_EQ(error_of("[agent]\nmax_concurrent_probes = -1\n"),
            "test.toml:2:25: [agent]: key \"max_concurrent_probes\": must be an integer from 1 to 65536");
  const Config most = parse_config("[agent]\nallow_empty = true\nresolver_threads = 64\nmax_concurrent_probes = 65536\n", "t.toml");
  EXPECT_EQ(most.agent.resolver_threads, 64u);
  EXPECT_EQ(most.agent.max_concurrent_probes, 65536u);
}

// [agent] latency_buckets: a list of ascending positive seconds; anything else is named at its
// position, and the default is the two bounds that keep a check under 15 series.
TEST(Config, LatencyBucketsAreAscendingPositiveSeconds) {
  const std::string allow = "allow_empty = true\n";
  EXPECT_EQ(parse_config("[agent]\n" + allow, "t.toml").agent.latency_buckets, (std::vector<double>{0.1, 1}));
  EXPECT_EQ(parse_config("[agent]\n" + allow + "latency_buckets = [0.005, 1, 30]\n", "t.toml").agent.latency_buckets,
            (std::vector<double>{0.005, 1, 30}));
  EXPECT_TRUE(parse_config("[agent]\n" + allow + "latency_buckets = []\n", "t.toml").agent.latency_buckets.empty());
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = 0.5\n"),
            "test.toml:2:19: [agent]: key \"latency_buckets\": must be a list of upper bounds in seconds, e.g. [0.01, 0.1, 1]");
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = [0.5, 0.1]\n"),
            "test.toml:2:25: [agent]: key \"latency_buckets\": bound 2: must be above the bound before it");
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = [0.5, 0.5]\n"),
            "test.toml:2:25: [agent]: key \"latency_buckets\": bound 2: must be above the bound before it");
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = [-1]\n"),
            "test.toml:2:20: [agent]: key \"latency_buckets\": bound 1: must be above 0 and at most 86400 seconds");
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = [nan]\n"),
            "test.toml:2:20: [agent]: key \"latency_buckets\": bound 1: must be above 0 and at most 86400 seconds");
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = [inf]\n"),
            "test.toml:2:20: [agent]: key \"latency_buckets\": bound 1: must be above 0 and at most 86400 seconds");
  EXPECT_EQ(error_of("[agent]\nlatency_buckets = [\"1s\"]\n"),
            "test.toml:2:20: [agent]: key \"latency_buckets\": bound 1: must be a number of seconds");
  std::string many = "[agent]\nlatency_buckets = [";
  for (int i = 1; i <= 41; ++i) many += std::to_string(i) + (i < 41 ? ", " : "]\n");
  EXPECT_EQ(error_of(many),
            "test.toml:2:19: [agent]: key \"latency_buckets\": 41 bounds; at most 40 (each is one more series for every check)");
}

TEST(Config, EmbeddedDefaultIsValidAndHasTheIlliadEssentials) {
  const Config c = parse_config(embedded_default_config(), std::string(kEmbeddedConfigName));
  std::vector<std::string> targets;
  for (const auto& check : c.checks) targets.push_back(check.target.to_string());
  EXPECT_EQ(targets, (std::vector<std::string>{"webservices.oclc.org:443", "update.atlas-sys.com:443",
                                               "ill.sd00.worldcat.org:443"}));
}

TEST(Config, EveryShippedExampleValidates) {
  std::size_t seen = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(CONNECTIVITY_CONFIGS_DIR)) {
    if (entry.path().extension() != ".toml") continue;
    if (entry.path().parent_path().filename() == "profiles") continue;  // profiles_test: they are included, not loaded
    ++seen;
    EXPECT_NO_THROW(load_config_file(entry.path().string())) << entry.path();
  }
  EXPECT_GE(seen, 2u);
}

TEST(Config, SeriesKeyFollowsLabelsNotSchedule) {
  Config a = parse_config(kValid, "a.toml");
  std::string changed = kValid;
  changed.replace(changed.find("\"1m\""), 4, "\"2m\"");
  Config b = parse_config(changed, "b.toml");
  EXPECT_EQ(a.checks[1].series_key(), b.checks[1].series_key());
  EXPECT_FALSE(a.checks[1].same_schedule_as(b.checks[1]));
  EXPECT_TRUE(a.checks[0].same_schedule_as(b.checks[0]));
}

}  // namespace
}  // namespace connectivity

namespace connectivity {
namespace {

TEST(Config, ListenTakesOneAddressOrAListAndTheWebConfigIsBesideTheFile) {
  const Config several = parse_config(
      "[agent]\nallow_empty = true\nlisten = [\"0.0.0.0:9470\", \"[::]:9470\"]\nweb_config_file = \"web.yml\"\n",
      "/etc/connectivity-agent/agent.toml");
  EXPECT_EQ(several.agent.listen, (std::vector<std::string>{"0.0.0.0:9470", "[::]:9470"}));
  EXPECT_EQ(std::filesystem::path(several.agent.web_config_file),
            std::filesystem::path("/etc/connectivity-agent") / "web.yml");
  const Config defaults = parse_config("[agent]\nallow_empty = true\n", "test.toml");
  EXPECT_EQ(defaults.agent.listen, std::vector<std::string>{"0.0.0.0:9470"});
  EXPECT_EQ(defaults.agent.web_config_file, "");
  EXPECT_THROW(parse_config("[agent]\nallow_empty = true\nweb_config_file = \"\"\n", "test.toml"), ConfigError);
}

}  // namespace
}  // namespace connectivity

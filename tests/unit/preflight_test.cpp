// `connectivity-agent check`: every check once, concurrently, against real loopback peers
// (open, refused, SQL Server's PRELOGIN from spec bytes, TLS), and dropped inside a network
// namespace; the table, the JSON (against a golden file) and the exit code.
#include "agent/preflight.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/platform.h"
#include "tests/support/tds_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace connectivity {
namespace {

using testing::LoopbackListener;
using testing::RefusedPort;

const PreflightEntry& entry_named(const PreflightReport& report, std::string_view name) {
  for (const auto& entry : report.entries)
    if (entry.name == name) return entry;
  throw std::runtime_error("no entry " + std::string(name));
}

std::string port_of(std::uint16_t port) { return std::to_string(port); }

// A site profile with one optional check on an unset variable, so reports have a skipped row.
class PreflightFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("preflight-test");
    std::ofstream(dir_ + "/extra.toml") << R"([profile]
description = "test profile"
[vars.partner_host]
kind = "host"
description = "the partner"
[[check]]
name = "partner-iso-ill"
probe = "isoill"
target = "${partner_host}:499"
required = false
run_from = ["ill-server"]
labels = { vendor = "iso", system = "iso-ill", direction = "outbound", doc = "ISO ILL: TCP 499 to the partner" }
)";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Config load(const std::string& text) {
    std::ofstream(dir_ + "/site.toml") << text << "\n[[include]]\nprofile = \"extra.toml\"\n";
    return load_config_file(dir_ + "/site.toml");
  }

  std::string dir_;
};

std::string check_toml(const std::string& name, const std::string& probe, std::uint16_t port, const std::string& direction,
                       const std::string& doc, bool required = true) {
  return "[[check]]\nname = \"" + name + "\"\nprobe = \"" + probe + "\"\ntarget = \"127.0.0.1:" + port_of(port) + "\"\n" +
         (required ? "" : "required = false\n") + "labels = { direction = \"" + direction + "\", doc = \"" + doc + "\" }\n";
}

std::string mixed_config(std::uint16_t open, std::uint16_t refused, std::uint16_t sql) {
  return "[agent]\ntimeout = \"2s\"\nlabels = { site = \"test\" }\n" + check_toml("open", "tcp", open, "outbound", "rule A") +
         check_toml("refused", "tcp", refused, "inbound", "rule B") + check_toml("sql", "tds", sql, "outbound", "rule C") +
         "run_from = [\"illiad-web-server\", \"staff-client\"]\n" +
         check_toml("optional-refused", "tcp", refused, "outbound", "rule D", false);
}

TEST_F(PreflightFixture, MixedOutcomesGiveRowsAndExitCode) {
  LoopbackListener open;
  RefusedPort refused;
  testing::TdsTestServer sql(testing::TdsScript{.reply = testing::PreloginAnswer{.major = 16, .minor = 0, .build = 1000}.packet()});
  const Config config = load(mixed_config(open.port(), refused.port(), sql.port()));

  std::vector<std::string> heard;
  const PreflightReport report = run_preflight(config, false, [&](const PreflightEntry& entry, std::size_t done, std::size_t total) {
    heard.push_back(entry.name + " " + std::to_string(done) + "/" + std::to_string(total));
  });
  ASSERT_EQ(report.entries.size(), 5u);
  EXPECT_EQ(heard.size(), 4u);  // every run, not the skipped row

  EXPECT_EQ(entry_named(report, "open").outcome, Outcome::pass);
  EXPECT_EQ(entry_named(report, "refused").outcome, Outcome::fail);
  EXPECT_EQ(entry_named(report, "refused").run.reason, reason::refused);
  EXPECT_EQ(entry_named(report, "sql").outcome, Outcome::pass);
  EXPECT_EQ(entry_named(report, "optional-refused").outcome, Outcome::fail);
  EXPECT_FALSE(entry_named(report, "optional-refused").required);
  EXPECT_EQ(entry_named(report, "partner-iso-ill").outcome, Outcome::skipped);
  EXPECT_EQ(entry_named(report, "partner-iso-ill").missing_vars, std::vector<std::string>{"partner_host"});
  EXPECT_TRUE(open.wait_accepted(1, std::chrono::seconds(10)));  // the pass was a real connection
  EXPECT_EQ(open.accepted(), 1u);
  EXPECT_EQ(report.count(Outcome::pass), 2u);
  EXPECT_EQ(report.count(Outcome::fail), 2u);
  EXPECT_EQ(report.failed_required(), 1u);
  EXPECT_EQ(report.exit_code(), 1);

  const std::string table = render_table(report, false);
  EXPECT_EQ(table.find('\033'), std::string::npos) << "no colour codes when piped";
  std::istringstream lines(table);
  std::string header;
  std::getline(lines, header);
  EXPECT_TRUE(std::regex_search(header, std::regex("^CHECK +TARGET +FROM +DIRECTION +RESULT +REASON +LATENCY +DETAIL +RULE$"))) << header;
  const std::map<std::string, std::string> row_patterns{
      {"open", "^open +127\\.0\\.0\\.1:\\d+ +- +outbound +pass +success +[0-9.]+ ms +- +rule A$"},
      {"refused", "^refused +127\\.0\\.0\\.1:\\d+ +- +inbound +FAIL +refused +[0-9.]+ ms +connect 127\\.0\\.0\\.1:\\d+: Connection refused +rule B$"},
      {"sql", "^sql +127\\.0\\.0\\.1:\\d+ +illiad-web-server,staff-client +outbound +pass +success +[0-9.]+ ms +SQL Server 2022 \\(16\\.0\\.1000\\), encryption off +rule C$"},
      {"optional-refused", "^optional-refused +.* fail \\(optional\\) +refused .* rule D$"},
      {"partner-iso-ill", "^partner-iso-ill +\\$\\{partner_host\\}:499 +ill-server +outbound +skipped +- +- +not run: set partner_host +ISO ILL: TCP 499 to the partner$"},
  };
  std::map<std::string, bool> matched;
  for (std::string line; std::getline(lines, line);)
    for (const auto& [name, pattern] : row_patterns)
      if (std::regex_search(line, std::regex(pattern))) matched[name] = true;
  for (const auto& [name, pattern] : row_patterns) EXPECT_TRUE(matched[name]) << name << " row missing in\n" << table;
  EXPECT_NE(table.find("\n5 checks: 2 passed, 2 failed (1 required), 1 skipped, in "), std::string::npos) << table;
  EXPECT_NE(table.find("A required check failed: exit 1."), std::string::npos);

  const std::string coloured = render_table(report, true);
  EXPECT_NE(coloured.find("\033[1;31mFAIL\033[0m"), std::string::npos);
  EXPECT_NE(coloured.find("\033[32mpass\033[0m"), std::string::npos);
}

TEST_F(PreflightFixture, OnlyRequiredLeavesOptionalChecksOut) {
  LoopbackListener open;
  RefusedPort refused;
  testing::TdsTestServer sql(testing::TdsScript{.reply = testing::PreloginAnswer{}.packet()});
  // Only the optional check fails: "refused" now points at the open port.
  const Config config = load("[agent]\ntimeout = \"2s\"\n" + check_toml("open", "tcp", open.port(), "outbound", "rule A") +
                             check_toml("refused", "tcp", open.port(), "inbound", "rule B") +
                             check_toml("sql", "tds", sql.port(), "outbound", "rule C") +
                             check_toml("optional-refused", "tcp", refused.port(), "outbound", "rule D", false));

  const PreflightReport all = run_preflight(config, false);
  EXPECT_EQ(all.entries.size(), 5u);
  EXPECT_EQ(all.count(Outcome::fail), 1u);
  EXPECT_EQ(all.exit_code(), 0) << "an optional failure does not fail the preflight";
  EXPECT_NE(render_table(all, false).find("Every required check passed."), std::string::npos);

  const PreflightReport required = run_preflight(config, true);
  std::vector<std::string> names;
  for (const auto& entry : required.entries) names.push_back(entry.name);
  EXPECT_EQ(names, (std::vector<std::string>{"open", "refused", "sql"}));
  EXPECT_EQ(required.exit_code(), 0);
}

// Concurrency as behaviour: three peers that never answer each hold a connection before the
// first run's deadline ends it, which one-at-a-time runs could not do.
TEST_F(PreflightFixture, ChecksRunConcurrently) {
  testing::ScriptedPeer a(""), b(""), c("");
  std::string text = "[agent]\ntimeout = \"1s\"\n";
  for (auto* peer : {&a, &b, &c})
    text += "[[check]]\nname = \"silent-" + port_of(peer->port()) + "\"\nprobe = \"tds\"\ntarget = \"127.0.0.1:" +
            port_of(peer->port()) + "\"\n";
  const Config config = load(text);
  std::vector<std::uint64_t> accepted_at_first_end;
  const PreflightReport report = run_preflight(config, false, [&](const PreflightEntry&, std::size_t done, std::size_t) {
    if (done == 1) accepted_at_first_end = {a.accepted(), b.accepted(), c.accepted()};
  });
  EXPECT_EQ(accepted_at_first_end, (std::vector<std::uint64_t>{1, 1, 1}));
  for (const auto& entry : report.entries) {
    if (entry.outcome == Outcome::skipped) continue;
    EXPECT_EQ(entry.run.reason, reason::timeout) << entry.name;
  }
}

TEST_F(PreflightFixture, TlsDetailSaysHowLongTheCertificateLasts) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  testing::TestPki pki;
  const auto leaf = pki.issue("leaf", {.not_after_offset = std::chrono::hours(24 * 30)});
  testing::OpensslServer server({.cert = leaf.cert, .key = leaf.key});
  const Config config = load("[[check]]\nname = \"tls\"\nprobe = \"tls\"\ntarget = \"localhost:" + port_of(server.port()) +
                             "\"\n[check.tls]\nca_file = \"" + pki.ca_file() + "\"\n");
  const PreflightReport report = run_preflight(config, true);
  ASSERT_EQ(report.entries.size(), 1u);
  EXPECT_EQ(report.entries[0].outcome, Outcome::pass) << report.entries[0].run.detail;
  EXPECT_TRUE(std::regex_search(render_table(report, false), std::regex("cert expires in 29 days, TLSv1\\.3")))
      << render_table(report, false);
}

// Each kind puts its own facts into words (ProbeKind::describe): `check`, the status page and the
// JSON API all ask the kind.
std::string words_of(std::string_view kind, const std::vector<Fact>& facts, std::chrono::system_clock::time_point now) {
  const ProbeKind* found = builtin_probes().find(kind);
  EXPECT_NE(found, nullptr) << kind;
  return summary_line(describe_facts(found, facts, now));
}

TEST(DescribeFacts, EachKindReadsItsOwnFacts) {
  const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
  const double now_s = 1'800'000'000;
  EXPECT_EQ(words_of("tls", {{"connectivity_tls_earliest_cert_not_after_timestamp_seconds", "", {}, now_s - 3 * 86400 + 10}}, now),
            "cert expired 3 days ago");
  EXPECT_EQ(words_of("tls", {{"connectivity_tls_earliest_cert_not_after_timestamp_seconds", "", {}, now_s + 1.5 * 86400}}, now),
            "cert expires in 1 day");
  EXPECT_EQ(words_of("tls", {{"connectivity_tls_earliest_cert_not_after_timestamp_seconds", "", {}, now_s + 83.5 * 86400}}, now),
            "cert expires in 83 days");
  EXPECT_EQ(words_of("z3950", {{"connectivity_z3950_info", "",
                                {{"implementation_name", "GFS/YAZ"}, {"implementation_version", "5.34.0"}, {"protocol_version", "3"}}},
                               {"connectivity_z3950_search_hits", "", {{"database", "Default"}}, 42}},
                     now),
            "GFS/YAZ 5.34.0, Z39.50 v3, 42 hits in Default");
  // An https check speaks TLS too: its words say both.
  EXPECT_EQ(words_of("http", {{"connectivity_http_status_code", "", {}, 302},
                              {"connectivity_tls_version_info", "", {{"version", "TLSv1.3"}}}},
                     now),
            "HTTP 302, TLSv1.3");
  std::vector<Fact> addresses;
  for (int i = 1; i <= 6; ++i) addresses.push_back({"connectivity_dns_address_info", "", {{"address", "192.0.2." + std::to_string(i)}}});
  addresses.push_back({"connectivity_dns_addresses", "", {}, 6});
  EXPECT_EQ(words_of("dns", addresses, now), "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 +2 more");
  EXPECT_EQ(words_of("isoill", {{"connectivity_isoill_reply_info", "", {{"apdu", "Status-or-Error-Report"}, {"report", "unknown-transaction-id"}}}}, now),
            "Status-or-Error-Report: unknown-transaction-id");
  EXPECT_EQ(words_of("ldap", {{"connectivity_ldap_root_dse_info", "", {{"supported_ldap_versions", "3"}}},
                              {"connectivity_ldap_naming_contexts", "", {}, 2}},
                     now),
            "LDAP versions 3, 2 naming contexts");
  EXPECT_EQ(words_of("tds", {{"connectivity_tds_server_info", "", {{"product", "unknown"}, {"version", "16.0.1000"}, {"encryption", "off"}}}}, now),
            "SQL Server (16.0.1000), encryption off");
  // A kind says nothing of facts that are not its own, and tcp has none to say.
  EXPECT_EQ(words_of("z3950", {{"connectivity_http_status_code", "", {}, 200}}, now), "");
  EXPECT_EQ(words_of("tcp", {{"connectivity_unknown_info", "", {{"x", "y"}}}}, now), "");
  EXPECT_EQ(summary_line(describe_facts(nullptr, addresses, now)), "");
}

TEST(DescribeFacts, TheCheckPageGetsTheChainAndTheAddressesInFull) {
  const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
  const double now_s = 1'800'000'000;
  const FactWords tls = describe_facts(
      builtin_probes().find("tls"),
      std::vector<Fact>{{"connectivity_tls_cert_not_after_timestamp_seconds", "",
                         {{"issuer", "CN=Test CA"}, {"position", "0"}, {"serial", "0A"}, {"subject", "CN=leaf"}}, now_s + 12.2 * 86400},
                        {"connectivity_tls_cert_not_after_timestamp_seconds", "",
                         {{"issuer", "CN=Test CA"}, {"position", "1"}, {"serial", "01"}, {"subject", "CN=Test CA"}}, now_s - 86400 * 2.5},
                        {"connectivity_tls_verify_result", "", {{"reason", "expired"}}, 1},
                        {"connectivity_tls_verify_result", "", {{"reason", "ok"}}, 0}},
      now);
  ASSERT_EQ(tls.details.size(), 3u);
  EXPECT_EQ(tls.details[0].first, "certificate 0");
  EXPECT_EQ(tls.details[0].second, "CN=leaf, issued by CN=Test CA, serial 0A, valid until 2027-01-27 12:48 UTC (in 12 days)");
  EXPECT_EQ(tls.details[1].second, "CN=Test CA, issued by CN=Test CA, serial 01, valid until 2027-01-12 20:00 UTC (3 days ago)");
  EXPECT_EQ(tls.details[2], (std::pair<std::string, std::string>{"verification", "failed: expired"}));
  std::vector<Fact> addresses;
  for (int i = 1; i <= 6; ++i) addresses.push_back({"connectivity_dns_address_info", "", {{"address", "192.0.2." + std::to_string(i)}}});
  const FactWords dns = describe_facts(builtin_probes().find("dns"), addresses, now);
  ASSERT_FALSE(dns.details.empty());
  EXPECT_EQ(dns.details[0].second, "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6");
}

// A firewall rule that drops: the SYN goes unanswered, the check times out; the table says so.
TEST_F(PreflightFixture, DroppedPortTimesOutInsideANamespace) {
  testing::NetworkNamespace ns;
  if (!ns.ok()) GTEST_SKIP() << ns.why();
  ASSERT_TRUE(ns.nft("table inet preflight {\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
                     "    tcp dport 9999 drop\n  }\n}\n"));
  PreflightReport report;
  ns.run_inside([&] {
    LoopbackListener open;
    const Config config = load("[agent]\ntimeout = \"1s\"\n[[check]]\nname = \"open\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:" +
                               port_of(open.port()) + "\"\n[[check]]\nname = \"dropped\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:9999\"\n");
    report = run_preflight(config, false);
  });
  EXPECT_EQ(entry_named(report, "open").outcome, Outcome::pass);
  EXPECT_EQ(entry_named(report, "dropped").run.reason, reason::timeout);
  EXPECT_EQ(entry_named(report, "dropped").run.detail, "no result within 1000ms (in phase connect)");
  EXPECT_EQ(report.exit_code(), 1);
}

// The JSON schema, pinned: field names, nesting and value types for pass, fail and skipped rows.
// Volatile values (latencies, ports, the start time) are fixed before rendering.
TEST_F(PreflightFixture, JsonMatchesTheGoldenFile) {
  LoopbackListener open;
  RefusedPort refused;
  testing::TdsTestServer sql(testing::TdsScript{.reply = testing::PreloginAnswer{.major = 16, .minor = 0, .build = 1000}.packet()});
  const Config config = load(mixed_config(open.port(), refused.port(), sql.port()));
  PreflightReport report = run_preflight(config, false);
  report.started_at = std::chrono::system_clock::from_time_t(1'800'000'000);
  report.took = std::chrono::milliseconds(250);
  for (auto& entry : report.entries) {
    entry.run.total = std::chrono::microseconds(1500);
    for (auto& phase : entry.run.phases) phase.took = std::chrono::microseconds(500);
  }
  std::string json = render_json(report, "0.0.0-test");
  for (const auto& [port, name] : std::map<std::uint16_t, std::string>{{open.port(), "OPEN_PORT"}, {refused.port(), "REFUSED_PORT"}, {sql.port(), "SQL_PORT"}})
    json = std::regex_replace(json, std::regex("(:|port )" + port_of(port) + "\\b"), "$1" + name);

  const std::string golden_path = std::string(CONNECTIVITY_TESTS_DIR) + "/golden/check_report.json";
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only
  if (std::getenv("CONNECTIVITY_UPDATE_GOLDEN")) std::ofstream(golden_path) << json;
  std::ifstream file(golden_path);
  std::stringstream golden;
  golden << file.rdbuf();
  EXPECT_EQ(json, golden.str()) << "to accept a deliberate schema change: CONNECTIVITY_UPDATE_GOLDEN=1, then review the diff";
}

}  // namespace
}  // namespace connectivity

// The status page and its JSON from status records: escaping of what peers and configs say,
// the order a person reads it in, the recent-run history behind it, and masked secrets.
#include "agent/results.h"
#include "agent/status.h"
#include "exporters/status_json.h"
#include "exporters/status_page.h"
#include "probes/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

namespace connectivity {
namespace {

using namespace std::chrono_literals;

std::size_t count_of(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

CheckStatus status(std::string name, CheckState state, bool required, std::string system) {
  CheckStatus s;
  s.name = std::move(name);
  s.probe = "tcp";
  s.kind = builtin_probes().find("tcp");
  s.target = "192.0.2.10:1433";
  s.required = required;
  s.state = state;
  s.labels = {{"system", std::move(system)}, {"vendor", "atlas"}};
  if (state == CheckState::down) s.reason = reason::refused;
  if (state == CheckState::up) s.reason = reason::success;
  return s;
}

TEST(HtmlEscape, EscapesEveryCharacterThatEndsTextOrAnAttribute) {
  EXPECT_EQ(html_escape(R"(<a href="x" title='y'>&amp;</a>)"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain text, ünïcode"), "plain text, ünïcode");
  EXPECT_EQ(url_path_segment("sql <b>/down ü"), "sql%20%3Cb%3E%2Fdown%20%C3%BC");
}

// A TLS subject, a Z39.50 implementation name and a probe's detail come from the peer; a name
// and labels from the config. None of them may become markup.
TEST(StatusPage, ValuesFromPeersAndConfigsAreEscaped) {
  const auto now = std::chrono::system_clock::now();
  CheckStatus tls = status("<script>alert('name')</script>", CheckState::down, true, "<b>illiad</b>");
  tls.probe = "tls";
  tls.kind = builtin_probes().find("tls");
  tls.reason = "cert_invalid";
  tls.detail = "certificate of x: <img src=x onerror=alert('detail')>";
  tls.labels.push_back({"doc", "\"><script>alert('doc')</script>"});
  tls.facts = {{"connectivity_tls_cert_not_after_timestamp_seconds", "",
                {{"issuer", "CN=<script>alert('issuer')</script>"}, {"position", "0"}, {"serial", "01"},
                 {"subject", "CN=<script>alert('subject')</script>"}},
                to_unix_seconds(now) + 86400 * 30},
               {"connectivity_tls_version_info", "", {{"version", "<i>TLSv1.3</i>"}}}};
  tls.run_from = {"<u>role</u>"};
  tls.settings = CheckStatus::Settings{.options = "server_name = \"<script>alert('option')</script>\"\n"};
  tls.recent = {{.finished_at = to_unix_seconds(now), .seconds = 0.01, .reason = "cert_invalid", .set_state = true,
                 .phase_seconds = {}, .detail = "<script>alert('run')</script>"}};
  StatusSnapshot snapshot{.taken_at = now, .checks = {tls}, .inbound = {}, .lifecycle = false};
  InboundSnapshot inbound;
  inbound.name = "<script>alert('watch')</script>";
  inbound.running = false;
  inbound.why_not_running = "<script>alert('why')</script>";
  inbound.sources = {{.source = "<script>alert('source')</script>"}};
  inbound.up = {false};
  snapshot.inbound.push_back(inbound);

  const PageContext context{.agent_version = "<v>", .hostname = "<host>", .lifecycle = true};
  for (const std::string& page : {render_status_page(snapshot, context), render_check_page(tls, context, now),
                                  render_missing_check_page("<script>alert('missing')</script>")}) {
    EXPECT_EQ(page.find("<script>alert"), std::string::npos) << page;
    EXPECT_EQ(page.find("<img"), std::string::npos);
    EXPECT_EQ(page.find("<b>"), std::string::npos);
    EXPECT_EQ(page.find("<i>"), std::string::npos);
    EXPECT_EQ(page.find("<u>"), std::string::npos);
    EXPECT_EQ(page.find("\"><script"), std::string::npos);
    EXPECT_LE(count_of(page, "<script"), 1u) << "only the page's own script";
    EXPECT_EQ(count_of(page, "<script>"), count_of(page, "</script>"));
  }
  const std::string check_page = render_check_page(tls, context, now);
  EXPECT_NE(check_page.find("CN=&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;"), std::string::npos)
      << "the subject is shown, as text";
  EXPECT_NE(check_page.find("&lt;script&gt;alert(&#39;option&#39;)"), std::string::npos);
  EXPECT_NE(check_page.find("/api/v1/checks/%3Cscript%3Ealert%28%27name%27%29%3C%2Fscript%3E/run"), std::string::npos);
}

TEST(StatusPage, FailingRequiredChecksComeFirstThenByGroup) {
  const auto now = std::chrono::system_clock::now();
  StatusSnapshot snapshot{.taken_at = now,
                          .checks = {status("a-up", CheckState::up, true, "alma"),
                                     status("b-skipped", CheckState::skipped, false, "alma"),
                                     status("c-optional-down", CheckState::down, false, "catalogue"),
                                     status("d-pending", CheckState::pending, true, "illiad"),
                                     status("e-up", CheckState::up, true, "illiad"),
                                     status("f-required-down", CheckState::down, true, "illiad")},
                          .inbound = {},
                          .lifecycle = false};
  const std::string page = render_status_page(snapshot, {.agent_version = "1", .hostname = "h", .lifecycle = false});
  std::vector<std::string> order;
  const std::regex card(R"re(data-check="([^"]+)" data-state="([a-z]+)")re");
  for (auto it = std::sregex_iterator(page.begin(), page.end(), card); it != std::sregex_iterator(); ++it)
    order.push_back((*it)[1].str() + ":" + (*it)[2].str());
  const std::vector<std::string> expected{"f-required-down:down", "d-pending:pending", "e-up:up",  // illiad: a required check is down
                                          "c-optional-down:down",                                  // catalogue: an optional one
                                          "a-up:up", "b-skipped:skipped"};
  EXPECT_EQ(order, expected);
  EXPECT_NE(page.find("<title>1 down - connectivity on h</title>"), std::string::npos);
  EXPECT_NE(page.find("192.0.2.10 refused the connection on port 1433"), std::string::npos) << "the failure in words";
  EXPECT_NE(page.find("<noscript><meta http-equiv=\"refresh\""), std::string::npos) << "refreshes without the script";
  EXPECT_EQ(page.find("src=\""), std::string::npos) << "nothing loaded from elsewhere";
  EXPECT_EQ(page.find("href=\"http"), std::string::npos);
}

// An inbound watch whose source has not reached us is a broken path like a failing required
// check: it is counted down and shown first, in its system's group.
TEST(StatusPage, AnInboundWatchThatIsDownRanksWithFailingRequiredChecks) {
  InboundSnapshot watch;
  watch.name = "courseflow-inbound";
  watch.port = 443;
  watch.running = true;
  watch.labels = {{"system", "courseflow"}, {"vendor", "talis"}};
  watch.sources = {{.source = "203.0.113.0/24", .syn = 4, .answered = 0}, {.source = "198.51.100.7", .syn = 2, .answered = 2}};
  watch.up = {false, true};
  StatusSnapshot snapshot{.taken_at = std::chrono::system_clock::now(),
                          .checks = {status("a-up", CheckState::up, true, "alma")},
                          .inbound = {watch},
                          .lifecycle = false};
  const std::string page = render_status_page(snapshot, {.agent_version = "1", .hostname = "h", .lifecycle = false});
  const auto watch_at = page.find("data-check=\"courseflow-inbound\" data-state=\"down\"");
  ASSERT_NE(watch_at, std::string::npos);
  EXPECT_LT(watch_at, page.find("data-check=\"a-up\""));
  EXPECT_NE(page.find("1 down</span>"), std::string::npos);
  EXPECT_NE(page.find("203.0.113.0/24"), std::string::npos);
  EXPECT_NE(page.find("no answered call within the expected time"), std::string::npos);
  watch.up = {true, true};
  snapshot.inbound = {watch};
  const std::string fine = render_status_page(snapshot, {.agent_version = "1", .hostname = "h", .lifecycle = false});
  EXPECT_NE(fine.find("data-check=\"courseflow-inbound\" data-state=\"up\""), std::string::npos);
  EXPECT_NE(fine.find("All up"), std::string::npos);
}

// The last hour is drawn on the server: a point a minute, failures marked, and a lone minute
// still visible (a dash: a line of no length draws nothing).
TEST(StatusPage, TheLastHourIsDrawnAsInlineSvg) {
  const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
  const double minute = std::floor(to_unix_seconds(now) / 60) * 60;
  CheckStatus check = status("sql", CheckState::down, true, "illiad");
  check.seconds = 0.002;
  check.last_hour = {{.start = minute, .worst_seconds = 0.004, .runs = 4, .failures = 1}};
  StatusSnapshot snapshot{.taken_at = now, .checks = {check}, .inbound = {}, .lifecycle = false};
  const PageContext context{.agent_version = "1", .hostname = "h", .lifecycle = false};
  std::smatch points;
  std::string page = render_status_page(snapshot, context);
  ASSERT_TRUE(std::regex_search(page, points, std::regex(R"re(<polyline points="([^"]*)")re")));
  EXPECT_EQ(points[1].str(), "117.0,2.0 120.0,2.0") << "the current minute at the right edge, as a dash";
  EXPECT_EQ(count_of(page, "<rect class=\"fail\""), 1u);
  EXPECT_NE(page.find("last hour: slowest run 4.0 ms, 4 runs, 1 failed"), std::string::npos);

  snapshot.checks[0].last_hour = {{.start = minute - 59 * 60, .worst_seconds = 0.002, .runs = 4, .failures = 0},
                                   {.start = minute, .worst_seconds = 0.004, .runs = 4, .failures = 0}};
  page = render_status_page(snapshot, context);
  ASSERT_TRUE(std::regex_search(page, points, std::regex(R"re(<polyline points="([^"]*)")re")));
  EXPECT_EQ(points[1].str(), "0.0,13.0 120.0,2.0") << "an hour ago at the left, at half the height";
  EXPECT_EQ(count_of(page, "<rect class=\"fail\""), 0u);
}

TEST(StatusPage, RunNowIsOfferedOnlyWithLifecycle) {
  const auto now = std::chrono::system_clock::now();
  const CheckStatus check = status("sql", CheckState::up, true, "illiad");
  const std::string on = render_check_page(check, {.agent_version = "1", .hostname = "h", .lifecycle = true}, now);
  const std::string off = render_check_page(check, {.agent_version = "1", .hostname = "h", .lifecycle = false}, now);
  EXPECT_NE(on.find("<form method=\"post\" action=\"/api/v1/checks/sql/run\">"), std::string::npos);
  EXPECT_EQ(on.find("id=\"run-now\" disabled"), std::string::npos);
  EXPECT_NE(off.find("id=\"run-now\" disabled"), std::string::npos);
  EXPECT_NE(off.find("--web.enable-lifecycle"), std::string::npos);
}

// The policy names the one script by hash: a script injected past the escaping would not run.
TEST(StatusPage, TheSecurityPolicyAllowsOnlyThePagesOwnScript) {
  const std::string& policy = status_page_security_policy();
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos);
  EXPECT_TRUE(std::regex_search(policy, std::regex("script-src 'sha256-[A-Za-z0-9+/]{43}='")));
  EXPECT_EQ(policy.find("unsafe-inline'; script"), std::string::npos);
  EXPECT_EQ(policy.find("script-src 'unsafe"), std::string::npos);
}

TEST(MaskedOptions, SecretsAreMaskedAndPathsToThemShown) {
  const std::string masked = masked_options(
      "password = \"hunter2\"\nbasic_auth_password_file = \"/etc/secret/pw\"\napi_token = \"abc\"\n"
      "server_name = \"sql.example.edu\"\n[headers]\nAuthorization = \"Bearer xyz\"\nAccept = \"text/html\"\n");
  for (const char* secret : {"hunter2", "\"abc\"", "Bearer xyz"}) EXPECT_EQ(masked.find(secret), std::string::npos) << masked;
  EXPECT_NE(masked.find("/etc/secret/pw"), std::string::npos) << masked;
  EXPECT_NE(masked.find("sql.example.edu"), std::string::npos);
  EXPECT_NE(masked.find("text/html"), std::string::npos);
  EXPECT_EQ(count_of(masked, "<masked>"), 3u) << masked;
  EXPECT_EQ(masked_options(""), "");
}

TEST(RunHistory, KeepsTheLastTwentyRunsNewestFirstAndAnHourByMinute) {
  constexpr std::string_view phases[] = {"resolve", "connect"};
  const std::vector<std::string_view> reasons{reason::success, reason::refused};
  RunHistory history(2);
  const auto start = std::chrono::system_clock::from_time_t(1'800'000'000);  // a whole minute
  for (int i = 0; i < 130; ++i) {
    RunRecord run;
    run.reason = i % 10 == 0 ? reason::refused : reason::success;
    run.detail = "run " + std::to_string(i);
    run.total = std::chrono::milliseconds(i + 1);
    run.phases = {{"connect", std::chrono::milliseconds(i)}, {"not a phase of the kind", 1s}};
    run.finished_at = start + std::chrono::seconds(30 * i);  // two a minute, 65 minutes
    history.add(run, phases, i % 10 == 0 ? 1 : 0, i % 10 != 0);
  }
  const auto recent = history.recent(reasons);
  ASSERT_EQ(recent.size(), RunHistory::kRecentRuns);
  EXPECT_EQ(recent.front().detail, "run 129");
  EXPECT_EQ(recent.back().detail, "run 110");
  EXPECT_EQ(recent[9].reason, reason::refused);  // run 120
  EXPECT_FALSE(recent[9].set_state);
  ASSERT_EQ(recent.front().phase_seconds.size(), 2u);
  EXPECT_DOUBLE_EQ(recent.front().phase_seconds[0], 0);
  EXPECT_NEAR(recent.front().phase_seconds[1], 0.129, 1e-6);  // run 129: connect took 129 ms

  const double now = to_unix_seconds(start + std::chrono::seconds(30 * 129));
  const auto hour = history.last_hour(now);
  ASSERT_EQ(hour.size(), RunHistory::kMinutes);
  EXPECT_DOUBLE_EQ(hour.back().start, std::floor(now / 60) * 60);
  EXPECT_EQ(hour.back().runs, 2u);
  EXPECT_NEAR(hour.back().worst_seconds, 0.130, 1e-6);
  unsigned failures = 0;
  for (const auto& minute : hour) failures += minute.failures;
  EXPECT_EQ(failures, 12u);  // the last 60 minutes hold runs 10 to 129, and every tenth failed
  EXPECT_TRUE(history.last_hour(now + 3 * 3600).empty()) << "an hour later, nothing is left";
}

TEST(ChecksJson, ThePageAndTheApiShareTheCheckCommandsSchema) {
  const auto now = std::chrono::system_clock::now();
  std::vector<CheckStatus> checks{status("sql \"1\"", CheckState::down, true, "illiad"),
                                  status("web", CheckState::pending, false, "illiad")};
  const std::string json = render_checks_json({.agent_version = "1", .checks = &checks, .generated_at = now});
  EXPECT_NE(json.find(R"("schema":"connectivity-agent-check/1")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("name":"sql \"1\"")"), std::string::npos);
  EXPECT_NE(json.find(R"("exit_code":1)"), std::string::npos);
  EXPECT_NE(json.find(R"("failure":"192.0.2.10 refused the connection on port 1433")"), std::string::npos);
  EXPECT_NE(json.find(R"("pending":1)"), std::string::npos);
  EXPECT_NE(json.find(R"("result":"pending")"), std::string::npos);
}

}  // namespace
}  // namespace connectivity

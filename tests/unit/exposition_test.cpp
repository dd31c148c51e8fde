// A real agent in-process: checks against loopback peers, scraped over HTTP, reloaded.
#include "agent/exposition_text.h"
#include "agent/runtime.h"
#include "exporters/prometheus_exposition.h"
#include "tests/support/gunzip.h"
#include "tests/support/http_client.h"
#include "tests/support/loopback.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace connectivity {
namespace {

using testing::find;
using testing::http_request;
using testing::LoopbackListener;
using testing::parse_exposition;
using testing::RefusedPort;
using testing::value_of;

class RunningAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("connectivity-agent-test");
    config_path_ = dir_ + "/agent.toml";
  }
  void TearDown() override {
    if (agent_) {
      agent_->stop();
      thread_.join();
      agent_.reset();
    }
    std::filesystem::remove_all(dir_);
  }

  std::string check(const std::string& name, int port, const std::string& extra = "") const {
    return "[[check]]\nname = \"" + name + "\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:" + std::to_string(port) +
           "\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n" + extra + "\n";
  }
  void write_config(const std::string& text) { std::ofstream(config_path_) << text; }

  // `lifecycle`: serve POST /-/reload (--web.enable-lifecycle).
  void start(bool lifecycle = true) {
    agent_ = std::make_unique<Agent>(AgentOptions{
        .config_path = config_path_, .listen = {"127.0.0.1:0"}, .handle_signals = false, .web_enable_lifecycle = lifecycle});
    port_ = agent_->listening_ports().at(0);
    thread_ = std::thread([this] { agent_->run(); });
  }

  std::string key(const std::string& name, int port, const Labels& labels = {}) const {
    CheckConfig c;
    c.name = name;
    c.kind = builtin_probes().find("tcp");
    c.target = parse_target("127.0.0.1:" + std::to_string(port));
    c.labels = labels;
    c.labels.emplace_back("vantage", "any");  // an agent given no role
    std::sort(c.labels.begin(), c.labels.end());
    return c.series_key();
  }
  bool wait_for_runs(const std::string& series_key, std::uint64_t n) const {
    return agent_->results().wait_for_runs(series_key, n, std::chrono::seconds(10));
  }
  std::vector<testing::Sample> scrape() const {
    const auto reply = http_request(port_, "GET", "/metrics");
    EXPECT_EQ(reply.status, 200);
    return parse_exposition(reply.body);
  }

  std::string dir_, config_path_;
  std::unique_ptr<Agent> agent_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(RunningAgent, ServesSeriesForOpenAndRefusedTargets) {
  LoopbackListener open;
  RefusedPort closed;
  write_config("[agent]\nlabels = { site = \"test-lab\" }\n" +
               check("open", open.port(), "labels = { vendor = \"oclc\", direction = \"outbound\" }") +
               check("closed", closed.port(), "required = false"));
  start();
  const Labels open_labels{{"direction", "outbound"}, {"site", "test-lab"}, {"vendor", "oclc"}};
  ASSERT_TRUE(wait_for_runs(key("open", open.port(), open_labels), 2));
  ASSERT_TRUE(wait_for_runs(key("closed", closed.port(), {{"site", "test-lab"}}), 2));

  const auto samples = scrape();
  const std::map<std::string, std::string> open_series{
      {"check", "open"}, {"probe", "tcp"}, {"target", "127.0.0.1:" + std::to_string(open.port())},
      {"vendor", "oclc"}, {"direction", "outbound"}, {"site", "test-lab"}, {"vantage", "any"}};
  EXPECT_EQ(value_of(samples, "connectivity_up", open_series), 1.0);
  EXPECT_EQ(value_of(samples, "connectivity_up", {{"check", "closed"}, {"site", "test-lab"}}), 0.0);
  EXPECT_GE(*value_of(samples, "connectivity_probes_total", {{"check", "open"}, {"result", "success"}}), 2.0);
  EXPECT_GE(*value_of(samples, "connectivity_probes_total", {{"check", "closed"}, {"result", "refused"}}), 2.0);
  // success from the start; a failure reason from its first run, so a check carries no zero
  // series for failures it has never had.
  EXPECT_FALSE(value_of(samples, "connectivity_probes_total", {{"check", "open"}, {"result", "refused"}}));
  EXPECT_EQ(find(samples, "connectivity_probes_total", {{"check", "open"}}).size(), 1u);
  EXPECT_EQ(value_of(samples, "connectivity_probes_total", {{"check", "closed"}, {"result", "success"}}), 0.0);
  EXPECT_EQ(find(samples, "connectivity_probes_total", {{"check", "closed"}}).size(), 2u);
  EXPECT_EQ(value_of(samples, "connectivity_last_result_info", {{"check", "closed"}, {"result", "refused"}}), 1.0);
  EXPECT_EQ(find(samples, "connectivity_probe_duration_seconds", {{"check", "open"}}).size(), 2u);
  EXPECT_TRUE(value_of(samples, "connectivity_probe_duration_seconds", {{"check", "open"}, {"phase", "connect"}}));
  EXPECT_GE(*value_of(samples, "connectivity_probe_latency_seconds_count", {{"check", "open"}}), 2.0);
  // The default buckets: 0.1 s and 1 s, then +Inf.
  EXPECT_EQ(find(samples, "connectivity_probe_latency_seconds_bucket", {{"check", "open"}}).size(), 3u);
  EXPECT_GE(*value_of(samples, "connectivity_probe_latency_seconds_bucket", {{"check", "open"}, {"le", "0.1"}}), 2.0);
  EXPECT_TRUE(value_of(samples, "connectivity_probe_latency_seconds_bucket", {{"check", "open"}, {"le", "1"}}));
  EXPECT_EQ(value_of(samples, "connectivity_probe_latency_seconds_bucket", {{"check", "open"}, {"le", "+Inf"}}),
            value_of(samples, "connectivity_probe_latency_seconds_count", {{"check", "open"}}));
  EXPECT_GT(*value_of(samples, "connectivity_last_success_timestamp_seconds", {{"check", "open"}}), 1.7e9);
  EXPECT_FALSE(value_of(samples, "connectivity_last_success_timestamp_seconds", {{"check", "closed"}}));
  EXPECT_EQ(value_of(samples, "connectivity_check_required", {{"check", "closed"}}), 0.0);
  EXPECT_EQ(value_of(samples, "connectivity_check_required", {{"check", "open"}}), 1.0);
  EXPECT_EQ(value_of(samples, "connectivity_check_interval_seconds", {{"check", "open"}}), 0.1);
  // From the first contradicted failure on; none here.
  EXPECT_FALSE(value_of(samples, "connectivity_transient_failures_total", {{"check", "closed"}}));
  EXPECT_EQ(value_of(samples, "connectivity_agent_build_info", {{"version", std::string(agent_version())}}), 1.0);
  EXPECT_EQ(value_of(samples, "connectivity_agent_config_last_reload_successful"), 1.0);
  EXPECT_GT(*value_of(samples, "connectivity_agent_config_last_reload_success_timestamp_seconds"), 1.7e9);
  EXPECT_EQ(value_of(samples, "connectivity_agent_checks"), 2.0);
  EXPECT_TRUE(value_of(samples, "connectivity_agent_probes_in_flight"));
  EXPECT_GE(*value_of(samples, "connectivity_agent_scheduler_lag_seconds_count"), 4.0);
  EXPECT_TRUE(value_of(samples, "connectivity_agent_skipped_runs_total"));
  EXPECT_GE(open.accepted(), 1u);  // the peer really saw the connections
}

// Prometheus asks for gzip on every scrape: it gets the same text compressed, and a client that
// does not ask (curl, a person) gets it plain.
TEST_F(RunningAgent, MetricsAreGzippedForAScraperThatAsks) {
  LoopbackListener open;
  write_config(check("open", open.port()));
  start();
  ASSERT_TRUE(wait_for_runs(key("open", open.port()), 1));
  const auto plain = http_request(port_, "GET", "/metrics");
  EXPECT_EQ(plain.headers.find("Content-Encoding"), std::string::npos) << plain.headers;
  EXPECT_NE(plain.headers.find("Vary: Accept-Encoding\r\n"), std::string::npos) << plain.headers;
  const auto gzipped = http_request(port_, "GET", "/metrics", "Accept-Encoding: gzip, deflate\r\n");
  EXPECT_EQ(gzipped.status, 200);
  EXPECT_NE(gzipped.headers.find("Content-Encoding: gzip\r\n"), std::string::npos) << gzipped.headers;
  EXPECT_NE(gzipped.headers.find("Content-Length: " + std::to_string(gzipped.body.size()) + "\r\n"), std::string::npos);
  const std::string text = testing::gunzip(gzipped.body);
  const auto samples = parse_exposition(text);
  EXPECT_EQ(value_of(samples, "connectivity_up", {{"check", "open"}}), 1.0);
  EXPECT_EQ(find(samples, "connectivity_up").size(), find(parse_exposition(plain.body), "connectivity_up").size());
  EXPECT_LT(gzipped.body.size(), text.size() / 3);
  // q=0 refuses it.
  const auto refused = http_request(port_, "GET", "/metrics", "Accept-Encoding: gzip;q=0\r\n");
  EXPECT_EQ(refused.headers.find("Content-Encoding"), std::string::npos) << refused.headers;
  EXPECT_EQ(value_of(parse_exposition(refused.body), "connectivity_up", {{"check", "open"}}), 1.0);
}

TEST_F(RunningAgent, HealthIndexAndMethodChecks) {
  write_config("[agent]\nallow_empty = true\n");  // no check needed to answer HTTP
  start();
  EXPECT_EQ(http_request(port_, "GET", "/-/healthy").status, 200);
  EXPECT_EQ(http_request(port_, "GET", "/").status, 200);
  EXPECT_EQ(http_request(port_, "GET", "/nope").status, 404);
  EXPECT_EQ(http_request(port_, "GET", "/-/reload").status, 405);
  EXPECT_EQ(http_request(port_, "POST", "/metrics").status, 405);
  // Exact paths: CivetWeb's handlers match by prefix, ours do not.
  EXPECT_EQ(http_request(port_, "GET", "/metricsXYZ").status, 404);
  EXPECT_EQ(http_request(port_, "GET", "/metrics/foo").status, 404);
  EXPECT_EQ(http_request(port_, "POST", "/-/reload/x").status, 404);
  EXPECT_EQ(http_request(port_, "GET", "/-/healthyx").status, 404);
  EXPECT_EQ(http_request(port_, "GET", "/-/ready/").status, 404);
  EXPECT_EQ(http_request(port_, "GET", "/metrics?name=x").status, 200);
}

// The status page and its API read the store and the running config from the web server's
// threads while the io thread records runs, a reload swaps the config and "run now" wakes a
// check (run under TSan too: tests/run.sh).
TEST_F(RunningAgent, StatusPagesAndRunNowWhileChecksRunAndReload) {
  LoopbackListener open;
  const std::string base = check("often", open.port()) + "[[check]]\nname = \"hourly\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:" +
                           std::to_string(open.port()) + "\"\ninterval = \"1h\"\n";
  write_config(base);
  start(true);
  ASSERT_TRUE(wait_for_runs(key("often", open.port()), 2));
  const std::string hourly = key("hourly", open.port());
  const std::uint64_t hourly_before = agent_->results().runs(hourly);

  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (const char* path : {"/", "/api/v1/checks", "/check/often", "/api/v1/checks/hourly"})
    readers.emplace_back([&, path] {
      for (int i = 0; i < 200 && !done; ++i)
        if (http_request(port_, "GET", path).status != 200) ++bad;
    });
  const auto ran = http_request(port_, "POST", "/api/v1/checks/hourly/run");
  EXPECT_EQ(ran.status, 200) << ran.body;
  EXPECT_NE(ran.body.find("\"recent_runs\":["), std::string::npos);
  EXPECT_EQ(agent_->results().runs(hourly), hourly_before + 1) << "run now recorded one run of the hourly check";
  for (int i = 0; i < 3; ++i) {
    write_config(base + check("added-" + std::to_string(i), open.port()));
    EXPECT_EQ(agent_->reload(), std::nullopt);
  }
  done = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(http_request(port_, "GET", "/check/added-2").status, 200) << "the page follows the reloaded config";
  EXPECT_EQ(http_request(port_, "GET", "/check/added-0").status, 404);
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/checks/no-such/run").status, 404);
}

// SIGTERM while a page's "run now" waits for a silent peer: the agent stops, and the wait does
// not hold the web server's shutdown for the check's timeout.
TEST_F(RunningAgent, RunNowWaitingWhenTheAgentStopsIsAnsweredAndLetsItStop) {
  testing::ScriptedPeer silent("");  // accepts, never answers
  write_config("[[check]]\nname = \"silent\"\nprobe = \"http\"\ntarget = \"http://127.0.0.1:" +
               std::to_string(silent.port()) + "/\"\ninterval = \"1h\"\ntimeout = \"30s\"\nconfirm_runs = 0\n");
  start(true);
  std::promise<int> status;
  auto answered = status.get_future();
  std::thread asker([&] { status.set_value(http_request(port_, "POST", "/api/v1/checks/silent/run").status); });
  // The peer offers no event for its accept: polled, bounded.
  for (int i = 0; i < 1000 && silent.accepted() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(silent.accepted(), 1u) << "the run started";
  agent_->stop();
  thread_.join();
  // Tearing down the web server waits for the worker that is asking; that worker must give up
  // with the agent, not wait out the check's 30 s timeout.
  auto torn_down = std::async(std::launch::async, [this] { agent_.reset(); });
  ASSERT_EQ(torn_down.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(answered.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const int code = answered.get();
  EXPECT_TRUE(code == 503 || code == 0) << code << ": answered 503, or its connection closed with the server";
  asker.join();
}

TEST_F(RunningAgent, RunNowNeedsLifecycle) {
  LoopbackListener open;
  write_config(check("often", open.port()));
  start(false);
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/checks/often/run").status, 403);
  EXPECT_EQ(http_request(port_, "GET", "/api/v1/checks/often").status, 200);
  EXPECT_EQ(http_request(port_, "PUT", "/api/v1/checks").status, 405);
}

TEST_F(RunningAgent, ReadyOnlyOnceTheFirstRoundHasRun) {
  LoopbackListener open;
  // An hourly check whose first slot is far from the start: nothing has run yet.
  const std::string hourly = "ready-later";
  ASSERT_GT(spread_offset(hourly, std::chrono::hours(1)), std::chrono::minutes(1));
  write_config("[[check]]\nname = \"" + hourly + "\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:" +
               std::to_string(open.port()) + "\"\ninterval = \"1h\"\n");
  start();
  EXPECT_EQ(http_request(port_, "GET", "/-/healthy").status, 200);  // alive, but not ready
  const auto not_ready = http_request(port_, "GET", "/-/ready");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_NE(not_ready.body.find("first round"), std::string::npos);
  // A config whose check runs at once: ready when it has, and staying so.
  write_config(check("open", open.port()));
  ASSERT_EQ(http_request(port_, "POST", "/-/reload").status, 200);
  ASSERT_TRUE(wait_for_runs(key("open", open.port()), 1));
  EXPECT_EQ(http_request(port_, "GET", "/-/ready").status, 200);
  EXPECT_EQ(http_request(port_, "HEAD", "/-/ready").status, 200);
  EXPECT_EQ(http_request(port_, "POST", "/-/ready").status, 405);
  write_config(check("open", open.port()) + "[[check]]\nname = \"" + hourly + "\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:" +
               std::to_string(open.port()) + "\"\ninterval = \"1h\"\n");
  ASSERT_EQ(http_request(port_, "POST", "/-/reload").status, 200);
  EXPECT_EQ(http_request(port_, "GET", "/-/ready").status, 200);  // a check added later does not unready it
}

TEST_F(RunningAgent, ProcessSeriesAreServed) {
  write_config("[agent]\nallow_empty = true\n");
  start();
  const auto samples = scrape();
  EXPECT_GT(*value_of(samples, "process_resident_memory_bytes"), 0.0);
  EXPECT_GE(*value_of(samples, "process_threads"), 2.0);  // the agent runs an io thread and web workers
  EXPECT_GT(*value_of(samples, "process_start_time_seconds"), 1.7e9);
  EXPECT_TRUE(value_of(samples, "process_cpu_seconds_total"));
}

TEST_F(RunningAgent, ReloadEndpointIsOffWithoutLifecycle) {
  RefusedPort closed;
  write_config(check("closed", closed.port()));
  start(/*lifecycle=*/false);
  const auto reply = http_request(port_, "POST", "/-/reload");
  EXPECT_EQ(reply.status, 403);
  EXPECT_NE(reply.body.find("--web.enable-lifecycle"), std::string::npos) << reply.body;
  EXPECT_EQ(agent_->reloads_started(), 0u);
  EXPECT_EQ(value_of(scrape(), "connectivity_agent_config_reloads_total", {{"result", "success"}}), 0.0);
  // The agent's own reload (what SIGHUP does) still works.
  EXPECT_EQ(agent_->reload(), std::nullopt);
  EXPECT_EQ(agent_->reloads_started(), 1u);
}

TEST_F(RunningAgent, ReloadKeepsCountersAndDropsRemovedChecks) {
  LoopbackListener open;
  RefusedPort closed;
  write_config(check("open", open.port()) + check("closed", closed.port()));
  start();
  ASSERT_TRUE(wait_for_runs(key("open", open.port()), 3));
  const double before = *value_of(scrape(), "connectivity_probes_total", {{"check", "open"}, {"result", "success"}});
  ASSERT_GE(before, 3.0);

  write_config(check("open", open.port()));
  const auto reply = http_request(port_, "POST", "/-/reload");
  EXPECT_EQ(reply.status, 200) << reply.body;
  ASSERT_TRUE(wait_for_runs(key("open", open.port()), static_cast<std::uint64_t>(before) + 2));

  const auto after = scrape();
  EXPECT_GE(*value_of(after, "connectivity_probes_total", {{"check", "open"}, {"result", "success"}}), before + 2);
  EXPECT_TRUE(find(after, "connectivity_up", {{"check", "closed"}}).empty());
  EXPECT_TRUE(find(after, "connectivity_probes_total", {{"check", "closed"}}).empty());
  EXPECT_EQ(value_of(after, "connectivity_agent_config_reloads_total", {{"result", "success"}}), 1.0);
  EXPECT_EQ(value_of(after, "connectivity_agent_checks"), 1.0);
}

TEST_F(RunningAgent, BadReloadKeepsTheOldConfigRunning) {
  LoopbackListener open;
  write_config(check("open", open.port()));
  start();
  ASSERT_TRUE(wait_for_runs(key("open", open.port()), 1));

  write_config(check("open", open.port()) + "[[check]]\nname = \"broken\"\nprobe = \"tcp\"\ntarget = \"no-port\"\n");
  const auto reply = http_request(port_, "POST", "/-/reload");
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("agent.toml:11:10"), std::string::npos) << reply.body;

  const auto runs = agent_->results().runs(key("open", open.port()));
  ASSERT_TRUE(wait_for_runs(key("open", open.port()), runs + 2));  // still probing
  const auto samples = scrape();
  EXPECT_EQ(value_of(samples, "connectivity_agent_config_last_reload_successful"), 0.0);
  EXPECT_EQ(value_of(samples, "connectivity_agent_config_reloads_total", {{"result", "failure"}}), 1.0);
  EXPECT_EQ(value_of(samples, "connectivity_up", {{"check", "open"}}), 1.0);
  EXPECT_TRUE(find(samples, "connectivity_up", {{"check", "broken"}}).empty());

  // A good config afterwards clears the failure.
  write_config(check("open", open.port()));
  EXPECT_EQ(http_request(port_, "POST", "/-/reload").status, 200);
  EXPECT_EQ(value_of(scrape(), "connectivity_agent_config_last_reload_successful"), 1.0);
}

// What a probe learns (a certificate's expiry, a server version) is exported with the check's
// labels, and replaced by the next run's facts.
TEST(Exposition, ProbeFactsAreGaugesOfTheCheckUntilTheNextRun) {
  const Config config = parse_config(
      "[[check]]\nname = \"sql\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:1433\"\nlabels = { vendor = \"atlas\" }\n", "t.toml");
  ResultsStore store;
  AgentHealth health;
  store.configure(config.checks);
  const auto key = config.checks[0].series_key();

  RunRecord run;
  run.reason = reason::success;
  run.facts = {{"connectivity_test_server_info", "Server facts.", {{"version", "15.0.4153"}}, 1},
               {"connectivity_test_expiry_timestamp_seconds", "Expiry.", {{"position", "0"}}, 1.8e9},
               {"connectivity_test_expiry_timestamp_seconds", "Expiry.", {{"position", "1"}}, 1.9e9}};
  store.record(key, run);
  ExpositionCollector collector(store, health, "test");
  auto samples = parse_exposition(render_text_exposition(collector));
  EXPECT_EQ(value_of(samples, "connectivity_test_server_info",
                     {{"check", "sql"}, {"vendor", "atlas"}, {"version", "15.0.4153"}}), 1.0);
  EXPECT_EQ(value_of(samples, "connectivity_test_expiry_timestamp_seconds", {{"check", "sql"}, {"position", "1"}}), 1.9e9);
  EXPECT_EQ(find(samples, "connectivity_test_expiry_timestamp_seconds").size(), 2u);

  run.reason = reason::refused;
  run.facts.clear();
  store.record(key, run);
  samples = parse_exposition(render_text_exposition(collector));
  EXPECT_TRUE(find(samples, "connectivity_test_server_info").empty());
  EXPECT_EQ(value_of(samples, "connectivity_up", {{"check", "sql"}}), 0.0);
}

// A fact that is a running total (the dns probe's address-set changes) is typed counter.
TEST(Exposition, CounterFactsAreTypedCounter) {
  const Config config =
      parse_config("[[check]]\nname = \"oclc\"\nprobe = \"dns\"\ntarget = \"webservices.oclc.org\"\n"
                   "[check.dns]\nserver = \"127.0.0.1:53\"\n", "t.toml");
  ResultsStore store;
  AgentHealth health;
  store.configure(config.checks);
  RunRecord run;
  run.reason = reason::success;
  run.facts = {{"connectivity_dns_address_changes_total", "Changes.", {}, 3, FactType::counter},
               {"connectivity_dns_address_info", "Address.", {{"address", "192.0.2.10"}}, 1}};
  store.record(config.checks[0].series_key(), run);
  ExpositionCollector collector(store, health, "test");
  const std::string text = render_text_exposition(collector);
  EXPECT_NE(text.find("# TYPE connectivity_dns_address_changes_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE connectivity_dns_address_info gauge\n"), std::string::npos) << text;
  const auto samples = parse_exposition(text);
  EXPECT_EQ(value_of(samples, "connectivity_dns_address_changes_total",
                     {{"check", "oclc"}, {"target", "webservices.oclc.org"}}), 3.0);
  EXPECT_EQ(value_of(samples, "connectivity_dns_address_info", {{"address", "192.0.2.10"}}), 1.0);
}

// The text written straight from the store escapes a label set as prometheus-cpp's serializer
// does, byte for byte: the serializer, given the same labels, is the oracle.
TEST(Exposition, LabelSetsAreEscapedAsPrometheusCppWritesThem) {
  const Config config = parse_config(
      "[[check]]\nname = \"q\\\"uote\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:1\"\n"
      "labels = { vendor = \"back\\\\slash \\\"and\\\" quotes\", system = \"\" }\n", "t.toml");
  ResultsStore store;
  AgentHealth health;
  store.configure(config.checks);
  const std::string text = render_text_exposition(ExpositionCollector(store, health, "test"));

  prometheus::MetricFamily family{"connectivity_check_required", "1 when the check is required (its failure should page), else 0.",
                                  prometheus::MetricType::Gauge, {}};
  prometheus::ClientMetric metric;
  store.visit([&](const CheckSeries& s) {
    for (const auto& [name, value] : s.labels()) metric.label.push_back({name, value});
  });
  metric.gauge.value = 1;
  family.metric.push_back(metric);
  std::ostringstream expected;
  prometheus::TextSerializer().Serialize(expected, {family});
  EXPECT_NE(text.find(expected.str()), std::string::npos) << "expected:\n" << expected.str() << "in:\n" << text;
  const auto samples = parse_exposition(text);
  EXPECT_EQ(value_of(samples, "connectivity_check_required", {{"check", "q\"uote"}, {"vendor", "back\\slash \"and\" quotes"}}), 1.0);
}

// A store holding the one check of `toml`, its histograms at the config's buckets, and a run to
// record against it.
struct OneCheckStore {
  explicit OneCheckStore(const std::string& toml) : config(parse_config(toml, "t.toml")) {
    store.set_latency_buckets(config.agent.latency_buckets);
    store.configure(config.checks);
    key = config.checks[0].series_key();
    run.reason = reason::success;
  }
  std::vector<testing::Sample> scrape() const {
    return parse_exposition(render_text_exposition(ExpositionCollector(store, health, "test")));
  }
  Config config;
  ResultsStore store;
  AgentHealth health;
  std::string key;
  RunRecord run;
};

// At the defaults a tcp check that has only succeeded carries fewer than 15 series: failure
// reasons and contradicted failures appear with their first run, and the latency histogram
// has two bounds.
TEST(Exposition, AHealthyCheckHasFewerThanFifteenSeriesAtTheDefaults) {
  OneCheckStore check("[[check]]\nname = \"web\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:443\"\n");
  check.run.total = std::chrono::milliseconds(3);
  check.run.finished_at = std::chrono::system_clock::now();
  check.store.record(check.key, check.run);
  auto samples = check.scrape();
  auto of_check = [&] {
    return std::count_if(samples.begin(), samples.end(), [](const auto& s) { return s.labels.count("check") == 1; });
  };
  EXPECT_EQ(of_check(), 14);
  EXPECT_TRUE(find(samples, "connectivity_probes_total", {{"result", "timeout"}}).empty());

  // A timeout, then a contradicted failure: each brings its series, once.
  check.run.reason = reason::timeout;
  check.store.record(check.key, check.run);
  check.run.reason = reason::success;
  check.store.record(check.key, check.run, /*confirms=*/true);
  samples = check.scrape();
  EXPECT_EQ(value_of(samples, "connectivity_probes_total", {{"result", "timeout"}}), 1.0);
  EXPECT_EQ(value_of(samples, "connectivity_probes_total", {{"result", "success"}}), 2.0);
  EXPECT_EQ(value_of(samples, "connectivity_transient_failures_total"), 1.0);
  EXPECT_EQ(of_check(), 16);
}

// [agent] latency_buckets: each bound is an inclusive `le`, counts are cumulative, and a change
// of buckets starts every histogram again (its old counts do not fit the new bounds).
TEST(Exposition, LatencyBucketsAreTheConfiguredOnes) {
  OneCheckStore check("[agent]\nlatency_buckets = [0.005, 0.05, 2]\n"
                      "[[check]]\nname = \"web\"\nprobe = \"tcp\"\ntarget = \"127.0.0.1:443\"\n");
  for (auto ms : {1, 5, 6, 50, 3000}) {
    check.run.total = std::chrono::milliseconds(ms);
    check.store.record(check.key, check.run);
  }
  auto samples = check.scrape();
  const std::string bucket = "connectivity_probe_latency_seconds_bucket";
  EXPECT_EQ(find(samples, bucket).size(), 4u);
  EXPECT_EQ(value_of(samples, bucket, {{"le", "0.005"}}), 2.0);  // 1 ms and 5 ms: le is inclusive
  EXPECT_EQ(value_of(samples, bucket, {{"le", "0.05"}}), 4.0);
  EXPECT_EQ(value_of(samples, bucket, {{"le", "2"}}), 4.0);
  EXPECT_EQ(value_of(samples, bucket, {{"le", "+Inf"}}), 5.0);
  EXPECT_EQ(value_of(samples, "connectivity_probe_latency_seconds_count"), 5.0);
  EXPECT_NEAR(*value_of(samples, "connectivity_probe_latency_seconds_sum"), 3.062, 1e-9);

  const std::vector<double> finer{0.001, 0.01};
  check.store.set_latency_buckets(finer);
  samples = check.scrape();
  EXPECT_EQ(find(samples, bucket).size(), 3u);
  EXPECT_EQ(value_of(samples, bucket, {{"le", "0.001"}}), 0.0);
  EXPECT_EQ(value_of(samples, "connectivity_probe_latency_seconds_count"), 0.0);
  // The counters of results carry on: only the histogram starts again.
  EXPECT_EQ(value_of(samples, "connectivity_probes_total", {{"result", "success"}}), 5.0);
}

// Numbers as Prometheus reads them: whole numbers without a fraction, others read back exactly.
TEST(ExpositionText, NumbersReadBackExactly) {
  auto text = [](auto value) {
    std::string out;
    append_number(out, value);
    return out;
  };
  EXPECT_EQ(text(1.0), "1");
  EXPECT_EQ(text(0.0), "0");
  EXPECT_EQ(text(0.1), "0.1");
  EXPECT_EQ(text(-3.0), "-3");
  EXPECT_EQ(text(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(text(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(text(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(text(std::numeric_limits<std::uint64_t>::max()), "18446744073709551615");
  for (double value : {1764800000.123456, 0.000123, 1e300, 4.9e-324, 9007199254740993.0, 0.1 + 0.2})
    EXPECT_EQ(std::strtod(text(value).c_str(), nullptr), value) << text(value);
  std::string label;
  append_label_value(label, "a\"b\\c\nd");
  EXPECT_EQ(label, "a\\\"b\\\\c\\nd");
  std::string help;
  append_help_text(help, "a\"b\\c\nd");
  EXPECT_EQ(help, "a\"b\\\\c\\nd");
}

TEST(AgentStartup, PortInUseIsAClearError) {
  LoopbackListener taken;
  const std::string dir = testing::make_temp_dir("connectivity-agent-test");
  std::ofstream(dir + "/a.toml") << "[agent]\nallow_empty = true\n";
  try {
    Agent agent(AgentOptions{.config_path = dir + "/a.toml", .listen = {"127.0.0.1:" + std::to_string(taken.port())}, .handle_signals = false});
    ADD_FAILURE() << "agent started on a port in use";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(taken.port())), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace connectivity

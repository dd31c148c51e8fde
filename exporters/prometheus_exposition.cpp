#include "exporters/prometheus_exposition.h"

#include "agent/exposition_text.h"

#include <prometheus/text_serializer.h>

#include <map>
#include <ostream>
#include <streambuf>

namespace connectivity {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric with_labels(const Labels& labels) {
  ClientMetric m;
  m.label.reserve(labels.size() + 1);
  for (const auto& [name, value] : labels) m.label.push_back({name, value});
  return m;
}

ClientMetric gauge(const Labels& labels, double value) {
  ClientMetric m = with_labels(labels);
  m.gauge.value = value;
  return m;
}

ClientMetric gauge(const Labels& labels, std::string extra_name, std::string extra_value, double value) {
  ClientMetric m = gauge(labels, value);
  m.label.push_back({std::move(extra_name), std::move(extra_value)});
  return m;
}

}  // namespace

ExpositionCollector::ExpositionCollector(const ResultsStore& store, const AgentHealth& health, std::string version,
                                         const InboundWatches* inbound)
    : store_(store), health_(health), version_(std::move(version)), inbound_(inbound) {}

void ExpositionCollector::collect_inbound(std::vector<MetricFamily>& out) const {
  if (!inbound_) return;
  const auto snapshots = inbound_->snapshots(std::chrono::system_clock::now());
  if (snapshots.empty()) return;
  auto running = family("connectivity_inbound_watch_running", "1 when the inbound watch is capturing, 0 when it could not start (see the log: usually no CAP_NET_RAW).", MetricType::Gauge);
  auto syn = family("connectivity_inbound_syn_total", "Connection attempts (SYN) from the expected source to the watched port.", MetricType::Counter);
  auto answered = family("connectivity_inbound_answered_total", "SYN-ACKs this host sent back to the expected source.", MetricType::Counter);
  auto rejected = family("connectivity_inbound_rejected_total", "RSTs this host sent back to the expected source (port closed or refused).", MetricType::Counter);
  auto last_seen = family("connectivity_inbound_last_seen_timestamp_seconds", "Unix time of the expected source's last SYN (absent until one).", MetricType::Gauge);
  auto up = family("connectivity_inbound_up", "1 when the source's calls were answered within expect_within and its latest SYN was not left unanswered, else 0.", MetricType::Gauge);
  auto unexpected = family("connectivity_inbound_unexpected_syn_total", "SYNs to the watched port from sources not in the list (one series per watch, not per address).", MetricType::Counter);
  for (const auto& snapshot : snapshots) {
    Labels labels{{"check", snapshot.name}};
    labels.insert(labels.end(), snapshot.labels.begin(), snapshot.labels.end());
    labels.emplace_back("port", std::to_string(snapshot.port));
    running.metric.push_back(gauge(labels, snapshot.running ? 1 : 0));
    ClientMetric others = with_labels(labels);
    others.counter.value = static_cast<double>(snapshot.unexpected_syn);
    unexpected.metric.push_back(std::move(others));
    for (std::size_t i = 0; i < snapshot.sources.size(); ++i) {
      const auto& source = snapshot.sources[i];
      Labels with_source = labels;
      with_source.emplace_back("source", source.source);
      for (auto [f, value] : {std::pair{&syn, source.syn}, std::pair{&answered, source.answered}, std::pair{&rejected, source.rejected}}) {
        ClientMetric m = with_labels(with_source);
        m.counter.value = static_cast<double>(value);
        f->metric.push_back(std::move(m));
      }
      if (source.last_seen) last_seen.metric.push_back(gauge(with_source, to_unix_seconds(*source.last_seen)));
      up.metric.push_back(gauge(with_source, snapshot.up[i] ? 1 : 0));
    }
  }
  for (auto* f : {&running, &syn, &answered, &rejected, &last_seen, &up, &unexpected})
    if (!f->metric.empty()) out.push_back(std::move(*f));
}

namespace {

// One family of the checks' series: its header, then a sample per check from `samples`; the
// header taken back when no check gave one (Prometheus reads a family without samples, but it
// is noise).
template <class WriteSamples>
void write_family(std::string& out, const ResultsStore& store, std::string_view name, std::string_view help,
                  std::string_view type, WriteSamples&& samples) {
  const std::size_t before = out.size();
  out += "# HELP ";
  out += name;
  out += ' ';
  append_help_text(out, help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  const std::size_t header_end = out.size();
  store.visit([&](const CheckSeries& s) { samples(s); });
  if (out.size() == header_end) out.resize(before);
}

// A sample is name{the check's labels[,more labels]} value: opened with the check's label set,
// written once when its series was made, and closed with the value.
void open_sample(std::string& out, std::string_view name, const CheckSeries& s) {
  out += name;
  out += '{';
  out += s.label_text;
}

void add_label(std::string& out, std::string_view name, std::string_view value) {
  out += ',';
  append_label(out, name, value);
}

template <class Number>
void close_sample(std::string& out, Number value) {
  out += "} ";
  append_number(out, value);
  out += '\n';
}

template <class Number>
void write_sample(std::string& out, std::string_view name, const CheckSeries& s, Number value,
                  std::string_view extra_name = {}, std::string_view extra_value = {}) {
  open_sample(out, name, s);
  if (!extra_name.empty()) add_label(out, extra_name, extra_value);
  close_sample(out, value);
}

}  // namespace

void ExpositionCollector::render_checks(std::string& out) const {
  write_family(out, store_, "connectivity_up", "1 when the check's last run succeeded, 0 when it failed (absent before the first run).",
               "gauge", [&](const CheckSeries& s) {
                 if (s.has_run) write_sample(out, "connectivity_up", s, s.up ? 1.0 : 0.0);
               });
  write_family(out, store_, "connectivity_probe_duration_seconds",
               "Duration of each phase of the check's last run; 0 for phases not reached.", "gauge", [&](const CheckSeries& s) {
                 if (!s.has_run) return;
                 for (std::size_t i = 0; i < s.kind->phases.size(); ++i)
                   write_sample(out, "connectivity_probe_duration_seconds", s, s.last_phase_seconds[i], "phase", s.kind->phases[i]);
               });
  write_family(out, store_, "connectivity_probe_latency_seconds", "Total duration of every run of the check.", "histogram",
               [&](const CheckSeries& s) {
                 const LatencyHistogram& h = s.latency;
                 const auto& le = h.buckets().le;
                 const auto counts = h.bucket_counts();
                 std::uint64_t at_most = 0;  // cumulative, as Prometheus reads `le`
                 for (std::size_t i = 0; i < le.size(); ++i)
                   write_sample(out, "connectivity_probe_latency_seconds_bucket", s, at_most += counts[i], "le", le[i]);
                 write_sample(out, "connectivity_probe_latency_seconds_sum", s, h.sum());
                 write_sample(out, "connectivity_probe_latency_seconds_count", s, h.count());
               });
  write_family(out, store_, "connectivity_probes_total",
               "Runs of the check by result: success or the failure reason (each failure reason from its first run).", "counter",
               [&](const CheckSeries& s) {
                 for (std::size_t i = 0; i < s.reasons.size(); ++i)
                   if (i == 0 || s.runs_by_reason[i] > 0)  // reasons[0] is success
                     write_sample(out, "connectivity_probes_total", s, s.runs_by_reason[i], "result", s.reasons[i]);
               });
  write_family(out, store_, "connectivity_last_result_info", "The result of the check's last run, as a label.", "gauge",
               [&](const CheckSeries& s) {
                 if (s.has_run) write_sample(out, "connectivity_last_result_info", s, 1.0, "result", s.last_reason);
               });
  write_family(out, store_, "connectivity_last_success_timestamp_seconds", "Unix time of the check's last successful run.", "gauge",
               [&](const CheckSeries& s) {
                 if (s.has_run && s.last_success_timestamp > 0)
                   write_sample(out, "connectivity_last_success_timestamp_seconds", s, s.last_success_timestamp);
               });
  write_family(out, store_, "connectivity_last_run_timestamp_seconds", "Unix time the check's last run ended.", "gauge",
               [&](const CheckSeries& s) {
                 if (s.has_run) write_sample(out, "connectivity_last_run_timestamp_seconds", s, s.last_run_timestamp);
               });
  write_family(out, store_, "connectivity_check_required", "1 when the check is required (its failure should page), else 0.", "gauge",
               [&](const CheckSeries& s) { write_sample(out, "connectivity_check_required", s, s.config->required ? 1.0 : 0.0); });
  write_family(out, store_, "connectivity_check_interval_seconds", "The check's configured interval.", "gauge",
               [&](const CheckSeries& s) { write_sample(out, "connectivity_check_interval_seconds", s,
                                                      std::chrono::duration<double>(s.config->interval).count()); });
  write_family(out, store_, "connectivity_transient_failures_total",
               "Failed runs of an up check that the confirmation re-run contradicted: the check stayed up (from the first).",
               "counter", [&](const CheckSeries& s) {
                 if (s.transient_failures > 0)
                   write_sample(out, "connectivity_transient_failures_total", s, s.transient_failures);
               });

  // The facts' families, in name order: a pass to learn which the checks report, then one per family.
  std::map<std::string_view, std::pair<std::string_view, FactType>> facts;
  store_.visit([&](const CheckSeries& s) {
    for (const auto& fact : s.last_facts) facts.try_emplace(fact.metric, fact.help, fact.type);
  });
  for (const auto& entry : facts) {
    // Plain names, not structured bindings: a lambda may not capture those before C++20 in
    // every compiler (clang 14's).
    const std::string_view metric = entry.first;
    const std::string_view help = entry.second.first;
    const FactType type = entry.second.second;
    write_family(out, store_, metric, help, type == FactType::counter ? "counter" : "gauge", [&](const CheckSeries& s) {
      for (const auto& fact : s.last_facts) {
        if (fact.metric != metric) continue;
        open_sample(out, metric, s);
        for (const auto& [name, value] : fact.labels) add_label(out, name, value);
        close_sample(out, fact.value);
      }
    });
  }
}

std::vector<MetricFamily> ExpositionCollector::agent_families() const {
  auto build = family("connectivity_agent_build_info", "The agent's version, valued 1.", MetricType::Gauge);
  build.metric.push_back(gauge({}, "version", version_, 1));
  auto reload_ok = family("connectivity_agent_config_last_reload_successful", "1 when the last config (re)load succeeded, 0 when it was rejected.", MetricType::Gauge);
  reload_ok.metric.push_back(gauge({}, health_.last_reload_successful ? 1 : 0));
  auto reload_ts = family("connectivity_agent_config_last_reload_success_timestamp_seconds", "Unix time of the last successful config (re)load.", MetricType::Gauge);
  reload_ts.metric.push_back(gauge({}, health_.last_reload_success_timestamp.load()));
  auto reloads = family("connectivity_agent_config_reloads_total", "Config reloads by result (success, failure).", MetricType::Counter);
  for (auto [result, count] : {std::pair{"success", health_.reloads_succeeded.load()}, std::pair{"failure", health_.reloads_failed.load()}}) {
    ClientMetric m;
    m.label.push_back({"result", result});
    m.counter.value = static_cast<double>(count);
    reloads.metric.push_back(std::move(m));
  }
  auto lag = family("connectivity_agent_scheduler_lag_seconds", "How late each run started against its schedule.", MetricType::Histogram);
  lag.metric.push_back(health_.scheduler_lag.Collect());
  auto in_flight = family("connectivity_agent_probes_in_flight", "Probes running now.", MetricType::Gauge);
  in_flight.metric.push_back(gauge({}, static_cast<double>(health_.probes_in_flight.load())));
  auto checks = family("connectivity_agent_checks", "Checks configured.", MetricType::Gauge);
  checks.metric.push_back(gauge({}, static_cast<double>(health_.checks_configured.load())));
  auto skipped = family("connectivity_agent_skipped_runs_total", "Scheduled runs skipped because the agent could not start them in time.", MetricType::Counter);
  {
    ClientMetric m;
    m.counter.value = static_cast<double>(health_.skipped_runs.load());
    skipped.metric.push_back(std::move(m));
  }

  std::vector<MetricFamily> out;
  for (auto* f : {&build, &reload_ok, &reload_ts, &reloads, &lag, &in_flight, &checks, &skipped}) out.push_back(std::move(*f));
  collect_inbound(out);
  return out;
}

namespace {

// An ostream's buffer that appends to a string, in 64 KiB steps: the text is built once, in
// place, rather than in a stringstream and then copied out.
class AppendToString : public std::streambuf {
 public:
  explicit AppendToString(std::string& out) : out_(out) { setp(buffer_, buffer_ + sizeof(buffer_)); }
  ~AppendToString() override { flush(); }

 protected:
  int_type overflow(int_type c) override {
    flush();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override {
    flush();
    return 0;
  }

 private:
  void flush() {
    out_.append(pbase(), static_cast<std::size_t>(pptr() - pbase()));
    setp(buffer_, buffer_ + sizeof(buffer_));
  }
  std::string& out_;
  char buffer_[64 * 1024];
};

void serialize(const std::vector<MetricFamily>& families, std::string& out) {
  AppendToString buffer(out);
  std::ostream stream(&buffer);
  prometheus::TextSerializer().Serialize(stream, families);
}

}  // namespace

void ExpositionCollector::render(std::string& out) const {
  render_checks(out);
  serialize(agent_families(), out);
}

std::string render_text_exposition(const ExpositionCollector& collector) {
  std::string out;
  collector.render(out);
  return out;
}

void render_text_exposition(const prometheus::Collectable& collectable, std::string& out) {
  serialize(collectable.Collect(), out);
}

std::string render_text_exposition(const prometheus::Collectable& collectable) {
  std::string out;
  render_text_exposition(collectable, out);
  return out;
}

}  // namespace connectivity

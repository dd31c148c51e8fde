#include "exporters/status_page.h"

#include "exporters/status_json.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

namespace connectivity {

namespace {

// The page's one script: every 30 s it fetches the page again and swaps the summary and the
// checks in place (a <meta refresh> would lose the reader's scroll position on a phone), and
// marks the body with the time it did. With scripts off, the <noscript> refresh reloads instead.
// The path is relative: a page opened as http://user:password@host/ has the credentials in
// location.href, which fetch() refuses.
constexpr std::string_view kRefreshScript =
    "(function(){"
    "function refresh(){"
    "fetch(location.pathname+location.search,{credentials:'same-origin',cache:'no-store'})"
    ".then(function(r){if(!r.ok)throw new Error(r.status);return r.text();})"
    ".then(function(t){var d=new DOMParser().parseFromString(t,'text/html');"
    "['summary','status'].forEach(function(id){var n=d.getElementById(id),o=document.getElementById(id);if(n&&o)o.replaceWith(n);});"
    "document.title=d.title;document.body.classList.remove('stale');"
    "document.body.setAttribute('data-refreshed',new Date().toISOString());})"
    ".catch(function(){document.body.classList.add('stale');});}"
    "setInterval(refresh,30000);})();";

constexpr std::string_view kStyle = R"css(
:root{--up:#1a7f37;--down:#cf222e;--optional:#9a6700;--grey:#6e7781;--line:#d0d7de;--bg:#fff;--fg:#1f2328;--card:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--card:#161b22;--line:#30363d;--grey:#8b949e}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg);max-width:70rem;margin-inline:auto}
a{color:inherit}
h1{font-size:1.4rem;margin:.2rem 0}
h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
.meta,.detail,.muted{color:var(--grey);font-size:.9em}
.summary{font-size:1.05rem;margin:.3rem 0}
.summary .bad{color:var(--down);font-weight:600}
.stale .meta::after{content:" - not refreshed: the agent did not answer";color:var(--down)}
.check{background:var(--card);border:1px solid var(--line);border-left:.35rem solid var(--grey);border-radius:6px;padding:.5rem .7rem;margin:.45rem 0}
.check.up{border-left-color:var(--up)}
.check.down.required{border-left-color:var(--down)}
.check.down.optional{border-left-color:var(--optional)}
.head{display:flex;flex-wrap:wrap;gap:.4rem;align-items:baseline}
.name{font-weight:600;word-break:break-all}
.state{font-weight:600;text-transform:uppercase;font-size:.8em;letter-spacing:.03em}
.up .state{color:var(--up)}.down.required .state{color:var(--down)}.down.optional .state{color:var(--optional)}
.pending .state,.skipped .state{color:var(--grey)}
.badge{font-size:.75em;border:1px solid var(--line);border-radius:1em;padding:0 .45em;color:var(--grey)}
.reason{margin:.2rem 0;overflow-wrap:anywhere}
.down .reason{font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.3rem 0 0;font-size:.9em}
dl.facts dt{color:var(--grey)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
svg.spark{vertical-align:middle;width:8rem;height:1.6rem}
svg.spark polyline{fill:none;stroke:var(--fg);stroke-width:1.2}
svg.spark rect.fail{fill:var(--down)}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;border-bottom:1px solid var(--line);padding:.25rem .4rem;vertical-align:top;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
pre{background:var(--card);border:1px solid var(--line);padding:.5rem;overflow-x:auto;white-space:pre-wrap}
button{font:inherit;padding:.35rem .9rem}
@media (max-width:40rem){body{padding:.6rem}dl.facts{grid-template-columns:1fr}dl.facts dt{margin-top:.2rem}}
)css";

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(std::max(written, 0)));
  return out;
}

std::string script_hash() {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(kRefreshScript.data()), kRefreshScript.size(), digest);
  return "sha256-" + base64(digest, sizeof digest);
}

// "45 s", "12 min", "3 h 12 min", "2 d 4 h".
std::string age_text(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  const auto s = static_cast<long long>(seconds);
  char text[48];
  if (s < 60) std::snprintf(text, sizeof text, "%lld s", s);
  else if (s < 3600) std::snprintf(text, sizeof text, "%lld min", s / 60);
  else if (s < 86400) std::snprintf(text, sizeof text, "%lld h %lld min", s / 3600, s % 3600 / 60);
  else std::snprintf(text, sizeof text, "%lld d %lld h", s / 86400, s % 86400 / 3600);
  return text;
}

std::string latency_text(double seconds) {
  char text[32];
  if (seconds >= 1) std::snprintf(text, sizeof text, "%.2f s", seconds);
  else std::snprintf(text, sizeof text, "%.1f ms", seconds * 1000);
  return text;
}

std::string clock_text(double unix_seconds) {
  // "2026-12-03 14:02:05 UTC": the agent's clock, the same for every reader whatever their zone.
  std::string text = rfc3339(unix_seconds);
  if (text.size() == 20) text = text.substr(0, 10) + " " + text.substr(11, 8) + " UTC";
  return text;
}

// How bad a state is, for the order: failing required checks first, then failing optional
// ones, then not yet run, then up, then skipped.
int severity(const CheckStatus& check) {
  switch (check.state) {
    case CheckState::down: return check.required ? 0 : 1;
    case CheckState::pending: return 2;
    case CheckState::up: return 3;
    case CheckState::skipped: return 4;
  }
  return 4;
}

std::string state_words(const CheckStatus& check) {
  switch (check.state) {
    case CheckState::up: return "up";
    case CheckState::down: return check.required ? "down" : "down (optional)";
    case CheckState::pending: return "not run yet";
    case CheckState::skipped: return "skipped";
  }
  return "";
}

// The latency of the last hour, one point a minute (the minute's slowest run), failures as red
// bars along the bottom: small enough for a row, drawn here so it needs no script.
std::string sparkline(const CheckStatus& check, double now) {
  if (check.last_hour.empty()) return {};
  constexpr double kWidth = 120, kHeight = 28, kTop = 2, kPlot = 22;
  double worst = 0;
  for (const auto& minute : check.last_hour) worst = std::max(worst, minute.worst_seconds);
  const double start = std::floor(now / 60) * 60 - 59 * 60;
  auto x_of = [&](double minute_start) { return std::clamp((minute_start - start) / 60 * (kWidth / 59), 0.0, kWidth); };
  std::string points, fails;
  unsigned runs = 0, failures = 0;
  char buffer[96];
  auto add_point = [&](double x, double y) {
    std::snprintf(buffer, sizeof buffer, "%s%.1f,%.1f", points.empty() ? "" : " ", x, y);
    points += buffer;
  };
  for (const auto& minute : check.last_hour) {
    runs += minute.runs;
    failures += minute.failures;
    const double y = kTop + kPlot - (worst > 0 ? minute.worst_seconds / worst * kPlot : 0);
    // A lone minute is drawn as a short dash: a line of no length draws nothing.
    if (check.last_hour.size() == 1) add_point(std::max(0.0, x_of(minute.start) - 3), y);
    add_point(x_of(minute.start), y);
    if (minute.failures > 0) {
      std::snprintf(buffer, sizeof buffer, "<rect class=\"fail\" x=\"%.1f\" y=\"%.0f\" width=\"2\" height=\"4\"/>",
                    std::max(0.0, x_of(minute.start) - 1), kHeight - 4);
      fails += buffer;
    }
  }
  const std::string title = "last hour: slowest run " + latency_text(worst) + ", " + std::to_string(runs) + " runs, " +
                            std::to_string(failures) + " failed";
  return "<svg class=\"spark\" viewBox=\"0 0 120 28\" role=\"img\" aria-label=\"" + html_escape(title) + "\"><title>" +
         html_escape(title) + "</title><polyline points=\"" + points + "\"/>" + fails + "</svg>";
}

void definition(std::string& out, std::string_view term, const std::string& escaped_value) {
  out += "<dt>";
  out += term;
  out += "</dt><dd>";
  out += escaped_value;
  out += "</dd>";
}

// name="value", name="value": as PromQL writes a label set.
std::string labels_text(const Labels& labels) {
  std::string text;
  for (const auto& [name, value] : labels) {
    if (!text.empty()) text += ", ";
    text += name;
    text += "=\"";
    text += value;
    text += '"';
  }
  return text;
}

std::string roles_text(const CheckStatus& check) {
  std::string roles;
  for (const auto& role : check.run_from) roles += (roles.empty() ? "" : ", ") + role;
  return roles;
}

// One check's card on the overview.
void check_card(std::string& out, const CheckStatus& check, std::chrono::system_clock::time_point now_point) {
  const double now = to_unix_seconds(now_point);
  const std::string_view state = state_name(check.state);
  out += "<article class=\"check " + std::string(state) + (check.required ? " required" : " optional") +
         "\" data-check=\"" + html_escape(check.name) + "\" data-state=\"" + std::string(state) + "\" data-required=\"" +
         (check.required ? "true" : "false") + "\">";
  out += "<div class=\"head\"><a class=\"name\" href=\"/check/" + url_path_segment(check.name) + "\">" +
         html_escape(check.name) + "</a><span class=\"state\">" + html_escape(state_words(check)) + "</span>";
  if (!check.required) out += "<span class=\"badge\">optional</span>";
  out += "<span class=\"badge\">" + html_escape(check.probe) + "</span></div>";

  std::string reason_line;
  // Config warnings are on the check's own page: on every card they would drown the states.
  std::string detail_line = check.detail_line(now_point, false);
  switch (check.state) {
    case CheckState::down: reason_line = check.failure_sentence(); break;
    case CheckState::up: reason_line = "answers at " + check.target; break;
    case CheckState::pending: reason_line = "waiting for its first run against " + check.target; break;
    case CheckState::skipped: reason_line = detail_line; detail_line.clear(); break;
  }
  out += "<p class=\"reason\">" + html_escape(reason_line) + "</p>";
  if (!detail_line.empty()) out += "<p class=\"detail\">" + html_escape(detail_line) + "</p>";

  out += "<dl class=\"facts\">";
  if (!check.warnings.empty() && check.state != CheckState::skipped)
    definition(out, "config", "<a href=\"/check/" + url_path_segment(check.name) + "\">" +
                                  std::to_string(check.warnings.size()) + " warning" + (check.warnings.size() == 1 ? "" : "s") + "</a>");
  if (check.since > 0)
    definition(out, "since", html_escape(clock_text(check.since)) + " <span class=\"muted\">(" + html_escape(age_text(now - check.since)) + ")</span>");
  if (check.state == CheckState::up || check.state == CheckState::down) {
    std::string latency = html_escape(latency_text(check.seconds));
    if (const std::string spark = sparkline(check, now); !spark.empty()) latency += " " + spark;
    definition(out, "latency", latency);
  }
  if (const auto doc = check.label("doc"); !doc.empty()) definition(out, "rule", html_escape(doc));
  std::string from = roles_text(check);
  if (const auto vantage = check.label("vantage"); !vantage.empty()) from += (from.empty() ? "" : "; agent: ") + std::string(vantage);
  if (!from.empty()) definition(out, "from", html_escape(from));
  if (const auto direction = check.label("direction"); !direction.empty()) definition(out, "direction", html_escape(direction));
  out += "</dl></article>";
}

// "up" when every source reached us in time, "down" when one did not, "pending" when the
// watch is not capturing (no capture on this platform, no privilege).
std::string inbound_state(const InboundSnapshot& watch) {
  if (!watch.running) return "pending";
  for (std::size_t i = 0; i < watch.sources.size(); ++i)
    if (i >= watch.up.size() || !watch.up[i]) return "down";
  return "up";
}

void inbound_card(std::string& out, const InboundSnapshot& watch) {
  const std::string state = inbound_state(watch);
  const bool all_up = state == "up";
  out += "<article class=\"check inbound " + state + " required\" data-check=\"" + html_escape(watch.name) +
         "\" data-state=\"" + state + "\" data-required=\"true\">";
  out += "<div class=\"head\"><span class=\"name\">" + html_escape(watch.name) + "</span><span class=\"state\">" +
         (!watch.running ? std::string("not watching") : all_up ? std::string("up") : std::string("down")) +
         "</span><span class=\"badge\">inbound, port " + std::to_string(watch.port) + "</span></div>";
  if (!watch.running)
    out += "<p class=\"reason\">" + html_escape("not watching: " + watch.why_not_running) + "</p>";
  out += "<dl class=\"facts\">";
  for (std::size_t i = 0; i < watch.sources.size(); ++i) {
    const auto& source = watch.sources[i];
    const bool up = i < watch.up.size() && watch.up[i];
    std::string text = watch.running ? (up ? "reaches us" : "no answered call within the expected time") : "";
    text += (text.empty() ? "" : "; ") + std::to_string(source.syn) + " calls, " + std::to_string(source.answered) +
            " answered, " + std::to_string(source.rejected) + " refused";
    if (source.last_answered) text += "; last answered " + clock_text(to_unix_seconds(*source.last_answered));
    definition(out, html_escape(source.source), html_escape(text));
  }
  if (const auto doc = std::find_if(watch.labels.begin(), watch.labels.end(), [](const auto& l) { return l.first == "doc"; });
      doc != watch.labels.end())
    definition(out, "rule", html_escape(doc->second));
  out += "</dl></article>";
}

std::string group_title(std::string_view system, std::string_view vendor) {
  if (system.empty() && vendor.empty()) return "Other checks";
  if (vendor.empty()) return std::string(system);
  if (system.empty()) return std::string(vendor);
  return std::string(system) + " \xC2\xB7 " + std::string(vendor);
}

std::string page_head(std::string_view title, bool refresh) {
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" +
      html_escape(title) + "</title>";
  if (refresh) out += "<noscript><meta http-equiv=\"refresh\" content=\"30\"></noscript>";
  out += "<style>";
  out += kStyle;
  out += "</style></head><body>";
  return out;
}

std::string page_end(bool script) {
  std::string out = "<footer class=\"meta\"><p><a href=\"/\">All checks</a> \xC2\xB7 <a href=\"/api/v1/checks\">JSON</a> \xC2\xB7 "
                    "<a href=\"/metrics\">Metrics</a> \xC2\xB7 <a href=\"/-/healthy\">Health</a> \xC2\xB7 <a href=\"/-/ready\">Ready</a></p></footer>";
  if (script) {
    out += "<script>";
    out += kRefreshScript;
    out += "</script>";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string url_path_segment(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

const std::string& status_page_security_policy() {
  static const std::string policy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src '" +
                                    script_hash() + "'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
  return policy;
}

std::string render_status_page(const StatusSnapshot& snapshot, const PageContext& context) {
  const double now = to_unix_seconds(snapshot.taken_at);
  // Groups by system and vendor; a group with a failing required check comes first, and inside
  // a group the worst state first, so the first card on the page is what to fix first.
  // A card on the page: a check, or an inbound watch (down when a source has not reached us
  // in time: a path someone relies on, so it ranks with failing required checks).
  struct Card {
    int severity;
    std::string_view name;
    const CheckStatus* check = nullptr;
    const InboundSnapshot* watch = nullptr;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Card>> groups;
  std::size_t up = 0, down = 0, down_required = 0, pending = 0, skipped = 0;
  for (const auto& check : snapshot.checks) {
    groups[{std::string(check.label("system")), std::string(check.label("vendor"))}].push_back({severity(check), check.name, &check});
    switch (check.state) {
      case CheckState::up: ++up; break;
      case CheckState::down: ++down; down_required += check.required ? 1 : 0; break;
      case CheckState::pending: ++pending; break;
      case CheckState::skipped: ++skipped; break;
    }
  }
  for (const auto& watch : snapshot.inbound) {
    const std::string state = inbound_state(watch);
    const int rank = state == "down" ? 0 : state == "pending" ? 2 : 3;
    if (state == "down") ++down, ++down_required;
    else if (state == "up") ++up;
    else ++pending;
    std::string system, vendor;
    for (const auto& [label, value] : watch.labels) {
      if (label == "system") system = value;
      if (label == "vendor") vendor = value;
    }
    groups[{system, vendor}].push_back({rank, watch.name, nullptr, &watch});
  }
  std::vector<std::pair<std::string, std::vector<Card>>> ordered;
  for (auto& [key, cards] : groups) {
    std::stable_sort(cards.begin(), cards.end(),
                     [](const Card& a, const Card& b) { return std::tie(a.severity, a.name) < std::tie(b.severity, b.name); });
    ordered.emplace_back(group_title(key.first, key.second), std::move(cards));
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.second.front().severity < b.second.front().severity; });

  std::string title = down_required > 0 ? std::to_string(down_required) + " down - " : std::string();
  title += "connectivity";
  if (!context.hostname.empty()) title += " on " + std::string(context.hostname);
  std::string out = page_head(title, true);
  out += "<header><h1>Connectivity";
  if (!context.hostname.empty()) out += " from " + html_escape(context.hostname);
  out += "</h1><div id=\"summary\"><p class=\"summary\">";
  if (down > 0) {
    out += "<span class=\"bad\">" + std::to_string(down) + " down</span>";
    if (down_required != down) out += " (" + std::to_string(down_required) + " required)";
  } else {
    out += snapshot.checks.empty() && snapshot.inbound.empty() ? "Nothing configured" : "All up";
  }
  out += " \xC2\xB7 " + std::to_string(up) + " up";
  if (pending) out += " \xC2\xB7 " + std::to_string(pending) + " not run yet";
  if (skipped) out += " \xC2\xB7 " + std::to_string(skipped) + " skipped";
  out += "</p><p class=\"meta\">As of " + html_escape(clock_text(now)) + " \xC2\xB7 connectivity-agent " +
         html_escape(context.agent_version) + " \xC2\xB7 refreshes every 30 s</p></div></header><main id=\"status\">";
  for (const auto& [name, cards] : ordered) {
    out += "<section class=\"group\"><h2>" + html_escape(name) + "</h2>";
    for (const Card& card : cards) {
      if (card.check) check_card(out, *card.check, snapshot.taken_at);
      else inbound_card(out, *card.watch);
    }
    out += "</section>";
  }
  out += "</main>";
  out += page_end(true);
  return out;
}

std::string render_check_page(const CheckStatus& check, const PageContext& context,
                              std::chrono::system_clock::time_point now_point) {
  const double now = to_unix_seconds(now_point);
  std::string out = page_head(check.name + " - " + state_words(check), true);
  out += "<header><p class=\"meta\"><a href=\"/\">\xE2\x86\x90 All checks</a></p><h1>" + html_escape(check.name) + "</h1>";
  out += "<div id=\"summary\">";
  check_card(out, check, now_point);
  out += "</div></header><main id=\"status\">";

  const FactWords words = describe_facts(check.kind, check.facts, now_point);
  if (check.state == CheckState::up || check.state == CheckState::down) {
    out += "<section><h2>Last run</h2><dl class=\"facts\">";
    definition(out, "result", html_escape(std::string(result_name(check.state)) + " (" + std::string(check.reason) + ")"));
    if (!check.detail.empty()) definition(out, "detail", html_escape(check.detail));
    if (const std::string summary = summary_line(words); !summary.empty()) definition(out, "learned", html_escape(summary));
    std::string phases;
    for (const auto& phase : check.phases)
      phases += (phases.empty() ? "" : ", ") + std::string(phase.name) + " " +
                latency_text(std::chrono::duration<double>(phase.took).count());
    definition(out, "took", html_escape(latency_text(check.seconds) + (phases.empty() ? "" : ": " + phases)));
    if (check.last_run_at > 0) definition(out, "finished", html_escape(clock_text(check.last_run_at)));
    definition(out, "last success", check.last_success_at > 0 ? html_escape(clock_text(check.last_success_at)) : "never, since the agent started");
    out += "</dl></section>";
  }
  if (!words.details.empty()) {
    out += "<section><h2>What the peer told us</h2><dl class=\"facts\">";
    for (const auto& [heading, text] : words.details) definition(out, html_escape(heading), html_escape(text));
    out += "</dl></section>";
  }
  if (!check.facts.empty()) {
    out += "<section><h2>Facts as exported</h2><div class=\"scroll\"><table><thead><tr><th>metric</th><th>labels</th><th>value</th></tr></thead><tbody>";
    for (const auto& fact : check.facts) {
      const std::string labels = labels_text(fact.labels);
      char value[48];
      std::snprintf(value, sizeof value, "%.17g", fact.value);
      out += "<tr><td>" + html_escape(fact.metric) + "</td><td>" + html_escape(labels) + "</td><td>" + value + "</td></tr>";
    }
    out += "</tbody></table></div></section>";
  }
  if (!check.recent.empty()) {
    out += "<section><h2>Last " + std::to_string(check.recent.size()) +
           " runs</h2><div class=\"scroll\"><table class=\"runs\"><thead><tr><th>at (UTC)</th><th>result</th><th>took</th><th>detail</th></tr></thead><tbody>";
    for (const auto& run : check.recent) {
      std::string phases;
      for (std::size_t i = 0; i < run.phase_seconds.size() && i < check.phase_names.size(); ++i)
        if (run.phase_seconds[i] > 0)
          phases += (phases.empty() ? "" : ", ") + std::string(check.phase_names[i]) + " " + latency_text(run.phase_seconds[i]);
      std::string result = run.reason == reason::success ? "pass" : "fail: " + std::string(run.reason);
      if (!run.set_state) result += run.reason == reason::success ? " (re-run)" : " (held back for re-runs)";
      // The time of day only, the date in its tooltip: the 20 runs span minutes, and a phone is narrow.
      const std::string at = clock_text(run.finished_at);
      out += "<tr class=\"" + std::string(run.reason == reason::success ? "up" : "down") + "\"><td title=\"" + html_escape(at) +
             "\">" + html_escape(at.size() >= 19 ? at.substr(11, 8) : at) + "</td><td>" + html_escape(result) + "</td><td>" +
             html_escape(latency_text(run.seconds)) + (phases.empty() ? "" : "<br><span class=\"muted\">" + html_escape(phases) + "</span>") +
             "</td><td>" + html_escape(run.detail) + "</td></tr>";
    }
    out += "</tbody></table></div></section>";
  }

  out += "<section><h2>Config</h2><dl class=\"facts\">";
  definition(out, "probe", html_escape(check.probe));
  definition(out, "target", html_escape(check.target));
  definition(out, "required", check.required ? "yes: it pages when down" : "no: shown, never pages");
  if (check.settings) {
    char text[160];
    std::snprintf(text, sizeof text, "every %g s, timeout %g s, %u confirmation re-runs %g s apart", check.settings->interval_seconds,
                  check.settings->timeout_seconds, check.settings->confirm_runs, check.settings->confirm_delay_seconds);
    definition(out, "schedule", text);
  }
  const std::string labels = labels_text(check.labels);
  if (!labels.empty()) definition(out, "labels", html_escape(labels));
  if (!check.run_from.empty()) definition(out, "runs from", html_escape(roles_text(check)));
  for (const auto& warning : check.warnings) definition(out, "warning", html_escape(warning));
  out += "</dl>";
  if (check.settings && !check.settings->options.empty())
    out += "<p class=\"muted\">Probe options (secrets masked):</p><pre>" + html_escape(check.settings->options) + "</pre>";
  out += "</section>";

  if (check.state != CheckState::skipped) {
    out += "<section><h2>Run now</h2><form method=\"post\" action=\"/api/v1/checks/" + url_path_segment(check.name) + "/run\">";
    if (context.lifecycle)
      out += "<button type=\"submit\" id=\"run-now\">Run this check now</button> <span class=\"muted\">The page shows its result when it ends.</span>";
    else
      out += "<button type=\"submit\" id=\"run-now\" disabled>Run this check now</button> <span class=\"muted\">Off: the agent runs "
             "without --web.enable-lifecycle.</span>";
    out += "</form></section>";
  }
  out += "<p class=\"meta\">As of " + html_escape(clock_text(now)) + " \xC2\xB7 <a href=\"/api/v1/checks/" +
         url_path_segment(check.name) + "\">this check as JSON</a></p></main>";
  out += page_end(true);
  return out;
}

std::string render_missing_check_page(std::string_view name) {
  std::string out = page_head("no such check", false);
  out += "<header><p class=\"meta\"><a href=\"/\">\xE2\x86\x90 All checks</a></p><h1>No check named \xE2\x80\x9C" +
         html_escape(name) + "\xE2\x80\x9D</h1></header><main id=\"status\"><p>The running config has no such check.</p></main>";
  out += page_end(false);
  return out;
}

}  // namespace connectivity

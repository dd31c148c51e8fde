// The status page: GET / (every check and inbound watch, grouped by system and vendor, failing
// required checks first) and GET /check/<name> (one check: its config with secrets masked, its
// last runs with their phases, what its peer told it, and "run now"). For the people who are
// paged or asked and do not open Grafana. Self-contained HTML: no external script, font or
// style, so it works offline and behind the web config's authentication. Everything is drawn
// on the server (the latency history is inline SVG), so the page reads the same with scripts
// off; the one script of its own refreshes the page in place instead of reloading it.
// Every value that came from a config or a peer (a certificate's subject, a Z39.50
// implementation name) is escaped.
#pragma once

#include "agent/status.h"

#include <string>
#include <string_view>

namespace connectivity {

// `text` safe inside HTML text and quoted attribute values.
std::string html_escape(std::string_view text);
// `text` as one URL path segment: everything but unreserved characters percent-encoded.
std::string url_path_segment(std::string_view text);

struct PageContext {
  std::string_view agent_version;
  std::string_view hostname;  // where the agent runs: the page's title says which one
  bool lifecycle = false;     // "run now" works (--web.enable-lifecycle)
};

std::string render_status_page(const StatusSnapshot& snapshot, const PageContext& context);
std::string render_check_page(const CheckStatus& check, const PageContext& context,
                              std::chrono::system_clock::time_point now);
// A page for a check that is not configured, with a link back.
std::string render_missing_check_page(std::string_view name);

// The Content-Security-Policy both pages are served with: nothing from elsewhere, and no script
// but the page's own (by its hash), so that a value that slipped its escaping still could not run.
const std::string& status_page_security_policy();

}  // namespace connectivity

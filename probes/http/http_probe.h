// probe = "http": does the endpoint answer HTTP(S) as expected? The target is the URL.
// Resolve, connect (through a CONNECT proxy if configured), TLS for https, request (until
// the response header: time to first byte), transfer (the body). Redirects are followed up to
// a limit, each hop's phases adding up.
#pragma once

#include "probes/probe.h"
#include "probes/tls/tls_client.h"

#include <boost/regex.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connectivity {

namespace reason {
inline constexpr std::string_view http_status = "http_status";        // status not in valid_status_codes
inline constexpr std::string_view body_mismatch = "body_mismatch";    // body_regex / body_must_not_match
inline constexpr std::string_view body_too_large = "body_too_large";  // over max_body_bytes
inline constexpr std::string_view too_many_redirects = "too_many_redirects";
inline constexpr std::string_view proxy_error = "proxy_error";        // the proxy refused CONNECT
}  // namespace reason

struct HttpSettings {
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  // Headers that go to the configured origin only, beyond Authorization, Cookie and
  // Proxy-Authorization (always so), as curl treats credentials.
  std::vector<std::string> sensitive_headers;
  std::string body;
  std::vector<std::pair<int, int>> valid_status;  // inclusive ranges
  std::optional<boost::regex> body_regex;
  std::optional<boost::regex> body_must_not_match;
  unsigned max_redirects = 5;
  std::size_t max_body_bytes = 1 << 20;
  std::string authorization;    // "Basic ..." built from basic_auth_user and the password file
  std::optional<Target> proxy;  // an http:// proxy, spoken to with CONNECT for https
  AddressFamily family = AddressFamily::any;
  std::shared_ptr<const TlsClient> tls;
};

class HttpProbe final : public Probe {
 public:
  explicit HttpProbe(HttpSettings settings) : settings_(std::move(settings)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  HttpSettings settings_;
};

const ProbeKind& http_probe_kind();

// Searches a body for `pattern` as it streams through, never holding the body: only the text
// from where a match may still begin (Boost.Regex partial matching tells), capped at
// kMatchWindowBytes, so a match longer than that is not found. `$`, `\z` and `\b` are judged
// at the true end of the body, not at the end of a piece; a lookahead sees at least
// kLookaheadBytes past a match before the body's end.
//
// It searches once kSearchStepBytes have arrived since the last search (and at the end), not
// on every piece: a search costs up to the whole window, and a peer sending 1 KiB segments
// against an open partial match (".*") would otherwise cost a megabyte of matching per
// kilobyte received, on the thread that runs every probe.
class StreamingSearch {
 public:
  static constexpr std::size_t kMatchWindowBytes = std::size_t{1} << 20;
  static constexpr std::size_t kSearchStepBytes = std::size_t{256} << 10;
  static constexpr std::size_t kLookaheadBytes = 256;

  explicit StreamingSearch(const boost::regex& pattern) : pattern_(pattern) {}
  // The next piece of the body. Throws std::runtime_error where Boost.Regex gives up on a
  // pathological pattern.
  void feed(std::string_view piece);
  // The body has ended: the last chance for a match that needed its end.
  void finish();
  bool found() const { return found_; }
  // What is held now: bounded by kMatchWindowBytes + kSearchStepBytes and one piece, whatever
  // the body's size.
  std::size_t bytes_held() const { return window_.size(); }
  // Searches run so far (two per step while nothing matched).
  std::size_t searches_run() const { return searches_; }

 private:
  bool search(boost::match_flag_type flags, boost::match_results<std::string::const_iterator>& match) const;
  // Drops the text before `start` (keeping a little of it as context for \b, ^ and lookbehind).
  void keep_from(std::size_t start);

  const boost::regex& pattern_;
  std::string window_;
  // In window_: where the next match may begin. Text before it is context only, and there is
  // some (at least one character) whenever the window no longer starts at the body's start.
  std::size_t search_from_ = 0;
  std::size_t unsearched_ = 0;  // bytes fed since the last search
  mutable std::size_t searches_ = 0;
  bool found_ = false;
};

// Where a Location header leads from `from` (absolute, scheme-relative, absolute-path or
// relative-path references); throws std::invalid_argument for what is not an http(s) URL.
Target resolve_redirect(const Target& from, std::string_view location);

}  // namespace connectivity

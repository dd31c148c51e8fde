#include "probes/http/http_probe.h"

#include "probes/config_table.h"
#include "probes/connect.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <tuple>

namespace connectivity {

namespace {

namespace http = boost::beast::http;
using boost::beast::tcp_stream;

constexpr std::string_view kStatusCode = "connectivity_http_status_code";
constexpr std::string_view kStatusCodeHelp = "HTTP status code of the last response (after redirects).";
constexpr std::string_view kRedirects = "connectivity_http_redirects";
constexpr std::string_view kRedirectsHelp = "Redirects followed on the check's last run.";
constexpr std::string_view kBodyBytes = "connectivity_http_body_bytes";
constexpr std::string_view kBodyBytesHelp = "Size of the last response body read, in bytes.";

constexpr std::size_t kMaxHeaderBytes = std::size_t{64} * 1024;

// The Host header: the authority without a default port.
std::string host_header(const Target& url) {
  const bool default_port = (url.scheme == "https" && url.port == 443) || (url.scheme == "http" && url.port == 80);
  const std::string authority = url.authority();
  return default_port ? authority.substr(0, authority.rfind(':')) : authority;
}

// Same scheme, host and port: where credentials may go (as curl decides after a redirect).
bool same_origin(const Target& a, const Target& b) {
  return a.scheme == b.scheme && boost::beast::iequals(a.host, b.host) && a.port == b.port;
}

bool is_sensitive(const HttpSettings& s, std::string_view header) {
  static constexpr std::string_view always[] = {"Authorization", "Cookie", "Proxy-Authorization"};
  const auto named = [&](std::string_view name) { return boost::beast::iequals(name, header); };
  return std::any_of(std::begin(always), std::end(always), named) ||
         std::any_of(s.sensitive_headers.begin(), s.sensitive_headers.end(), named);
}

// One request and response on a connected stream. The body is never held: it streams through
// a fixed buffer into the byte count and, for the answer the run is judged on, the regexes.
struct Exchange {
  std::optional<ProbeResult> failure;
  unsigned status = 0;
  std::string location;
  std::size_t body_bytes = 0;
  std::optional<ProbeResult> body_failure;  // body_mismatch, or a regex that gave up
};

std::string_view classify_read_error(const boost::system::error_code& error) {
  if (error == http::error::body_limit) return reason::body_too_large;
  if (error.category() == http::make_error_code(http::error::end_of_stream).category() || error == asio::error::eof)
    return reason::protocol_error;
  return classify_tls_stream_error(error);
}

bool is_redirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool follows(const HttpSettings& s, unsigned status) { return s.max_redirects > 0 && is_redirect(status); }

bool accepted_status(const HttpSettings& s, unsigned status) {
  const int code = static_cast<int>(status);
  return std::any_of(s.valid_status.begin(), s.valid_status.end(),
                     [&](const auto& range) { return code >= range.first && code <= range.second; });
}

// body_regex and body_must_not_match, fed as the body streams in.
class BodyChecks {
 public:
  explicit BodyChecks(const HttpSettings& s) {
    if (s.body_regex) must_match_.emplace(*s.body_regex);
    if (s.body_must_not_match) must_not_match_.emplace(*s.body_must_not_match);
  }

  void feed(std::string_view piece) {
    guarded([&](StreamingSearch& search) { search.feed(piece); });
  }

  // After the whole body: why it fails the check, if it does.
  std::optional<ProbeResult> verdict() {
    guarded([](StreamingSearch& search) { search.finish(); });
    if (!regex_error_.empty()) return ProbeResult{reason::error, "regex: " + regex_error_};
    if (must_match_ && !must_match_->found()) return ProbeResult{reason::body_mismatch, "body does not match body_regex"};
    if (must_not_match_ && must_not_match_->found())
      return ProbeResult{reason::body_mismatch, "body matches body_must_not_match"};
    return std::nullopt;
  }

 private:
  template <class Step>
  void guarded(const Step& step) {
    if (!regex_error_.empty()) return;
    try {
      for (auto* search : {must_match_ ? &*must_match_ : nullptr, must_not_match_ ? &*must_not_match_ : nullptr})
        if (search && !search->found()) step(*search);
    } catch (const std::runtime_error& e) {
      // Boost.Regex gives up on a pathological pattern rather than running away.
      regex_error_ = e.what();
    }
  }

  std::optional<StreamingSearch> must_match_;
  std::optional<StreamingSearch> must_not_match_;
  std::string regex_error_;
};

constexpr std::size_t kBodyPieceBytes = std::size_t{64} * 1024;
// What the read buffer may grow to: a whole header (kMaxHeaderBytes) and a read beyond it.
// It also bounds the lines Beast must see whole in a chunked body (chunk sizes, extensions).
constexpr std::size_t kReadBufferBytes = kMaxHeaderBytes + kBodyPieceBytes;

template <class Stream>
asio::awaitable<Exchange> exchange(ProbeContext& ctx, Stream& stream, http::request<http::string_body>& request,
                                   const HttpSettings& s) {
  Exchange out;
  ctx.begin_phase("request");
  auto [write_error, written] = co_await http::async_write(stream, request, asio::as_tuple(asio::use_awaitable));
  if (write_error) {
    ctx.end_phase();
    out.failure = ProbeResult{classify_read_error(write_error), "sending the request: " + write_error.message()};
    co_return out;
  }
  boost::beast::flat_buffer buffer(kReadBufferBytes);
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(s.max_body_bytes);
  if (request.method() == http::verb::head) parser.skip(true);
  auto [header_error, header_bytes] =
      co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
  if (header_error) {
    ctx.end_phase();
    // A declared Content-Length over the cap is refused with the header already.
    out.failure = header_error == http::error::body_limit
                      ? ProbeResult{reason::body_too_large, "body over max_body_bytes (" + std::to_string(s.max_body_bytes) + ")"}
                      : ProbeResult{classify_read_error(header_error), "reading the response header: " + header_error.message()};
    co_return out;
  }
  out.status = parser.get().result_int();
  if (auto location = parser.get().find(http::field::location); location != parser.get().end())
    out.location = std::string(location->value());
  // Only the answer the run is judged on is searched, not a redirect's or a refused status's.
  std::optional<BodyChecks> checks;
  if (!follows(s, out.status) && accepted_status(s, out.status)) checks.emplace(s);

  ctx.begin_phase("transfer");
  std::vector<char> piece(kBodyPieceBytes);
  boost::system::error_code body_error;
  while (!parser.is_done()) {
    // Beast's composed reads and the stream's own timer can both miss the deadline while a
    // fast peer keeps every read completing at once; checking between reads cannot. (A
    // cancellation, too, is seen here: the next co_await throws.)
    if (Clock::now() >= ctx.deadline()) {
      ctx.end_phase();
      out.failure = ProbeResult{reason::timeout, "the body was still arriving at the deadline, after " +
                                                     std::to_string(out.body_bytes) + " bytes"};
      co_return out;
    }
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    auto [error, read] = co_await http::async_read_some(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    const std::size_t got = piece.size() - parser.get().body().size;
    out.body_bytes += got;
    if (checks && got > 0) checks->feed(std::string_view(piece.data(), got));
    if (error == http::error::need_buffer) continue;  // the piece is full: read on
    if (error == asio::ssl::error::stream_truncated) {
      // Many servers close TLS without close_notify after a body delimited by the close.
      boost::system::error_code eof_error;
      parser.put_eof(eof_error);
      if (!eof_error) continue;
    }
    if (error) {
      body_error = error;
      break;
    }
  }
  ctx.end_phase();
  if (body_error) {
    out.failure = ProbeResult{classify_read_error(body_error), "reading the response body: " + body_error.message()};
    co_return out;
  }
  if (checks) out.body_failure = checks->verdict();
  co_return out;
}

// Asks the proxy for a tunnel to `to` on a connected stream.
asio::awaitable<std::optional<ProbeResult>> open_tunnel(ProbeContext& ctx, tcp_stream& stream, const Target& to) {
  ctx.begin_phase("connect");
  http::request<http::empty_body> request{http::verb::connect, to.authority(), 11};
  request.set(http::field::host, to.authority());
  auto [write_error, written] = co_await http::async_write(stream, request, asio::as_tuple(asio::use_awaitable));
  boost::beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a CONNECT answer has no body: the tunnel follows
  boost::system::error_code error = write_error;
  if (!error) std::tie(error, std::ignore) = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
  ctx.end_phase();
  if (error) {
    const auto why = classify_read_error(error);
    co_return ProbeResult{why == reason::protocol_error ? reason::proxy_error : why, "proxy CONNECT: " + error.message()};
  }
  if (parser.get().result_int() / 100 != 2)
    co_return ProbeResult{reason::proxy_error, "proxy answered " + std::to_string(parser.get().result_int()) + " to CONNECT " + to.authority()};
  co_return std::nullopt;
}

std::string base64(std::string_view text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                   reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(std::max(size, 0)));
  return out;
}

std::vector<std::pair<int, int>> read_valid_status(ConfigTable& options) {
  const toml::node* node = options.get("valid_status_codes");
  if (!node) return {{200, 399}};
  const toml::array* list = node->as_array();
  if (!list || list->empty()) options.fail("valid_status_codes", "must be a non-empty array such as [200, \"3xx\"]");
  std::vector<std::pair<int, int>> out;
  for (const auto& entry : *list) {
    if (auto code = entry.value<std::int64_t>(); code && *code >= 100 && *code <= 599) {
      out.emplace_back(static_cast<int>(*code), static_cast<int>(*code));
    } else if (auto text = entry.value<std::string>();
               text && text->size() == 3 && (*text)[0] >= '1' && (*text)[0] <= '5' && text->ends_with("xx")) {
      const int hundred = ((*text)[0] - '0') * 100;
      out.emplace_back(hundred, hundred + 99);
    } else {
      throw_config_error(entry.source(), options.context() + ": key \"valid_status_codes\": each entry is a status (100-599) or a class such as \"2xx\"");
    }
  }
  return out;
}

std::optional<boost::regex> read_regex(ConfigTable& options, std::string_view key) {
  auto text = options.string(key);
  if (!text) return std::nullopt;
  try {
    return boost::regex(*text);
  } catch (const boost::regex_error& e) {
    options.fail(key, std::string("not a valid regular expression: ") + e.what());
  }
}

std::string read_authorization(ConfigTable& options) {
  const auto user = options.string("basic_auth_user");
  const auto password_file = options.string("basic_auth_password_file");
  if (user.has_value() != password_file.has_value())
    options.fail(user ? "basic_auth_user" : "basic_auth_password_file",
                 "basic_auth_user and basic_auth_password_file go together");
  if (!user) return {};
  if (user->find(':') != std::string::npos) options.fail("basic_auth_user", "must not contain ':'");
  return "Basic " + base64(*user + ":" + *options.secret_file("basic_auth_password_file"));
}

bool is_header_name(std::string_view name) {
  return !name.empty() && name.find_first_of(" \t\r\n:") == std::string_view::npos;
}

std::vector<std::string> read_sensitive_headers(ConfigTable& options) {
  std::vector<std::string> out;
  const toml::node* node = options.get("sensitive_headers");
  if (!node) return out;
  const toml::array* list = node->as_array();
  if (!list) options.fail("sensitive_headers", "must be an array of header names such as [\"X-Api-Key\"]");
  for (const auto& entry : *list) {
    const auto name = entry.value<std::string>();
    if (!name || !is_header_name(*name))
      throw_config_error(entry.source(), options.context() + ": key \"sensitive_headers\": each entry is a header name without spaces or ':'");
    out.push_back(*name);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> read_headers(ConfigTable& options) {
  std::vector<std::pair<std::string, std::string>> out;
  const toml::node* node = options.get("headers");
  if (!node) return out;
  const toml::table* table = node->as_table();
  if (!table) options.fail("headers", "must be a table of header names to values");
  for (const auto& [name, value] : *table) {
    const auto* text = value.as_string();
    const std::string_view key = name.str();
    const bool bad_name = !is_header_name(key);
    if (!text || bad_name || text->get().find_first_of("\r\n") != std::string::npos)
      throw_config_error(value.source(), options.context() + ": key \"headers." + std::string(key) +
                                             "\": a header is a name without spaces or ':' and a one-line string value");
    out.emplace_back(std::string(key), text->get());
  }
  return out;
}

}  // namespace

void StreamingSearch::feed(std::string_view piece) {
  if (found_) return;
  window_.append(piece);
  unsearched_ += piece.size();
  if (unsearched_ < kSearchStepBytes) return;
  unsearched_ = 0;
  // What has arrived is not the end of the body: `$`, `\z` and `\b` must not match there.
  const auto more_to_come = boost::match_not_eob | boost::match_not_eol | boost::match_not_eow;
  boost::match_results<std::string::const_iterator> match;
  // A partial match that starts early would hide a complete one after it: complete ones first.
  // One that ends too near what has arrived is not taken yet: a lookahead such as (?!\w) was
  // judged against the end of the window, not against the text still to come.
  const bool complete = search(more_to_come, match);
  if (complete && window_.cend() - match[0].second >= static_cast<std::ptrdiff_t>(kLookaheadBytes)) {
    found_ = true;
    std::string().swap(window_);
    return;
  }
  if (!complete && !search(more_to_come | boost::match_partial, match)) {
    keep_from(window_.size());  // no match can begin in what has arrived
    return;
  }
  const auto match_start = static_cast<std::size_t>(match[0].first - window_.cbegin());
  keep_from(std::max(match_start, window_.size() > kMatchWindowBytes ? window_.size() - kMatchWindowBytes : 0));
}

void StreamingSearch::finish() {
  if (found_) return;
  boost::match_results<std::string::const_iterator> match;
  found_ = search(boost::match_default, match);
}

bool StreamingSearch::search(boost::match_flag_type flags,
                             boost::match_results<std::string::const_iterator>& match) const {
  ++searches_;
  // Where the search starts past the body's start, the character before it is there for `^`,
  // `\b` and lookbehind, and `\A` must not match.
  if (search_from_ > 0) flags |= boost::match_prev_avail | boost::match_not_bob;
  return boost::regex_search(window_.cbegin() + static_cast<std::ptrdiff_t>(search_from_), window_.cend(), match,
                             pattern_, flags);
}

void StreamingSearch::keep_from(std::size_t start) {
  constexpr std::size_t kContextBytes = 256;
  const std::size_t drop = start > kContextBytes ? start - kContextBytes : 0;
  window_.erase(0, drop);
  search_from_ = start - drop;
}

Target resolve_redirect(const Target& from, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return parse_url_target(location);
  if (location.starts_with("//")) return parse_url_target(from.scheme + ":" + std::string(location));
  std::string path(location);
  if (!path.starts_with('/')) {
    std::string base = from.path.substr(0, from.path.find('?'));
    path = base.substr(0, base.rfind('/') + 1) + path;
  }
  return parse_url_target(from.scheme + "://" + host_header(from) + path);
}

asio::awaitable<ProbeResult> HttpProbe::run(ProbeContext& ctx) const {
  const HttpSettings& s = settings_;
  Target url = ctx.target();
  http::verb method = http::string_to_verb(s.method);
  std::string request_body = s.body;
  unsigned redirects = 0;
  std::vector<Fact> facts;

  auto finish = [&](ProbeResult result, unsigned status, std::size_t body_bytes) {
    if (status != 0) facts.push_back({kStatusCode, kStatusCodeHelp, {}, static_cast<double>(status)});
    facts.push_back({kRedirects, kRedirectsHelp, {}, static_cast<double>(redirects)});
    if (status != 0) facts.push_back({kBodyBytes, kBodyBytesHelp, {}, static_cast<double>(body_bytes)});
    result.facts = std::move(facts);
    return result;
  };

  for (;;) {
    const bool https = url.scheme == "https";
    asio::ip::tcp::socket socket(ctx.executor());
    if (auto failure = co_await resolve_and_connect(ctx, s.proxy ? *s.proxy : url, s.family, socket)) {
      if (s.proxy) failure->detail = "proxy: " + failure->detail;
      co_return finish(std::move(*failure), 0, 0);
    }
    tcp_stream tcp(std::move(socket));
    tcp.expires_at(ctx.deadline());
    if (s.proxy && https) {
      if (auto failure = co_await open_tunnel(ctx, tcp, url)) co_return finish(std::move(*failure), 0, 0);
    }

    // A plain request through a proxy names the whole URL; otherwise the path only.
    http::request<http::string_body> request{method, (s.proxy && !https) ? url.to_string() : url.path, 11};
    request.set(http::field::host, host_header(url));
    request.set(http::field::user_agent, "connectivity-agent");
    request.set(http::field::accept, "*/*");
    request.set(http::field::connection, "close");
    // Credentials go to the configured origin only, never to where a redirect points.
    const bool at_origin = same_origin(url, ctx.target());
    for (const auto& [name, value] : s.headers)
      if (at_origin || !is_sensitive(s, name)) request.set(name, value);
    if (!s.authorization.empty() && at_origin) request.set(http::field::authorization, s.authorization);
    request.body() = request_body;
    if (!request_body.empty() || method == http::verb::post || method == http::verb::put) request.prepare_payload();

    Exchange answer;
    if (https) {
      TlsStream stream(std::move(tcp), s.tls->context());
      TlsHandshake handshake = co_await s.tls->handshake(ctx, stream, url.host);
      // Certificate facts are those of the last hop's server.
      std::erase_if(facts, [](const Fact& f) { return f.metric.starts_with("connectivity_tls_"); });
      facts.insert(facts.end(), handshake.facts.begin(), handshake.facts.end());
      if (handshake.failure) co_return finish(std::move(*handshake.failure), 0, 0);
      answer = co_await exchange(ctx, stream, request, s);
    } else {
      answer = co_await exchange(ctx, tcp, request, s);
    }
    if (answer.failure) co_return finish(std::move(*answer.failure), answer.status, answer.body_bytes);

    if (follows(s, answer.status)) {
      if (redirects == s.max_redirects)
        co_return finish(ProbeResult{reason::too_many_redirects, "more than " + std::to_string(s.max_redirects) + " redirects, last to " + answer.location},
                         answer.status, answer.body_bytes);
      if (answer.location.empty())
        co_return finish(ProbeResult{reason::protocol_error, std::to_string(answer.status) + " without a Location header"},
                         answer.status, answer.body_bytes);
      try {
        url = resolve_redirect(url, answer.location);
      } catch (const std::invalid_argument& e) {
        co_return finish(ProbeResult{reason::protocol_error, "redirect to \"" + answer.location + "\": " + e.what()},
                         answer.status, answer.body_bytes);
      }
      ++redirects;
      // As browsers do: 303, and 301/302 after a POST, continue as GET without the body.
      if (answer.status == 303 || ((answer.status == 301 || answer.status == 302) && method == http::verb::post)) {
        if (method != http::verb::head) method = http::verb::get;
        request_body.clear();
      }
      continue;
    }

    if (!accepted_status(s, answer.status))
      co_return finish(ProbeResult{reason::http_status, "status " + std::to_string(answer.status) + " from " + url.to_string()},
                       answer.status, answer.body_bytes);
    if (answer.body_failure) co_return finish(std::move(*answer.body_failure), answer.status, answer.body_bytes);
    co_return finish(ProbeResult{reason::success}, answer.status, answer.body_bytes);
  }
}

namespace {
void describe_http_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point now, FactWords& words) {
  for (const auto& fact : facts) {
    if (fact.metric == kStatusCode) words.summary.push_back("HTTP " + std::to_string(static_cast<int>(fact.value)));
    else if (fact.metric == kRedirects) words.details.emplace_back("redirects followed", std::to_string(static_cast<long long>(fact.value)));
    else if (fact.metric == kBodyBytes) words.details.emplace_back("body", std::to_string(static_cast<long long>(fact.value)) + " bytes");
  }
  describe_tls_facts(facts, now, words);
}
}  // namespace

const ProbeKind& http_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect", "tls", "request", "transfer"};
  static constexpr std::string_view reasons[] = {reason::tls_error,      reason::cert_invalid,
                                                 reason::http_status,    reason::body_mismatch,
                                                 reason::body_too_large, reason::too_many_redirects,
                                                 reason::protocol_error, reason::proxy_error};
  static const ProbeKind kind{
      .name = "http",
      .phases = phases,
      .extra_reasons = reasons,
      .url_target = true,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        HttpSettings s;
        s.family = parse_address_family(options);
        if (auto method = options.choice("method", {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"})) s.method = *method;
        s.headers = read_headers(options);
        s.sensitive_headers = read_sensitive_headers(options);
        s.body = options.string("body").value_or("");
        s.valid_status = read_valid_status(options);
        s.body_regex = read_regex(options, "body_regex");
        s.body_must_not_match = read_regex(options, "body_must_not_match");
        if (const toml::node* node = options.get("max_redirects")) {
          const auto value = node->value<std::int64_t>();
          if (!value || *value < 0 || *value > 20) options.fail("max_redirects", "must be a whole number from 0 to 20");
          s.max_redirects = static_cast<unsigned>(*value);
        }
        if (auto bytes = options.positive_integer("max_body_bytes")) s.max_body_bytes = static_cast<std::size_t>(*bytes);
        s.authorization = read_authorization(options);
        if (auto proxy = options.string("proxy")) {
          try {
            s.proxy = parse_url_target(*proxy);
          } catch (const std::invalid_argument& e) {
            options.fail("proxy", "bad proxy URL \"" + *proxy + "\": " + e.what());
          }
          if (s.proxy->scheme != "http") options.fail("proxy", "must be an http:// URL (the proxy is asked to CONNECT)");
        }
        s.tls = TlsClient::from_options(options);
        return std::make_unique<HttpProbe>(std::move(s));
      },
      .describe = describe_http_facts};
  return kind;
}

}  // namespace connectivity

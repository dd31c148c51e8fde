#include "probes/probe.h"

#include "probes/utc_time.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/address_v6.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace connectivity {

std::string Target::authority() const {
  const bool ipv6_literal = host.find(':') != std::string::npos;
  return (ipv6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Target::to_string() const {
  if (!url.empty()) return url;
  return port == 0 ? host : authority();
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

Target parse_target(std::string_view text) {
  Target target;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("missing ']' after IPv6 address");
    target.host = std::string(text.substr(1, close - 1));
    if (text.substr(close + 1, 1) != ":") throw std::invalid_argument("expected :port after ']'");
    port_text = text.substr(close + 2);
    boost::system::error_code ec;
    asio::ip::make_address_v6(target.host, ec);
    if (ec) throw std::invalid_argument("\"" + target.host + "\" is not an IPv6 address");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw std::invalid_argument("expected host:port");
    target.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (target.host.find(':') != std::string::npos)
      throw std::invalid_argument("an IPv6 address must be written in brackets, as [addr]:port");
  }
  if (target.host.empty()) throw std::invalid_argument("empty host");
  for (char c : target.host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == ':' || c == '_' || c == '%';
    if (!ok) throw std::invalid_argument(std::string("character '") + c + "' is not allowed in a host");
  }
  const auto port = parse_port(port_text);
  if (!port) throw std::invalid_argument("port must be a number from 1 to 65535");
  target.port = *port;
  return target;
}

Target parse_host_target(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("empty name");
  boost::system::error_code ec;
  const std::string_view bare = text.starts_with('[') && text.ends_with(']') ? text.substr(1, text.size() - 2) : text;
  asio::ip::make_address(std::string(bare), ec);
  if (!ec) throw std::invalid_argument("an IP address is not a name to resolve: give the DNS name");
  if (text.find(':') != std::string_view::npos || text.find('[') != std::string_view::npos)
    throw std::invalid_argument("expected a bare DNS name such as webservices.oclc.org, without :port");
  std::string_view name = text;
  if (name.ends_with('.') && name.size() > 1) name.remove_suffix(1);
  if (name.size() > 253) throw std::invalid_argument("a DNS name is at most 253 characters");
  std::size_t label = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0) throw std::invalid_argument("empty label (two dots in a row, or a leading dot)");
      if (label > 63) throw std::invalid_argument("a label is at most 63 characters");
      label = 0;
      continue;
    }
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) throw std::invalid_argument(std::string("character '") + c + "' is not allowed in a DNS name");
    ++label;
  }
  Target target;
  target.host = std::string(text);
  return target;
}

Target parse_url_target(std::string_view text) {
  const auto separator = text.find("://");
  if (separator == std::string_view::npos) throw std::invalid_argument("expected a URL such as https://host/path");
  std::string scheme(text.substr(0, separator));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme != "http" && scheme != "https") throw std::invalid_argument("the scheme must be http or https");
  const std::string_view rest = text.substr(separator + 3);
  const auto authority_end = rest.find_first_of("/?#");
  const std::string authority(rest.substr(0, authority_end));
  if (authority.find('@') != std::string::npos)
    throw std::invalid_argument("credentials do not belong in a URL (use basic_auth_password_file)");
  std::string path = authority_end == std::string_view::npos ? "" : std::string(rest.substr(authority_end));
  path.erase(std::min(path.find('#'), path.size()));
  if (!path.starts_with('/')) path.insert(0, "/");
  for (unsigned char c : path)
    if (c <= ' ' || c == 0x7f) throw std::invalid_argument("the path must not contain spaces or control characters");

  const bool has_port = authority.starts_with('[') ? authority.find("]:") != std::string::npos
                                                   : authority.find(':') != std::string::npos;
  Target target = parse_target(has_port ? authority : authority + (scheme == "https" ? ":443" : ":80"));
  target.scheme = std::move(scheme);
  target.path = std::move(path);
  target.url = std::string(text);
  return target;
}

ProbeContext::ProbeContext(asio::any_io_executor executor, const Target& target,
                           Clock::time_point deadline, Resolver& resolver)
    : executor_(std::move(executor)), target_(target), deadline_(deadline), resolver_(resolver) {}

void ProbeContext::begin_phase(std::string_view name) {
  const auto now = Clock::now();
  end_phase_at(now);
  phases_.push_back({name, {}});
  phase_started_ = now;
  phase_open_ = true;
}

void ProbeContext::end_phase() { end_phase_at(Clock::now()); }

void ProbeContext::end_phase_at(Clock::time_point now) {
  if (!phase_open_) return;
  // A run is cut off at its deadline: a phase the probe closes while unwinding from that
  // cancellation must not claim time past it. Never negative either.
  now = std::min(now, deadline_);
  phases_.back().took = std::max(now - phase_started_, Clock::duration::zero());
  phase_open_ = false;
}

std::string_view Fact::label(std::string_view name) const {
  for (const auto& [label_name, value] : labels)
    if (label_name == name) return value;
  return {};
}

FactWords describe_facts(const ProbeKind* kind, std::span<const Fact> facts, std::chrono::system_clock::time_point now) {
  FactWords words;
  if (kind && kind->describe) kind->describe(facts, now, words);
  return words;
}

std::string summary_line(const FactWords& words) {
  std::string line;
  for (const auto& phrase : words.summary) line += (line.empty() ? "" : ", ") + phrase;
  return line;
}

std::string days_from_now(double unix_seconds, std::chrono::system_clock::time_point now) {
  if (!std::isfinite(unix_seconds)) return "never";
  const double days = (unix_seconds - std::chrono::duration<double>(now.time_since_epoch()).count()) / 86400;
  char text[64];
  if (days >= 1) std::snprintf(text, sizeof text, "in %.0f day%s", std::floor(days), std::floor(days) == 1 ? "" : "s");
  else if (days >= 0) std::snprintf(text, sizeof text, "in less than a day");
  else if (days > -1) std::snprintf(text, sizeof text, "less than a day ago");
  else std::snprintf(text, sizeof text, "%.0f day%s ago", std::ceil(-days), std::ceil(-days) == 1 ? "" : "s");
  return text;
}

std::string utc_minute_text(double unix_seconds) {
  if (!std::isfinite(unix_seconds)) return "never";
  const std::tm parts = utc_calendar(static_cast<std::time_t>(std::floor(unix_seconds)));
  char text[48];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &parts);
  return text;
}

}  // namespace connectivity

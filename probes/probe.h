// The probe interface: every protocol check is one Probe, run by the scheduler.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connectivity {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Label values of connectivity_probes_total{result}. A probe kind may add its own reasons
// (ProbeKind::extra_reasons) so every reason it can report is exported up front.
namespace reason {
inline constexpr std::string_view success = "success";
inline constexpr std::string_view dns_error = "dns_error";
inline constexpr std::string_view refused = "refused";
inline constexpr std::string_view timeout = "timeout";
inline constexpr std::string_view unreachable = "unreachable";
inline constexpr std::string_view reset = "reset";
// The agent itself ran out of descriptors or buffers (EMFILE, ENOBUFS): not the target's fault.
inline constexpr std::string_view resource_exhausted = "resource_exhausted";
// Anything not classified above; the run's detail line says what.
inline constexpr std::string_view error = "error";
}  // namespace reason

// Not a core reason: kinds that parse a protocol list it among their extra_reasons.
namespace reason {
inline constexpr std::string_view protocol_error = "protocol_error";  // the peer does not speak the protocol, or breaks it
}  // namespace reason

inline constexpr std::string_view kCoreReasons[] = {
    reason::success,     reason::dns_error, reason::refused,
    reason::timeout,     reason::unreachable, reason::reset,
    reason::resource_exhausted, reason::error};

enum class AddressFamily { any, ipv4, ipv6 };

struct Target {
  std::string host;  // name or address, without IPv6 brackets
  std::uint16_t port = 0;
  // Set only for kinds whose target is a URL (ProbeKind::url_target): "http" or "https", the
  // path with its query ("/" at least), and the URL as configured.
  std::string scheme;
  std::string path;
  std::string url;
  // host:port, with brackets for IPv6 literals.
  std::string authority() const;
  // The form used in labels and logs: the URL, the authority, or for a bare name (port 0) the name.
  std::string to_string() const;
};

// A TCP/UDP port number, 1-65535, written in decimal and nothing else; nullopt otherwise.
std::optional<std::uint16_t> parse_port(std::string_view text);
// "host:port" or "[v6addr]:port"; throws std::invalid_argument with a reason.
Target parse_target(std::string_view text);
// A bare DNS name ("webservices.oclc.org", a trailing dot allowed), for kinds that resolve it
// themselves (ProbeKind::host_target): no port, no IP literal; the port stays 0. Throws
// std::invalid_argument with a reason.
Target parse_host_target(std::string_view text);
// "http[s]://host[:port][/path][?query]" (the fragment dropped, no user:password@ part);
// throws std::invalid_argument with a reason.
Target parse_url_target(std::string_view text);

// Label pairs, sorted by name where they form a series' identity.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A fact is a gauge unless it says it is a counter: a running total the probe object keeps
// across runs (e.g. DNS address-set changes since the check was loaded).
enum class FactType { gauge, counter };

// Something a probe learned on its run, exported as a gauge of the check until the next run
// replaces it: a certificate's expiry time, or a server's version as an `_info` series valued 1.
// `metric` and `help` are the probe's own constants (connectivity_ prefix, base units); the
// probe keeps `labels` bounded (no per-run values).
struct Fact {
  std::string_view metric;
  std::string_view help;
  Labels labels;  // beyond the check's own
  double value = 1;
  FactType type = FactType::gauge;

  // The value of the label `name`, or "" when it has none.
  std::string_view label(std::string_view name) const;
};

// A run's facts put into words for people (`check`, the status page, the JSON API), by the kind
// that reports them: the metric names stay the kind's own business.
struct FactWords {
  // Short phrases for one line, in order: "cert expires in 83 days", "TLSv1.3".
  std::vector<std::string> summary;
  // Longer lines for a check's own page, each under a heading: each certificate of the chain,
  // each naming context.
  std::vector<std::pair<std::string, std::string>> details;
};
using DescribeFacts = void (*)(std::span<const Fact> facts, std::chrono::system_clock::time_point now, FactWords& words);

struct PhaseTiming {
  std::string_view name;
  Clock::duration took{};
};

class Resolver;

// What a probe gets for one run. Phases are recorded here rather than returned, so that a run
// cut off by its deadline still shows the phase it died in (as blackbox_exporter does).
class ProbeContext {
 public:
  ProbeContext(asio::any_io_executor executor, const Target& target,
               Clock::time_point deadline, Resolver& resolver);

  const asio::any_io_executor& executor() const { return executor_; }
  const Target& target() const { return target_; }
  Clock::time_point deadline() const { return deadline_; }
  Resolver& resolver() const { return resolver_; }

  // Starts timing `name`, ending the phase in progress, if any.
  void begin_phase(std::string_view name);
  void end_phase();
  // Ends the phase in progress at `now`: the runner calls this when it cuts a run off.
  void end_phase_at(Clock::time_point now);
  const std::vector<PhaseTiming>& phases() const { return phases_; }

  // What the probe has learned so far: reported if the run is cut off at its deadline before
  // the probe returns it (say, a server's version, then a silent second step).
  void set_facts_so_far(std::vector<Fact> facts) { facts_so_far_ = std::move(facts); }
  const std::vector<Fact>& facts_so_far() const { return facts_so_far_; }

 private:
  asio::any_io_executor executor_;
  const Target& target_;
  Clock::time_point deadline_;
  Resolver& resolver_;
  std::vector<PhaseTiming> phases_;
  std::vector<Fact> facts_so_far_;
  Clock::time_point phase_started_{};
  bool phase_open_ = false;
};

struct ProbeResult {
  ProbeResult() = default;
  explicit ProbeResult(std::string_view why, std::string what = {}, std::vector<Fact> learned = {})
      : reason(why), detail(std::move(what)), facts(std::move(learned)) {}

  std::string_view reason = reason::error;  // one of kCoreReasons or the kind's extra_reasons
  std::string detail;                       // one human line for logs, e.g. the errno text
  std::vector<Fact> facts;                  // exported also when the run failed
};

class Probe {
 public:
  virtual ~Probe() = default;
  // Runs once against ctx.target(). Returns a result and never throws for network outcomes.
  // The runner cancels the awaiting coroutine (terminal cancellation) at the deadline or when
  // the check is removed; every wait inside must honour that.
  virtual asio::awaitable<ProbeResult> run(ProbeContext& ctx) const = 0;
};

class ConfigTable;

// A probe kind: its name in `probe = "..."`, what it exports up front, and how it is built
// from the check's options sub-table.
struct ProbeKind {
  std::string_view name;
  std::span<const std::string_view> phases;         // every phase, in order
  std::span<const std::string_view> extra_reasons;  // beyond kCoreReasons
  bool url_target = false;  // `target` is an http(s) URL rather than host:port
  bool host_target = false;  // `target` is a bare DNS name (parse_host_target) rather than host:port
  std::function<std::unique_ptr<Probe>(ConfigTable&)> make;
  // Its facts in words; null for a kind that reports none worth saying (tcp).
  DescribeFacts describe = nullptr;
};

// `kind`'s words for `facts` (none when `kind` is null or says nothing).
FactWords describe_facts(const ProbeKind* kind, std::span<const Fact> facts, std::chrono::system_clock::time_point now);
// The summary phrases on one line, joined by ", ".
std::string summary_line(const FactWords& words);
// "in 12 days", "12 days ago", "today": how far `unix_seconds` is from `now`, in whole days.
std::string days_from_now(double unix_seconds, std::chrono::system_clock::time_point now);
// "2027-01-05 14:02 UTC".
std::string utc_minute_text(double unix_seconds);

}  // namespace connectivity

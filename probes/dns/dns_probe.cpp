#include "probes/dns/dns_probe.h"

#include "probes/config_table.h"
#include "probes/connect.h"
#include "probes/dns/dns_message.h"
#include "probes/dns/system_nameservers.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <random>
#include <tuple>
#include <variant>

namespace connectivity {

namespace {

using asio::ip::udp;

constexpr std::string_view kAddressInfo = "connectivity_dns_address_info";
constexpr std::string_view kAddressInfoHelp =
    "An address the name resolved to on the check's last run, valued 1 (at most 32 per check).";
constexpr std::string_view kAddresses = "connectivity_dns_addresses";
constexpr std::string_view kAddressesHelp = "Distinct addresses the name resolved to on the check's last run.";
constexpr std::string_view kChanges = "connectivity_dns_address_changes_total";
constexpr std::string_view kChangesHelp =
    "Changes of the name's address set since the agent loaded the check (the first answer is the baseline).";
constexpr std::string_view kIgnored = "connectivity_dns_ignored_replies_total";
constexpr std::string_view kIgnoredHelp =
    "Datagrams that did not answer the probe's query (wrong ID or question, garbage), dropped unread.";
constexpr std::string_view kTtl = "connectivity_dns_answer_ttl_seconds";
constexpr std::string_view kTtlHelp = "Smallest TTL among the records used on the check's last run (CNAMEs included).";

// A run drops at most this many stray datagrams before it calls the server broken (the
// deadline bounds the wait as well).
constexpr std::size_t kMaxIgnored = 64;

std::string endpoint_text(const udp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" + std::to_string(endpoint.port());
}

std::string_view phase_of(std::uint16_t type) { return type == dns::kTypeA ? "query_a" : "query_aaaa"; }

std::uint16_t random_id() {
  // RFC 5452: an unpredictable ID (and the kernel's random source port) against forged answers.
  // Straight from the system's random source for every query: a seeded generator such as
  // mt19937 gives its state away to anyone who sees enough of its IDs.
  thread_local std::random_device source;
  return static_cast<std::uint16_t>(source() & 0xffff);
}

std::string join(const std::vector<asio::ip::address>& addresses, std::size_t limit = 8) {
  std::string out;
  for (std::size_t i = 0; i < addresses.size() && i < limit; ++i) out += (i ? ", " : "") + addresses[i].to_string();
  if (addresses.size() > limit) out += " and " + std::to_string(addresses.size() - limit) + " more";
  return out.empty() ? "none" : out;
}

// The query again over TCP (RFC 1035 4.2.2: each message after its two-byte length), after a
// truncated UDP answer. There is no stranger's datagram to drop on a connection: anything but
// the answer is the server's fault.
asio::awaitable<std::variant<dns::Reply, ProbeResult>> exchange_tcp(ProbeContext& ctx, const udp::endpoint& server,
                                                                    const dns::Bytes& query, std::uint16_t id,
                                                                    std::uint16_t type) {
  using asio::ip::tcp;
  const tcp::endpoint endpoint(server.address(), server.port());
  const std::string where = std::string(dns::type_name(type)) + " query over TCP to " + endpoint_text(server) +
                            " (the UDP answer was truncated)";
  tcp::socket socket(ctx.executor());
  boost::system::error_code error;
  socket.open(endpoint.protocol(), error);
  if (!error) {
    std::tie(error) = co_await socket.async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
  }
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};
  dns::Bytes framed;
  framed.reserve(query.size() + 2);
  framed.push_back(static_cast<std::uint8_t>(query.size() >> 8));
  framed.push_back(static_cast<std::uint8_t>(query.size() & 0xff));
  for (const auto byte : query) framed.push_back(byte);  // (insert trips gcc 12's -Warray-bounds here)
  std::tie(error, std::ignore) = co_await asio::async_write(socket, asio::buffer(framed), asio::as_tuple(asio::use_awaitable));
  std::array<std::uint8_t, 2> length{};
  if (!error) {
    std::tie(error, std::ignore) = co_await asio::async_read(socket, asio::buffer(length), asio::as_tuple(asio::use_awaitable));
  }
  if (error == asio::error::eof) co_return ProbeResult{reason::protocol_error, where + ": the server closed the connection without an answer"};
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};
  std::vector<std::uint8_t> message(static_cast<std::size_t>(length[0] << 8 | length[1]));  // at most 64 KiB
  std::tie(error, std::ignore) = co_await asio::async_read(socket, asio::buffer(message), asio::as_tuple(asio::use_awaitable));
  if (error == asio::error::eof)
    co_return ProbeResult{reason::protocol_error, where + ": the connection closed inside a " + std::to_string(message.size()) + "-byte answer"};
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};
  auto decoded = dns::decode_reply(message, id, ctx.target().host, type);
  if (auto* reply = std::get_if<dns::Reply>(&decoded)) co_return std::move(*reply);
  if (auto* broken = std::get_if<dns::Malformed>(&decoded))
    co_return ProbeResult{reason::protocol_error, where + ": malformed reply: " + broken->why};
  co_return ProbeResult{reason::protocol_error, where + ": a reply that does not answer the query: " + std::get<dns::NotOurs>(decoded).why};
}

// One query of `type` to the server over UDP, as one phase; waits for the datagram that
// answers it (dropping others, counted in `ignored`), bounded by the run's deadline.
asio::awaitable<std::variant<dns::Reply, ProbeResult>> exchange(ProbeContext& ctx, const udp::endpoint& server,
                                                                std::uint16_t type, std::atomic<std::uint64_t>& ignored,
                                                                const std::function<void()>& publish) {
  const std::string& name = ctx.target().host;
  const std::string where = std::string(dns::type_name(type)) + " query to " + endpoint_text(server);
  const std::uint16_t id = random_id();
  const auto query = dns::encode_query(name, type, id);
  if (!query) co_return ProbeResult{reason::error, "cannot encode a DNS query for " + name};

  udp::socket socket(ctx.executor());
  boost::system::error_code error;
  socket.open(server.protocol(), error);
  // Connected: the kernel drops datagrams from any other address or port, and an ICMP port
  // unreachable comes back as "refused".
  if (!error) socket.connect(server, error);
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};
  std::tie(error, std::ignore) = co_await socket.async_send(asio::buffer(*query), asio::as_tuple(asio::use_awaitable));
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};

  // A UDP datagram is at most 64 KiB; a shorter buffer would truncate it silently.
  std::vector<std::uint8_t> datagram(65536);
  std::string last_ignored;
  bool truncated = false;
  for (std::size_t dropped = 0; dropped < kMaxIgnored && !truncated; ++dropped) {
    std::size_t size = 0;
    std::tie(error, size) = co_await socket.async_receive(asio::buffer(datagram), asio::as_tuple(asio::use_awaitable));
    if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};
    auto decoded = dns::decode_reply(std::span(datagram).first(size), id, name, type);
    if (auto* reply = std::get_if<dns::Reply>(&decoded)) {
      if (!reply->truncated || reply->rcode != 0) co_return std::move(*reply);
      truncated = true;
      continue;
    }
    if (auto* broken = std::get_if<dns::Malformed>(&decoded))
      co_return ProbeResult{reason::protocol_error, where + ": malformed reply: " + broken->why};
    last_ignored = std::get<dns::NotOurs>(decoded).why;
    ++ignored;
    publish();
  }
  if (!truncated)
    co_return ProbeResult{reason::protocol_error, where + ": " + std::to_string(kMaxIgnored) +
                                                      " datagrams, none answering the query (last: " + last_ignored + ")"};
  // RFC 7766 5: a truncated UDP answer is asked again over TCP, as phase "query_tcp".
  socket.close(error);
  ctx.begin_phase("query_tcp");
  auto over_tcp = co_await exchange_tcp(ctx, server, *query, id, type);
  co_return over_tcp;
}

ProbeResult failure(std::string_view why, std::string detail, std::vector<Fact> facts) {
  return ProbeResult{why, std::move(detail), std::move(facts)};
}

std::vector<AddressPrefix> read_expected(ConfigTable& options) {
  std::vector<AddressPrefix> out;
  const toml::node* node = options.get("expected_addresses");
  if (!node) return out;
  const toml::array* list = node->as_array();
  if (!list) options.fail("expected_addresses", "must be a list of addresses and CIDR prefixes");
  if (list->empty()) options.fail("expected_addresses", "is empty, so every address would be drift: list some or drop the key");
  for (const auto& element : *list) {
    const auto text = element.value<std::string>();
    std::string why = "must be a string, an address or CIDR prefix";
    std::optional<AddressPrefix> prefix;
    if (text) prefix = parse_address_prefix(*text, why);
    if (!prefix) throw_config_error(element.source(), options.context() + ": key \"expected_addresses\": " + why);
    out.push_back(*prefix);
  }
  return out;
}

std::vector<std::uint16_t> read_types(ConfigTable& options) {
  const toml::node* node = options.get("record_types");
  if (!node) return {dns::kTypeA, dns::kTypeAaaa};
  const toml::array* list = node->as_array();
  if (!list || list->empty()) options.fail("record_types", "must be a list of \"A\" and/or \"AAAA\"");
  std::vector<std::uint16_t> out;
  for (const auto& element : *list) {
    auto text = element.value<std::string>();
    if (text) std::transform(text->begin(), text->end(), text->begin(), [](unsigned char c) { return std::toupper(c); });
    const auto type = text ? dns::type_from_name(*text) : std::nullopt;
    if (!type)
      throw_config_error(element.source(), options.context() + ": key \"record_types\": " +
                                               (text ? "unknown record type \"" + *text + "\"" : std::string("must be a string")) +
                                               " (the probe asks for \"A\" and \"AAAA\")");
    if (std::find(out.begin(), out.end(), *type) != out.end())
      throw_config_error(element.source(), options.context() + ": key \"record_types\": \"" + *text + "\" is listed twice");
    out.push_back(*type);
  }
  return out;
}

}  // namespace

std::optional<udp::endpoint> parse_dns_server(std::string_view text, std::string& why) {
  why = "\"" + std::string(text) + "\" must be an IP address with an optional port: \"192.0.2.53\", \"127.0.0.1:5353\", \"[::1]:53\"";
  std::string host(text);
  std::uint16_t port = 53;
  const auto colons = std::count(text.begin(), text.end(), ':');
  if (text.starts_with('[') || colons == 1) {
    try {
      const Target target = parse_target(text);
      host = target.host;
      port = target.port;
    } catch (const std::invalid_argument& e) {
      why += " (" + std::string(e.what()) + ")";
      return std::nullopt;
    }
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    why += "; a DNS server is given by address, not by name";
    return std::nullopt;
  }
  return udp::endpoint(address, port);
}

udp::endpoint system_nameserver() {
  const auto servers = dns::system_nameservers();
  if (servers.empty()) return udp::endpoint(asio::ip::address_v4::loopback(), 53);
  return servers.front();
}

std::vector<Fact> DnsProbe::counters() const {
  std::uint64_t changes = 0;
  {
    std::lock_guard lock(mutex_);
    changes = changes_;
  }
  return {Fact{kChanges, kChangesHelp, {}, static_cast<double>(changes), FactType::counter},
          Fact{kIgnored, kIgnoredHelp, {}, static_cast<double>(ignored_.load()), FactType::counter}};
}

asio::awaitable<ProbeResult> DnsProbe::run(ProbeContext& ctx) const {
  // The counters are exported on every run, a cut-off one included.
  const std::function<void()> publish = [&] { ctx.set_facts_so_far(counters()); };
  publish();
  const std::string& name = ctx.target().host;
  const std::string server = endpoint_text(settings_.server);

  std::vector<asio::ip::address> addresses;
  std::optional<std::uint32_t> min_ttl;
  std::vector<std::string> chain;
  for (const auto type : settings_.types) {
    ctx.begin_phase(phase_of(type));
    auto outcome = co_await exchange(ctx, settings_.server, type, ignored_, publish);
    ctx.end_phase();
    if (auto* failed = std::get_if<ProbeResult>(&outcome)) {
      failed->facts = counters();
      co_return std::move(*failed);
    }
    auto& reply = std::get<dns::Reply>(outcome);
    const std::string asked = name + " " + std::string(dns::type_name(type));
    if (reply.rcode != 0)
      co_return failure(reason::dns_error, asked + ": " + dns::rcode_name(reply.rcode) + " from " + server, counters());
    if (reply.truncated)
      co_return failure(reason::dns_error,
                        asked + ": the answer was truncated (TC) by " + server + " even over TCP",
                        counters());
    addresses.insert(addresses.end(), reply.addresses.begin(), reply.addresses.end());
    if (reply.min_ttl) min_ttl = std::min(min_ttl.value_or(*reply.min_ttl), *reply.min_ttl);
    if (chain.empty()) chain = std::move(reply.chain);
  }

  co_return conclude(name, server, std::move(addresses), min_ttl, chain);
}

// What the answers mean: the distinct set against the baseline (the change counter), the
// facts, and the expected_addresses check. A plain function, kept out of the coroutine.
ProbeResult DnsProbe::conclude(const std::string& name, const std::string& server, std::vector<asio::ip::address> addresses,
                               std::optional<std::uint32_t> min_ttl, const std::vector<std::string>& chain) const {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  std::string types;
  for (const auto type : settings_.types) types += (types.empty() ? "" : "/") + std::string(dns::type_name(type));
  if (addresses.empty())
    return failure(reason::dns_error, "no addresses: " + server + " has no " + types + " records for " + name + " (NODATA)",
                      counters());

  std::string detail;
  {
    std::lock_guard lock(mutex_);
    if (baseline_ && *baseline_ != addresses) {
      ++changes_;
      detail = "address set changed from " + join(*baseline_) + " to " + join(addresses) + "; ";
    }
    baseline_ = addresses;
  }

  std::vector<Fact> facts = counters();
  facts.push_back({kAddresses, kAddressesHelp, {}, static_cast<double>(addresses.size())});
  if (min_ttl) facts.push_back({kTtl, kTtlHelp, {}, static_cast<double>(*min_ttl)});
  for (std::size_t i = 0; i < addresses.size() && i < kMaxAddressFacts; ++i)
    facts.push_back({kAddressInfo, kAddressInfoHelp, {{"address", addresses[i].to_string()}}, 1});
  detail += std::to_string(addresses.size()) + (addresses.size() == 1 ? " address" : " addresses") + " from " + server;
  if (!chain.empty()) detail += " via CNAME " + chain.back();
  if (addresses.size() > kMaxAddressFacts)
    detail += "; only the first " + std::to_string(kMaxAddressFacts) + " (in address order) are exported";

  if (!settings_.expected.empty()) {
    std::vector<asio::ip::address> unexpected;
    for (const auto& address : addresses)
      if (std::none_of(settings_.expected.begin(), settings_.expected.end(),
                       [&](const AddressPrefix& p) { return p.contains(address); }))
        unexpected.push_back(address);
    if (!unexpected.empty())
      return failure(reason::address_drift,
                        name + " resolved to " + join(unexpected) + ", outside expected_addresses (" + detail + ")",
                        std::move(facts));
  }
  return ProbeResult{reason::success, std::move(detail), std::move(facts)};
}

namespace {
// The addresses first and at most four of them on the line (a round-robin name has dozens);
// every one on the check's page.
void describe_dns_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point, FactWords& words) {
  std::vector<std::string_view> addresses;
  for (const auto& fact : facts) {
    if (fact.metric == kAddressInfo) addresses.push_back(fact.label("address"));
    else if (fact.metric == kTtl) words.details.emplace_back("smallest TTL", std::to_string(static_cast<long long>(fact.value)) + " s");
    else if (fact.metric == kChanges)
      words.details.emplace_back("address set changes since loaded", std::to_string(static_cast<long long>(fact.value)));
  }
  if (addresses.empty()) return;
  std::string line, all;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (i < 4) line += (i ? " " : "") + std::string(addresses[i]);
    all += (i ? " " : "") + std::string(addresses[i]);
  }
  if (addresses.size() > 4) line += " +" + std::to_string(addresses.size() - 4) + " more";
  words.summary.insert(words.summary.begin(), line);
  words.details.insert(words.details.begin(), {"addresses", all});
}
}  // namespace

const ProbeKind& dns_probe_kind() {
  static constexpr std::string_view phases[] = {"query_a", "query_aaaa", "query_tcp"};
  static constexpr std::string_view reasons[] = {reason::protocol_error, reason::address_drift};
  static const ProbeKind kind{
      .name = "dns",
      .phases = phases,
      .extra_reasons = reasons,
      .host_target = true,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        DnsSettings s;
        if (auto text = options.string("server")) {
          std::string why;
          auto server = parse_dns_server(*text, why);
          if (!server) options.fail("server", why);
          s.server = *server;
        } else {
          s.server = system_nameserver();
        }
        s.types = read_types(options);
        s.expected = read_expected(options);
        return std::make_unique<DnsProbe>(std::move(s));
      },
      .describe = describe_dns_facts};
  return kind;
}

}  // namespace connectivity

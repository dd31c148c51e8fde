#include "probes/tds/tds_probe.h"

#include "probes/config_table.h"
#include "probes/connect.h"
#include "probes/peer_text.h"
#include "probes/tds/browser.h"
#include "probes/tds/prelogin.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <tuple>
#include <variant>

namespace connectivity {

namespace {

using boost::beast::tcp_stream;

constexpr std::string_view kServerInfo = "connectivity_tds_server_info";
constexpr std::string_view kServerInfoHelp =
    "SQL Server's PRELOGIN answer: version and product, encryption it offers or requires, instance check, MARS.";
constexpr std::string_view kBrowserPort = "connectivity_tds_browser_tcp_port";
constexpr std::string_view kBrowserPortHelp = "TCP port the SQL Server Browser (UDP 1434) names for the instance.";

constexpr std::uint8_t kReplyTypes[] = {tds::kReplyPacket};
// SQL Server answers handshake records in packets of either type, depending on its version.
constexpr std::uint8_t kHandshakeTypes[] = {tds::kPreloginPacket, tds::kReplyPacket};

// Fills `into`; on failure `got` says how much of it arrived.
template <class Stream>
asio::awaitable<boost::system::error_code> read_exactly(Stream& stream, std::span<std::uint8_t> into,
                                                        std::size_t* got = nullptr) {
  auto [error, size] = co_await asio::async_read(stream, asio::buffer(into.data(), into.size()),
                                                 asio::as_tuple(asio::use_awaitable));
  if (got) *got = size;
  co_return error;
}

// Sends PRELOGIN and reads the answer, as phase "prelogin".
template <class Stream>
asio::awaitable<std::variant<tds::PreloginReply, ProbeResult>> exchange_prelogin(ProbeContext& ctx, Stream& stream,
                                                                                 const std::string& instance) {
  ctx.begin_phase("prelogin");
  const auto request = tds::encode_prelogin({instance});
  auto [write_error, written] = co_await asio::async_write(stream, asio::buffer(request), asio::as_tuple(asio::use_awaitable));
  if (write_error)
    co_return ProbeResult{classify_tls_stream_error(write_error), "sending PRELOGIN: " + write_error.message()};

  tds::MessageAssembler assembler(kReplyTypes, tds::kMaxPreloginReply);
  std::size_t received = 0;
  while (!assembler.complete()) {
    std::array<std::uint8_t, tds::kHeaderSize> header{};
    std::size_t got = 0;
    if (auto error = co_await read_exactly(stream, header, &got)) {
      if (error != asio::error::eof && error != asio::ssl::error::stream_truncated)
        co_return ProbeResult{classify_tls_stream_error(error), "reading the PRELOGIN answer: " + error.message()};
      if (received + got == 0) co_return ProbeResult{reason::protocol_error, "connection closed without a PRELOGIN answer"};
      co_return ProbeResult{reason::protocol_error, "connection closed inside a packet header, after " +
                                                        std::to_string(received + got) + " bytes" +
                                                        (received == 0 ? text_instead(std::span(header).first(got), "SQL Server") : "")};
    }
    auto next = assembler.header(header);
    if (auto* refused = std::get_if<tds::DecodeError>(&next))
      co_return ProbeResult{reason::protocol_error, "PRELOGIN answer: " + refused->what + (received == 0 ? text_instead(header, "SQL Server") : "")};
    std::vector<std::uint8_t> payload(std::get<std::size_t>(next));
    if (auto error = co_await read_exactly(stream, payload)) {
      if (error != asio::error::eof && error != asio::ssl::error::stream_truncated)
        co_return ProbeResult{classify_tls_stream_error(error), "reading the PRELOGIN answer: " + error.message()};
      co_return ProbeResult{reason::protocol_error, "connection closed inside a " + std::to_string(payload.size()) +
                                                        "-byte PRELOGIN packet"};
    }
    assembler.payload(payload);
    received += tds::kHeaderSize + payload.size();
  }
  auto reply = tds::decode_prelogin_reply(assembler.message());
  ctx.end_phase();
  if (auto* refused = std::get_if<tds::DecodeError>(&reply))
    co_return ProbeResult{reason::protocol_error, "PRELOGIN answer: " + refused->what};
  co_return std::get<tds::PreloginReply>(reply);
}

// TDS 7.x carries the TLS handshake inside PRELOGIN packets: ours wrapped in type 0x12, the
// server's unwrapped from 0x12 or 0x04.
class PreloginWrappedRecords final : public TlsRecordChannel {
 public:
  explicit PreloginWrappedRecords(tcp_stream& stream) : stream_(stream) {}

  asio::awaitable<std::optional<ProbeResult>> send(std::span<const unsigned char> records) override {
    const auto packets = tds::frame_message(tds::kPreloginPacket, records);
    auto [error, written] = co_await asio::async_write(stream_, asio::buffer(packets), asio::as_tuple(asio::use_awaitable));
    if (error) co_return ProbeResult{classify_network_error(error), "sending TLS records: " + error.message()};
    co_return std::nullopt;
  }

  asio::awaitable<std::optional<ProbeResult>> receive(std::vector<unsigned char>& records) override {
    std::array<std::uint8_t, tds::kHeaderSize> bytes{};
    auto error = co_await read_exactly(stream_, bytes);
    if (!error) {
      auto header = tds::decode_header(bytes, kHandshakeTypes);
      if (auto* refused = std::get_if<tds::DecodeError>(&header))
        co_return ProbeResult{reason::protocol_error, "TLS handshake packet: " + refused->what};
      const std::size_t at = records.size();
      records.resize(at + std::get<tds::PacketHeader>(header).payload_size());
      error = co_await read_exactly(stream_, std::span(records).subspan(at));
    }
    if (error == asio::error::eof) co_return ProbeResult{reason::tls_error, "connection closed during the TLS handshake"};
    if (error) co_return ProbeResult{classify_network_error(error), "TLS handshake: " + error.message()};
    co_return std::nullopt;
  }

  // SQL Server negotiates TLS 1.3 only under TDS 8.0.
  int max_tls_version() const override { return TLS1_2_VERSION; }

 private:
  tcp_stream& stream_;
};

std::string instance_state(const TdsSettings& settings, const tds::PreloginReply& reply) {
  if (settings.instance.empty()) return "not_checked";
  return reply.instance.value_or(0) == 0 ? "match" : "mismatch";
}

Fact server_info(const TdsSettings& settings, const tds::PreloginReply& reply) {
  const std::string product = tds::product_name(reply.version);
  return {kServerInfo,
          kServerInfoHelp,
          {{"encryption", tds::encryption_name(reply.encryption)},
           {"instance_check", instance_state(settings, reply)},
           {"mars", !reply.mars ? "absent" : *reply.mars == 0 ? "off" : "on"},
           {"product", product.empty() ? "unknown" : product},
           {"version", reply.version.text()}}};
}

// Asks the Browser at `address` which TCP port the instance listens on, as phase "browser".
asio::awaitable<std::optional<ProbeResult>> check_browser(ProbeContext& ctx, const TdsSettings& settings,
                                                          const asio::ip::address& address, std::vector<Fact>& facts) {
  using asio::ip::udp;
  const std::string where = "SQL Server Browser on udp/" + std::to_string(settings.browser_port);
  ctx.begin_phase("browser");
  udp::socket socket(ctx.executor());
  boost::system::error_code error;
  socket.open(address.is_v4() ? udp::v4() : udp::v6(), error);
  // Connected, so that an ICMP port unreachable comes back as "refused".
  if (!error) socket.connect({address, settings.browser_port}, error);
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};
  const auto query = tds::encode_browser_query(settings.instance);
  std::tie(error, std::ignore) = co_await socket.async_send(asio::buffer(query), asio::as_tuple(asio::use_awaitable));
  // A reply for one instance is at most 1024 bytes (MS-SQLR 2.2.5); a longer one fails its size check.
  std::array<std::uint8_t, 4096> datagram{};
  std::size_t size = 0;
  if (!error)
    std::tie(error, size) = co_await socket.async_receive(asio::buffer(datagram), asio::as_tuple(asio::use_awaitable));
  ctx.end_phase();
#if defined(_WIN32)
  // Windows fails the receive of a UDP socket that got an ICMP port unreachable with
  // WSAECONNRESET (Linux: ECONNREFUSED): nobody listens there, which is "refused", not a reset.
  if (error == asio::error::connection_reset) error = asio::error::connection_refused;
#endif
  if (error) co_return ProbeResult{classify_network_error(error), where + ": " + error.message()};

  auto decoded = tds::decode_browser_reply(std::span(datagram).first(size));
  if (auto* refused = std::get_if<tds::DecodeError>(&decoded))
    co_return ProbeResult{reason::protocol_error, where + ": " + refused->what};
  const auto& instances = std::get<std::vector<tds::BrowserInstance>>(decoded);
  const tds::BrowserInstance* found = tds::find_instance(instances, settings.instance);
  if (!found) co_return ProbeResult{reason::instance_mismatch, where + " does not list instance " + settings.instance};
  if (!found->tcp_port)
    co_return ProbeResult{reason::instance_mismatch, where + ": instance " + settings.instance + " has TCP disabled"};
  facts.push_back({kBrowserPort, kBrowserPortHelp, {{"sql_instance", settings.instance}}, static_cast<double>(*found->tcp_port)});
  if (*found->tcp_port != ctx.target().port)
    co_return ProbeResult{reason::instance_mismatch, where + ": instance " + settings.instance + " listens on tcp/" +
                                                         std::to_string(*found->tcp_port) + ", the check connects to " +
                                                         std::to_string(ctx.target().port)};
  co_return std::nullopt;
}

ProbeResult with_facts(ProbeResult result, std::vector<Fact> facts) {
  result.facts = std::move(facts);
  return result;
}

std::string read_instance(ConfigTable& options) {
  auto name = options.string("instance");
  if (!name) return {};
  // SQL Server's own rule for instance names: at most 16 characters, no spaces or punctuation
  // beyond these. Anything else could not match and would not fit the Browser's text format.
  const bool valid = !name->empty() && name->size() <= 16 && std::all_of(name->begin(), name->end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '$' || c == '#' || c == '&';
  });
  if (!valid) options.fail("instance", "must be a SQL Server instance name: 1 to 16 letters, digits, _, $, # or &");
  return *name;
}

}  // namespace

asio::awaitable<ProbeResult> TdsProbe::run(ProbeContext& ctx) const {
  asio::ip::tcp::socket socket(ctx.executor());
  if (auto failure = co_await resolve_and_connect(ctx, settings_.family, socket)) co_return *failure;
  boost::system::error_code no_endpoint;
  const asio::ip::address address = socket.remote_endpoint(no_endpoint).address();
  tcp_stream stream(std::move(socket));
  stream.expires_at(ctx.deadline());

  std::vector<Fact> facts;
  // Each co_await is a statement of its own: GCC 12 mishandles temporaries of a co_await inside
  // a conditional expression or an argument list (double destruction).
  std::optional<ProbeResult> failure;
  if (settings_.strict) {
    failure = co_await strict_session(ctx, std::move(stream), facts);
  } else {
    failure = co_await classic_session(ctx, stream, facts);
  }
  if (!failure && settings_.browser) {
    ctx.set_facts_so_far(facts);  // a Browser behind a firewall that drops UDP must not hide the server
    failure = co_await check_browser(ctx, settings_, address, facts);
  }
  if (failure) co_return with_facts(std::move(*failure), std::move(facts));
  co_return ProbeResult{reason::success, {}, std::move(facts)};
}

std::optional<ProbeResult> TdsProbe::judge(std::variant<tds::PreloginReply, ProbeResult> prelogin,
                                           std::vector<Fact>& facts) const {
  if (auto* failure = std::get_if<ProbeResult>(&prelogin)) return std::move(*failure);
  const auto& reply = std::get<tds::PreloginReply>(prelogin);
  facts.push_back(server_info(settings_, reply));
  if (!settings_.instance.empty() && reply.instance.value_or(0) != 0)
    return ProbeResult{reason::instance_mismatch, "the server is not instance " + settings_.instance};
  if (settings_.tls && !settings_.strict && reply.encryption == static_cast<std::uint8_t>(tds::Encryption::not_supported))
    return ProbeResult{reason::tls_error, "the server answered ENCRYPTION not_supported: it offers no TLS"};
  return std::nullopt;
}

// TDS 7.x: PRELOGIN in the clear, then (with tls) the handshake wrapped in PRELOGIN packets.
asio::awaitable<std::optional<ProbeResult>> TdsProbe::classic_session(ProbeContext& ctx, tcp_stream& stream,
                                                                      std::vector<Fact>& facts) const {
  auto prelogin = co_await exchange_prelogin(ctx, stream, settings_.instance);
  if (auto failure = judge(std::move(prelogin), facts)) co_return failure;
  if (!settings_.tls) co_return std::nullopt;
  ctx.set_facts_so_far(facts);
  PreloginWrappedRecords channel(stream);
  TlsHandshake handshake = co_await settings_.tls_client->handshake(ctx, channel, ctx.target().host);
  facts.insert(facts.end(), handshake.facts.begin(), handshake.facts.end());
  co_return std::move(handshake.failure);
}

// TDS 8.0: TLS first, offering ALPN "tds/8.0", then PRELOGIN inside the session.
asio::awaitable<std::optional<ProbeResult>> TdsProbe::strict_session(ProbeContext& ctx, tcp_stream stream,
                                                                     std::vector<Fact>& facts) const {
  TlsStream tls(std::move(stream), settings_.tls_client->context());
  tls.next_layer().expires_at(ctx.deadline());
  TlsHandshake handshake = co_await settings_.tls_client->handshake(ctx, tls, ctx.target().host, "tds/8.0");
  facts = std::move(handshake.facts);
  if (handshake.failure) co_return std::move(handshake.failure);
  ctx.set_facts_so_far(facts);
  auto prelogin = co_await exchange_prelogin(ctx, tls, settings_.instance);
  co_return judge(std::move(prelogin), facts);
}

namespace {
void describe_tds_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point now, FactWords& words) {
  for (const auto& fact : facts) {
    if (fact.metric == kServerInfo) {
      const std::string_view product = fact.label("product");
      words.summary.push_back((product == "unknown" ? std::string("SQL Server") : std::string(product)) + " (" +
                              std::string(fact.label("version")) + "), encryption " + std::string(fact.label("encryption")));
    } else if (fact.metric == kBrowserPort) {
      words.summary.push_back("browser names port " + std::to_string(static_cast<long long>(fact.value)));
    }
  }
  describe_tls_facts(facts, now, words);
}
}  // namespace

const ProbeKind& tds_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect", "prelogin", "tls", "browser"};
  static constexpr std::string_view reasons[] = {reason::protocol_error, reason::tls_error, reason::cert_invalid,
                                                 reason::instance_mismatch};
  static const ProbeKind kind{
      .name = "tds",
      .phases = phases,
      .extra_reasons = reasons,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        TdsSettings s;
        s.family = parse_address_family(options);
        s.instance = read_instance(options);
        s.strict = options.boolean("strict").value_or(false);
        const auto tls = options.boolean("tls");
        if (s.strict && tls == false) options.fail("tls", "strict encryption is TLS before anything else: drop tls = false");
        s.tls = tls.value_or(false) || s.strict;
        s.browser = options.boolean("browser").value_or(false);
        if (s.browser && s.instance.empty()) options.fail("browser", "asks the Browser about an instance: set instance too");
        if (auto port = options.positive_integer("browser_port")) {
          if (*port > 65535) options.fail("browser_port", "must be a port number, 1 to 65535");
          if (!s.browser) options.fail("browser_port", "only applies with browser = true");
          s.browser_port = static_cast<std::uint16_t>(*port);
        }
        if (s.tls) {
          s.tls_client = TlsClient::from_options(options);
        } else {
          for (auto key : TlsClient::option_keys())
            if (options.get(key)) options.fail(key, "is a TLS option: it needs tls = true or strict = true");
        }
        return std::make_unique<TdsProbe>(std::move(s));
      },
      .describe = describe_tds_facts};
  return kind;
}

}  // namespace connectivity

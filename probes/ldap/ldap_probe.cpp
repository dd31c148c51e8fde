#include "probes/ldap/ldap_probe.h"

#include "probes/peer_text.h"

#include "probes/config_table.h"
#include "probes/connect.h"
#include "probes/ldap/ldap_codec.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <span>
#include <variant>

namespace connectivity {

namespace {

using boost::beast::tcp_stream;

constexpr std::string_view kRootDseInfo = "connectivity_ldap_root_dse_info";
constexpr std::string_view kRootDseInfoHelp =
    "The RootDSE's supportedLDAPVersion values, sorted and comma-joined (\"none\" when it lists none), valued 1.";
constexpr std::string_view kNamingContexts = "connectivity_ldap_naming_contexts";
constexpr std::string_view kNamingContextsHelp = "How many namingContexts the RootDSE lists.";
constexpr std::string_view kNamingContextInfo = "connectivity_ldap_naming_context_info";
constexpr std::string_view kNamingContextInfoHelp =
    "A naming context the RootDSE lists (the first 8, sorted; at most 256 characters each), valued 1.";
constexpr std::string_view kResultCode = "connectivity_ldap_result_code";
constexpr std::string_view kResultCodeHelp =
    "The LDAP resultCode of each operation of the last run (starttls, bind, search); 0 is success.";

// What may answer each request (besides a Notice of Disconnection).
constexpr std::uint8_t kStartTlsAnswers[] = {ldap::kExtendedResponse};
constexpr std::uint8_t kBindAnswers[] = {ldap::kBindResponse};
constexpr std::uint8_t kSearchAnswers[] = {ldap::kSearchResultEntry, ldap::kSearchResultReference,
                                           ldap::kSearchResultDone};

constexpr std::size_t kMaxNamingContexts = 8;
constexpr std::size_t kMaxLabelValue = 256;
constexpr std::size_t kMaxDiagnostic = 200;

std::string describe(const ldap::Result& result) {
  std::string out = "resultCode " + std::to_string(result.code) + " (" + std::string(ldap::result_code_name(result.code)) + ")";
  if (!result.diagnostic.empty()) out += ": " + printable_text(result.diagnostic, kMaxDiagnostic);
  return out;
}

bool is_ldap_answer(std::string_view why) {
  return why == reason::auth_failed || why == reason::unavailable || why == reason::ldap_error;
}

using Reply = std::variant<ldap::Message, ProbeResult>;

// Reads whole LDAPMessages off `stream`, framed by their BER length: one read may carry
// several (slapd sends the entry and the done together), or a part of one.
template <class Stream>
class MessageReader {
 public:
  explicit MessageReader(Stream& stream) : stream_(stream) {}

  std::size_t buffered() const { return buffer_.size(); }

  // The next message; `what` names the answer awaited, for the detail.
  asio::awaitable<Reply> next(const std::string& what) {
    for (;;) {
      auto framed = ldap::frame_message(buffer_);
      if (auto* refused = std::get_if<ldap::DecodeError>(&framed)) {
        const bool at_start = received_ == buffer_.size();
        co_return ProbeResult{reason::protocol_error,
                              what + ": " + refused->what + (at_start ? text_instead(buffer_, "LDAP") : "")};
      }
      if (const auto& size = std::get<std::optional<std::size_t>>(framed); size && buffer_.size() >= *size) {
        auto decoded = ldap::decode_message(std::span(buffer_).first(*size));
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(*size));
        if (auto* refused = std::get_if<ldap::DecodeError>(&decoded))
          co_return ProbeResult{reason::protocol_error, what + ": " + refused->what};
        co_return std::move(std::get<ldap::Message>(decoded));
      }
      std::array<std::uint8_t, 4096> chunk{};
      auto [error, size] = co_await stream_.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
      buffer_.insert(buffer_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(size));
      received_ += size;
      if (!error || size > 0) continue;
      if (error != asio::error::eof && error != asio::ssl::error::stream_truncated)
        co_return ProbeResult{classify_tls_stream_error(error), "reading the " + what + ": " + error.message()};
      if (received_ == 0) co_return ProbeResult{reason::protocol_error, "connection closed without an LDAP answer (awaiting the " + what + ")"};
      if (buffer_.empty()) co_return ProbeResult{reason::protocol_error, "connection closed before the " + what};
      co_return ProbeResult{reason::protocol_error, "connection closed inside an LDAP message (" + what + "), after " +
                                                        std::to_string(buffer_.size()) + " of its bytes" +
                                                        (received_ == buffer_.size() ? text_instead(buffer_, "LDAP") : "")};
    }
  }

 private:
  Stream& stream_;
  std::vector<std::uint8_t> buffer_;  // at most one message (kMaxMessage) plus one read
  std::size_t received_ = 0;
};

// The answer to request `id`: one of `expected` operations. A Notice of Disconnection (RFC
// 4511 4.4.1: message ID 0) ends the run with its resultCode.
template <class Stream>
asio::awaitable<Reply> answer(MessageReader<Stream>& reader, std::int32_t id, const std::string& what,
                              std::span<const std::uint8_t> expected) {
  auto next = co_await reader.next(what);
  if (std::holds_alternative<ProbeResult>(next)) co_return next;
  auto& message = std::get<ldap::Message>(next);
  if (message.id == 0 && message.op == ldap::kExtendedResponse && message.result) {
    const auto code = message.result->code;
    co_return ProbeResult{code == 0 ? reason::ldap_error : ldap_result_reason(code),
                          "the server disconnected (Notice of Disconnection) instead of the " + what + ": " +
                              describe(*message.result)};
  }
  if (message.id != id)
    co_return ProbeResult{reason::protocol_error, what + ": an answer to message " + std::to_string(message.id) +
                                                      " where " + std::to_string(id) + " was awaited"};
  if (std::find(expected.begin(), expected.end(), message.op) == expected.end())
    co_return ProbeResult{reason::protocol_error, what + ": " + std::string(ldap::operation_name(message.op)) + " (" +
                                                      hex_byte(message.op) + ") instead"};
  co_return next;
}

template <class Stream>
asio::awaitable<std::optional<ProbeResult>> send(Stream& stream, const ldap::Bytes& request, const std::string& what) {
  auto [error, written] = co_await asio::async_write(stream, asio::buffer(request), asio::as_tuple(asio::use_awaitable));
  if (error) co_return ProbeResult{classify_tls_stream_error(error), "sending the " + what + ": " + error.message()};
  co_return std::nullopt;
}

Fact result_code(std::string_view operation, std::uint32_t code) {
  return {kResultCode, kResultCodeHelp, {{"operation", std::string(operation)}}, static_cast<double>(code)};
}

void root_dse_facts(const ldap::Entry& entry, std::vector<Fact>& facts) {
  std::vector<int> versions;
  for (const auto& value : entry.values("supportedLDAPVersion")) {
    const bool number = !value.empty() && value.size() <= 3 &&
                        std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); });
    if (number) versions.push_back(std::stoi(value));
  }
  std::sort(versions.begin(), versions.end());
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  std::string joined;
  for (int version : versions) joined += (joined.empty() ? "" : ",") + std::to_string(version);
  facts.push_back({kRootDseInfo, kRootDseInfoHelp, {{"supported_ldap_versions", joined.empty() ? "none" : joined}}});

  const auto contexts = entry.values("namingContexts");
  facts.push_back({kNamingContexts, kNamingContextsHelp, {}, static_cast<double>(contexts.size())});
  std::vector<std::string> shown;
  shown.reserve(contexts.size());
  for (const auto& context : contexts) shown.push_back(printable_text(context, kMaxLabelValue));
  std::sort(shown.begin(), shown.end());
  shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
  if (shown.size() > kMaxNamingContexts) shown.resize(kMaxNamingContexts);
  for (auto& context : shown) facts.push_back({kNamingContextInfo, kNamingContextInfoHelp, {{"naming_context", std::move(context)}}});
}

ProbeResult with_facts(ProbeResult result, std::vector<Fact> facts) {
  result.facts = std::move(facts);
  return result;
}

// StartTLS (RFC 4511 4.14) as message 1, as phase "starttls".
asio::awaitable<std::optional<ProbeResult>> start_tls(ProbeContext& ctx, tcp_stream& stream, std::vector<Fact>& facts) {
  ctx.begin_phase("starttls");
  MessageReader<tcp_stream> reader(stream);
  const auto request = ldap::encode_starttls_request(1);
  auto sent = co_await send(stream, request, "StartTLS request");
  if (sent) co_return sent;
  auto reply = co_await answer(reader, 1, "StartTLS response", kStartTlsAnswers);
  if (auto* failure = std::get_if<ProbeResult>(&reply)) co_return std::move(*failure);
  const auto& result = *std::get<ldap::Message>(reply).result;
  facts.push_back(result_code("starttls", result.code));
  if (result.code != 0) co_return ProbeResult{reason::tls_error, "StartTLS refused: " + describe(result)};
  // TLS starts right after the response: anything else the server sent first is not LDAP.
  if (reader.buffered() != 0)
    co_return ProbeResult{reason::protocol_error,
                          std::to_string(reader.buffered()) + " bytes after the StartTLS response, before TLS"};
  co_return std::nullopt;
}

}  // namespace

std::string_view ldap_result_reason(std::uint32_t code) {
  switch (code) {
    case 7:   // authMethodNotSupported
    case 8:   // strongerAuthRequired
    case 13:  // confidentialityRequired
    case 48:  // inappropriateAuthentication
    case 49:  // invalidCredentials
    case 50:  // insufficientAccessRights
      return reason::auth_failed;
    case 51:  // busy
    case 52:  // unavailable
    case 53:  // unwillingToPerform
      return reason::unavailable;
    default:
      return reason::ldap_error;
  }
}

namespace {

// Bind (when configured), the RootDSE search, and the Unbind, over a plain or TLS stream;
// message IDs count up from `id`.
template <class Stream>
asio::awaitable<std::optional<ProbeResult>> session(ProbeContext& ctx, const LdapSettings& settings, Stream& stream,
                                                    std::int32_t id, std::vector<Fact>& facts) {
  MessageReader<Stream> reader(stream);
  std::optional<ProbeResult> failure;
  if (!settings.bind_dn.empty()) {
    ctx.begin_phase("bind");
    const std::int32_t bind_id = id++;
    const auto request = ldap::encode_simple_bind_request(bind_id, settings.bind_dn, settings.password);
    failure = co_await send(stream, request, "bind request");
    if (failure) co_return failure;
    auto reply = co_await answer(reader, bind_id, "bind response", kBindAnswers);
    if (auto* refused = std::get_if<ProbeResult>(&reply)) co_return std::move(*refused);
    const auto& result = *std::get<ldap::Message>(reply).result;
    facts.push_back(result_code("bind", result.code));
    if (result.code != 0)
      failure = ProbeResult{ldap_result_reason(result.code),
                            "bind as " + printable_text(settings.bind_dn, kMaxLabelValue) + " refused: " + describe(result)};
  }

  if (!failure) {
    ctx.set_facts_so_far(facts);
    ctx.begin_phase("search");
    const std::int32_t search_id = id++;
    const auto request = ldap::encode_root_dse_search(search_id);
    failure = co_await send(stream, request, "RootDSE search request");
    if (failure) co_return failure;
    std::optional<ldap::Entry> entry;
    std::optional<ldap::Result> done;
    while (!done) {
      auto reply = co_await answer(reader, search_id, "RootDSE search response", kSearchAnswers);
      if (auto* refused = std::get_if<ProbeResult>(&reply)) co_return std::move(*refused);
      auto& message = std::get<ldap::Message>(reply);
      if (message.op == ldap::kSearchResultEntry && !entry) entry = std::move(message.entry);
      if (message.op == ldap::kSearchResultDone) done = std::move(message.result);
    }
    ctx.end_phase();
    facts.push_back(result_code("search", done->code));
    if (entry) root_dse_facts(*entry, facts);
    if (done->code != 0) {
      failure = ProbeResult{ldap_result_reason(done->code), "RootDSE search refused: " + describe(*done)};
    } else if (!entry) {
      failure = ProbeResult{reason::ldap_error, "the RootDSE search succeeded but returned no entry"};
    }
  }

  // The server answered in LDAP: say goodbye (RFC 4511 4.3) rather than just drop the
  // connection. Nothing comes back; a failure to send changes nothing about the run.
  if (!failure || is_ldap_answer(failure->reason)) {
    const auto unbind = ldap::encode_unbind_request(id);
    auto [error, written] = co_await asio::async_write(stream, asio::buffer(unbind), asio::as_tuple(asio::use_awaitable));
    (void)error;
    (void)written;
  }
  co_return failure;
}

// The TLS handshake (phase "tls") on `stream`, then the session inside it.
asio::awaitable<std::optional<ProbeResult>> tls_session(ProbeContext& ctx, const LdapSettings& settings,
                                                        tcp_stream stream, std::int32_t id, std::vector<Fact>& facts) {
  TlsStream tls(std::move(stream), settings.tls_client->context());
  tls.next_layer().expires_at(ctx.deadline());
  TlsHandshake handshake = co_await settings.tls_client->handshake(ctx, tls, ctx.target().host);
  facts.insert(facts.end(), handshake.facts.begin(), handshake.facts.end());
  if (handshake.failure) co_return std::move(handshake.failure);
  ctx.set_facts_so_far(facts);
  auto failure = co_await session(ctx, settings, tls, id, facts);
  co_return failure;
}

}  // namespace

asio::awaitable<ProbeResult> LdapProbe::run(ProbeContext& ctx) const {
  asio::ip::tcp::socket socket(ctx.executor());
  auto refused = co_await resolve_and_connect(ctx, settings_.family, socket);
  if (refused) co_return std::move(*refused);
  tcp_stream stream(std::move(socket));
  stream.expires_at(ctx.deadline());

  std::vector<Fact> facts;
  // Each co_await is a statement of its own: GCC 12 mishandles temporaries of a co_await inside
  // a conditional expression or an argument list (double destruction).
  std::optional<ProbeResult> failure;
  if (!settings_.tls && !settings_.starttls) {
    failure = co_await session(ctx, settings_, stream, 1, facts);
  } else {
    std::int32_t next_id = 1;
    if (settings_.starttls) {
      failure = co_await start_tls(ctx, stream, facts);
      next_id = 2;
    }
    if (!failure) failure = co_await tls_session(ctx, settings_, std::move(stream), next_id, facts);
  }
  if (failure) co_return with_facts(std::move(*failure), std::move(facts));
  co_return ProbeResult{reason::success, {}, std::move(facts)};
}

namespace {
void describe_ldap_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point now, FactWords& words) {
  for (const auto& fact : facts) {
    if (fact.metric == kRootDseInfo) words.summary.push_back("LDAP versions " + std::string(fact.label("supported_ldap_versions")));
    else if (fact.metric == kNamingContexts) words.summary.push_back(std::to_string(static_cast<long long>(fact.value)) + " naming contexts");
    else if (fact.metric == kNamingContextInfo) words.details.emplace_back("naming context", fact.label("naming_context"));
    else if (fact.metric == kResultCode)
      words.details.emplace_back(std::string(fact.label("operation")) + " result code", std::to_string(static_cast<long long>(fact.value)));
  }
  describe_tls_facts(facts, now, words);
}
}  // namespace

const ProbeKind& ldap_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect", "starttls", "tls", "bind", "search"};
  static constexpr std::string_view reasons[] = {reason::protocol_error, reason::tls_error,   reason::cert_invalid,
                                                 reason::auth_failed,    reason::unavailable, reason::ldap_error};
  static const ProbeKind kind{
      .name = "ldap",
      .phases = phases,
      .extra_reasons = reasons,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        LdapSettings s;
        s.family = parse_address_family(options);
        s.tls = options.boolean("tls").value_or(false);
        s.starttls = options.boolean("starttls").value_or(false);
        if (s.tls && s.starttls)
          options.fail("starttls", "StartTLS upgrades a plain connection: it cannot go with tls = true (LDAPS, TLS first)");
        const auto bind_dn = options.string("bind_dn");
        const auto password_file = options.string("password_file");
        if (bind_dn.has_value() != password_file.has_value())
          options.fail(bind_dn ? "bind_dn" : "password_file", "bind_dn and password_file go together");
        if (bind_dn) {
          if (bind_dn->empty())
            options.fail("bind_dn", "must not be empty: leave bind_dn and password_file out for an anonymous search");
          s.bind_dn = *bind_dn;
          // An empty password would make the bind unauthenticated (RFC 4513 5.1.2): secret_file refuses it.
          s.password = *options.secret_file("password_file");
          // Allowed (some directories have no TLS), but never by accident.
          if (!s.tls && !s.starttls)
            options.warn("password_file", "the simple bind sends this password in clear (no tls or starttls): "
                                          "anyone on the path can read it");
        }
        if (s.tls || s.starttls) {
          s.tls_client = TlsClient::from_options(options);
        } else {
          for (auto key : TlsClient::option_keys())
            if (options.get(key)) options.fail(key, "is a TLS option: it needs tls = true or starttls = true");
        }
        return std::make_unique<LdapProbe>(std::move(s));
      },
      .describe = describe_ldap_facts};
  return kind;
}

}  // namespace connectivity

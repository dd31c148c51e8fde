#include "probes/z3950/z3950_probe.h"

#include "probes/ber/ber_stream.h"
#include "probes/config_table.h"
#include "probes/connect.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace connectivity {

namespace {

using boost::beast::tcp_stream;

constexpr std::string_view kInfo = "connectivity_z3950_info";
constexpr std::string_view kInfoHelp =
    "The Z39.50 target's InitializeResponse: implementation id, name and version, highest protocol version, options granted.";
constexpr std::string_view kHits = "connectivity_z3950_search_hits";
constexpr std::string_view kHitsHelp = "Hit count of the check's search (resultCount of the SearchResponse).";

// Every Z39.50 APDU is a context-specific constructed tag ([20] InitializeResponse is 0xb5).
bool starts_like_apdu(std::uint8_t first) { return (first & 0xe0) == 0xa0; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

Fact info_fact(const z3950::InitResponse& init) {
  const std::string version = init.protocol_versions.empty() ? "" : std::to_string(init.protocol_versions.back());
  return {kInfo,
          kInfoHelp,
          {{"implementation_id", init.implementation_id},
           {"implementation_name", init.implementation_name},
           {"implementation_version", init.implementation_version},
           {"options", join(init.options)},
           {"protocol_version", version}}};
}

std::string describe(const z3950::Diagnostic& diagnostic) {
  return "diagnostic " + std::to_string(diagnostic.code) + " (" + diagnostic.message + ")";
}

asio::awaitable<std::optional<ProbeResult>> send(tcp_stream& stream, const z3950::Bytes& apdu, std::string_view what) {
  auto [error, written] = co_await asio::async_write(stream, asio::buffer(apdu), asio::as_tuple(asio::use_awaitable));
  if (error) co_return ProbeResult{classify_network_error(error), "sending " + std::string(what) + ": " + error.message()};
  co_return std::nullopt;
}

// The next APDU, decoded; a failure when none comes or it does not decode.
asio::awaitable<std::variant<z3950::Response, ProbeResult>> receive(ber::MessageReader& reader) {
  auto message = co_await reader.next();
  if (auto* failure = std::get_if<ProbeResult>(&message)) co_return std::move(*failure);
  auto response = z3950::decode_response(std::get<std::vector<std::uint8_t>>(message));
  if (auto* error = std::get_if<z3950::DecodeError>(&response)) co_return ProbeResult{reason::protocol_error, error->what};
  co_return response;
}

ProbeResult unexpected(const z3950::Response& response, std::string_view wanted) {
  if (const auto* close = std::get_if<z3950::Close>(&response))
    return ProbeResult{reason::rejected, "the target answered with Close (" + close->reason_name +
                                  (close->diagnostic_information.empty() ? "" : ": " + close->diagnostic_information) +
                                  ") instead of " + std::string(wanted)};
  return ProbeResult{reason::protocol_error, "the target answered APDU " + std::to_string(std::get<z3950::OtherApdu>(response).which) +
                                      " instead of " + std::string(wanted)};
}

}  // namespace

// GCC 12 at -O2 inlines asio's frame allocation (aligned_new) into run() but not the matching
// aligned_delete, and then warns that the frame's operator delete does not match: a false
// positive, silenced for this function only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<ProbeResult> Z3950Probe::run(ProbeContext& ctx) const {
  asio::ip::tcp::socket socket(ctx.executor());
  if (auto failure = co_await resolve_and_connect(ctx, settings_.family, socket)) co_return *failure;
  tcp_stream stream(std::move(socket));
  stream.expires_at(ctx.deadline());
  ber::MessageReader reader(stream, starts_like_apdu, "Z39.50", "a Z39.50 APDU");

  ctx.begin_phase("init");
  if (auto failure = co_await send(stream, settings_.init_request, "InitializeRequest"))
    co_return std::move(*failure);
  auto answer = co_await receive(reader);
  ctx.end_phase();
  if (auto* failure = std::get_if<ProbeResult>(&answer)) co_return std::move(*failure);
  const auto& response = std::get<z3950::Response>(answer);
  const auto* init = std::get_if<z3950::InitResponse>(&response);
  if (!init) co_return unexpected(response, "an InitializeResponse");
  std::vector<Fact> facts{info_fact(*init)};
  if (!init->accepted)
    co_return ProbeResult{reason::rejected,
                          "the target rejected the Init" + (init->diagnostic ? ": " + describe(*init->diagnostic) : ""),
                          std::move(facts)};

  if (!settings_.search_request.empty()) {
    ctx.set_facts_so_far(facts);
    auto failure = co_await search(ctx, stream, reader, facts);
    if (failure) {
      failure->facts = std::move(facts);
      co_return std::move(*failure);
    }
  }

  // Polite end of the association; the target's own Close is not waited for.
  const z3950::Bytes close = z3950::encode_close();
  auto close_failure = co_await send(stream, close, "Close");  // nothing left to learn from it
  (void)close_failure;
  co_return ProbeResult{reason::success, {}, std::move(facts)};
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The search step: one query in one database, as phase "search"; adds the hit count to `facts`.
asio::awaitable<std::optional<ProbeResult>> Z3950Probe::search(ProbeContext& ctx, tcp_stream& stream,
                                                               ber::MessageReader& reader, std::vector<Fact>& facts) const {
  ctx.begin_phase("search");
  if (auto failure = co_await send(stream, settings_.search_request, "SearchRequest")) co_return failure;
  auto answer = co_await receive(reader);
  ctx.end_phase();
  if (auto* failure = std::get_if<ProbeResult>(&answer)) co_return std::move(*failure);
  const auto& response = std::get<z3950::Response>(answer);
  const auto* found = std::get_if<z3950::SearchResponse>(&response);
  if (!found) co_return unexpected(response, "a SearchResponse");
  facts.push_back({kHits, kHitsHelp, {{"database", settings_.database}}, static_cast<double>(found->hits)});
  const std::string where = "search in " + settings_.database;
  if (!found->succeeded)
    co_return ProbeResult{reason::search_failed,
                          where + " failed" + (found->diagnostic ? ": " + describe(*found->diagnostic) : "")};
  if (found->hits < settings_.min_hits)
    co_return ProbeResult{reason::search_failed, where + " found " + std::to_string(found->hits) +
                                                     " records, fewer than min_hits " + std::to_string(settings_.min_hits)};
  co_return std::nullopt;
}

namespace {

z3950::Credentials read_credentials(ConfigTable& options) {
  z3950::Credentials credentials;
  const auto open = options.string("open_auth");
  const auto user = options.string("user");
  const auto group = options.string("group");
  const auto password = options.secret_file("password_file");
  if (open && (user || group || password))
    options.fail("open_auth", "is one kind of authentication, user/group/password_file the other: choose one");
  if (open) {
    if (open->empty()) options.fail("open_auth", "must not be empty");
    credentials.kind = z3950::Credentials::Kind::open;
    credentials.open = *open;
  } else if (user || password || group) {
    if (!user || !password) options.fail(user ? "user" : "password_file", "user and password_file go together");
    credentials.kind = z3950::Credentials::Kind::id_pass;
    credentials.user = *user;
    credentials.group = group.value_or("");
    credentials.password = *password;
  }
  return credentials;
}

}  // namespace

namespace {
void describe_z3950_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point, FactWords& words) {
  for (const auto& fact : facts) {
    if (fact.metric == kInfo)
      words.summary.push_back(std::string(fact.label("implementation_name")) + " " +
                              std::string(fact.label("implementation_version")) + ", Z39.50 v" +
                              std::string(fact.label("protocol_version")));
    else if (fact.metric == kHits)
      words.summary.push_back(std::to_string(static_cast<long long>(fact.value)) + " hits in " + std::string(fact.label("database")));
  }
}
}  // namespace

const ProbeKind& z3950_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect", "init", "search"};
  static constexpr std::string_view reasons[] = {reason::protocol_error, reason::rejected, reason::search_failed};
  static const ProbeKind kind{
      .name = "z3950",
      .phases = phases,
      .extra_reasons = reasons,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        Z3950Settings s;
        s.family = parse_address_family(options);
        s.init_request = z3950::encode_init_request(read_credentials(options));
        s.database = options.string("database").value_or("");
        const std::string query = options.string("query").value_or("");
        if (query.empty() != s.database.empty())
          options.fail(query.empty() ? "database" : "query",
                       "the search step needs both database and query (PQF, e.g. \"@attr 1=7 9780262033848\")");
        if (!query.empty()) {
          std::string error;
          auto request = z3950::encode_search_request(s.database, query, &error);
          if (!request) options.fail("query", "is not a PQF query: " + error);
          s.search_request = std::move(*request);
        }
        if (const toml::node* node = options.get("min_hits")) {
          if (!node->is_integer() || *node->value<std::int64_t>() < 0) options.fail("min_hits", "must be an integer, 0 or more");
          if (query.empty()) options.fail("min_hits", "only applies with a search (database and query)");
          s.min_hits = *node->value<std::int64_t>();
        }
        return std::make_unique<Z3950Probe>(std::move(s));
      },
      .describe = describe_z3950_facts};
  return kind;
}

}  // namespace connectivity

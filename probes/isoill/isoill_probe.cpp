#include "probes/isoill/isoill_probe.h"

#include "probes/ber/ber_stream.h"
#include "probes/config_table.h"
#include "probes/connect.h"
#include "probes/isoill/ill_codec.h"
#include "probes/utc_time.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <ctime>

namespace connectivity {

namespace {

constexpr std::string_view kReply = "connectivity_isoill_reply_info";
constexpr std::string_view kReplyHelp =
    "The ILL APDU the responder sent back to the probe's Status-Query (status_query = true), and what it reported.";

// Every ILL-APDU alternative is an [APPLICATION n] constructed tag (Status-or-Error-Report is 0x73).
bool starts_like_ill_apdu(std::uint8_t first) { return (first & 0xe0) == 0x60; }

// ISO 10161 dates and times: YYYYMMDD and HHMMSS, in UTC here.
std::pair<std::string, std::string> service_date_time() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  const std::tm utc = utc_calendar(now);
  char date[16];
  char time[16];
  std::strftime(date, sizeof date, "%Y%m%d", &utc);
  std::strftime(time, sizeof time, "%H%M%S", &utc);
  return {date, time};
}

}  // namespace

asio::awaitable<ProbeResult> IsoIllProbe::run(ProbeContext& ctx) const {
  asio::ip::tcp::socket socket(ctx.executor());
  if (auto failure = co_await resolve_and_connect(ctx, settings_.family, socket)) co_return *failure;
  if (!settings_.status_query) co_return ProbeResult{reason::success};

  boost::beast::tcp_stream stream(std::move(socket));
  stream.expires_at(ctx.deadline());
  ctx.begin_phase("status_query");
  const auto [date, time] = service_date_time();
  const ill::Bytes query = ill::encode_status_query(date, time);
  auto [write_error, written] = co_await asio::async_write(stream, asio::buffer(query), asio::as_tuple(asio::use_awaitable));
  if (write_error)
    co_return ProbeResult{classify_network_error(write_error), "sending the Status-Query: " + write_error.message()};
  ber::MessageReader reader(stream, starts_like_ill_apdu, "ISO ILL", "an ISO ILL APDU");
  auto message = co_await reader.next();
  ctx.end_phase();
  if (auto* failure = std::get_if<ProbeResult>(&message)) co_return std::move(*failure);
  auto decoded = ill::decode_reply(std::get<std::vector<std::uint8_t>>(message));
  if (auto* error = std::get_if<ill::DecodeError>(&decoded)) co_return ProbeResult{reason::protocol_error, error->what};
  const auto& reply = std::get<ill::Reply>(decoded);
  std::vector<Fact> facts{{kReply, kReplyHelp, {{"apdu", reply.apdu}, {"report", reply.report}}}};
  co_return ProbeResult{reason::success, {}, std::move(facts)};
}

namespace {
void describe_isoill_facts(std::span<const Fact> facts, std::chrono::system_clock::time_point, FactWords& words) {
  for (const auto& fact : facts)
    if (fact.metric == kReply) words.summary.push_back(std::string(fact.label("apdu")) + ": " + std::string(fact.label("report")));
}
}  // namespace

const ProbeKind& isoill_probe_kind() {
  static constexpr std::string_view phases[] = {"resolve", "connect", "status_query"};
  static constexpr std::string_view reasons[] = {reason::protocol_error};
  static const ProbeKind kind{
      .name = "isoill",
      .phases = phases,
      .extra_reasons = reasons,
      .make = [](ConfigTable& options) -> std::unique_ptr<Probe> {
        IsoIllSettings s;
        s.family = parse_address_family(options);
        s.status_query = options.boolean("status_query").value_or(false);
        return std::make_unique<IsoIllProbe>(s);
      },
      .describe = describe_isoill_facts};
  return kind;
}

}  // namespace connectivity

// ISO 10161 ILL APDUs for the isoill probe, through libyaz's ODR codecs: the one request the
// probe may send (a Status-Query about a transaction no system ever issued) and a decoder
// that says which APDU came back.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace connectivity::ill {

using Bytes = std::vector<std::uint8_t>;

// Everything in the made-up transaction id, so a responder's log says who asked and why.
inline constexpr std::string_view kRequesterSymbol = "CONNECTIVITY-AGENT";
inline constexpr std::string_view kTransactionGroup = "connectivity-agent-probe";
inline constexpr std::string_view kTransactionQualifier = "no-such-transaction";
inline constexpr std::string_view kNote = "connectivity-agent reachability probe: status of a transaction that does not exist";

// Status-Query [APPLICATION 18], protocol version 2, with the transaction id above and
// `date`/`time` (YYYYMMDD, HHMMSS) as its service date-time.
Bytes encode_status_query(const std::string& date, const std::string& time);

struct Reply {
  int which = 0;          // yaz's ILL_APDU_* number
  std::string apdu;       // "Status-or-Error-Report", "ILL-Request", ...
  std::string report;     // for a Status-or-Error-Report: "unknown-transaction-id", "status-report", ...
};
struct DecodeError {
  std::string what;
};
using Decoded = std::variant<Reply, DecodeError>;

// Decodes one complete ILL APDU (framed by ber::frame_message).
Decoded decode_reply(std::span<const std::uint8_t> apdu);

}  // namespace connectivity::ill

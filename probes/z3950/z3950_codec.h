// Z39.50 (ISO 23950) APDUs the probe sends and reads, encoded and decoded by libyaz's ODR
// codecs (the field's own toolkit); this layer turns them into plain C++ values so the probe
// never holds yaz memory, and so a fuzz target can reach the decoder without a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace connectivity::z3950 {

using Bytes = std::vector<std::uint8_t>;

struct Credentials {
  enum class Kind { none, open, id_pass } kind = Kind::none;
  std::string open;  // Kind::open: the single string some targets take
  std::string group, user, password;  // Kind::id_pass
};

// InitializeRequest: protocol versions 1-3, options search/present, 1 MiB message sizes,
// and our implementation id/name/version so target logs say who called.
Bytes encode_init_request(const Credentials& credentials);
// SearchRequest for `query` (PQF, as yaz-client takes it) in `database`, asking for no records.
// Returns nullopt with `error` set when the PQF does not parse.
std::optional<Bytes> encode_search_request(const std::string& database, const std::string& pqf, std::string* error = nullptr);
// Close with closeReason finished (0).
Bytes encode_close();

struct Diagnostic {
  int code = 0;         // Bib-1 condition
  std::string message;  // yaz's Bib-1 text, then the target's addinfo
};

struct InitResponse {
  bool accepted = false;
  std::string implementation_id, implementation_name, implementation_version;
  std::vector<int> protocol_versions;  // e.g. {1, 2, 3}
  std::vector<std::string> options;    // as yaz names them: "search", "present", ...
  std::optional<Diagnostic> diagnostic;  // why it was rejected, when the target says
};
struct SearchResponse {
  bool succeeded = false;  // searchStatus
  std::int64_t hits = 0;   // resultCount
  std::optional<Diagnostic> diagnostic;
};
struct Close {
  int reason = 0;  // closeReason
  std::string reason_name;  // "finished", "systemProblem", ...
  std::string diagnostic_information;
};
struct OtherApdu {
  int which = 0;  // yaz's Z_APDU_* number of an APDU we did not ask for
};
struct DecodeError {
  std::string what;
};
using Response = std::variant<InitResponse, SearchResponse, Close, OtherApdu, DecodeError>;

// Decodes one complete APDU (framed by ber::frame_message), after ber::refuse_for_libyaz has
// let it through (a constructed string would crash libyaz 5.34). Strings taken from the peer are
// capped at 256 bytes with non-printable bytes escaped, as they end up in labels and logs.
Response decode_response(std::span<const std::uint8_t> apdu);

}  // namespace connectivity::z3950

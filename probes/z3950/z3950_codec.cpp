#include "probes/z3950/z3950_codec.h"

#include "probes/ber/ber_frame.h"
#include "probes/peer_text.h"

#include <yaz/diagbib1.h>
#include <yaz/odr.h>
#include <yaz/pquery.h>
#include <yaz/proto.h>
#include <yaz/z-core.h>

#include <climits>
#include <memory>

namespace connectivity::z3950 {

namespace {

constexpr int kMessageSize = 1 << 20;

struct OdrDeleter {
  void operator()(odr* stream) const { odr_destroy(stream); }
};
using OdrStream = std::unique_ptr<odr, OdrDeleter>;

OdrStream make_odr(int direction) { return OdrStream(odr_createmem(direction)); }

Bytes finish(odr* stream, Z_APDU* apdu) {
  if (!z_APDU(stream, &apdu, 0, nullptr)) return {};  // only on our own bug: tests check every APDU
  int size = 0;
  const char* buffer = odr_getbuf(stream, &size, nullptr);
  return Bytes(buffer, buffer + size);
}

std::string peer_text(const char* text) { return printable_text(text ? text : ""); }

int clamp_int(const Odr_int* value) {
  if (!value) return 0;
  if (*value > INT_MAX) return INT_MAX;
  if (*value < INT_MIN) return INT_MIN;
  return static_cast<int>(*value);
}

Diagnostic diagnostic_of(const Z_DefaultDiagFormat& format) {
  Diagnostic d;
  d.code = clamp_int(format.condition);
  const char* bib1 = diagbib1_str(d.code);
  d.message = peer_text(bib1 ? bib1 : "unknown diagnostic");
  const char* addinfo = format.which == Z_DefaultDiagFormat_v2Addinfo ? format.u.v2Addinfo : format.u.v3Addinfo;
  if (addinfo && *addinfo) d.message += ": " + peer_text(addinfo);
  return d;
}

std::optional<Diagnostic> diagnostic_of(const Z_Records* records) {
  if (!records) return std::nullopt;
  if (records->which == Z_Records_NSD && records->u.nonSurrogateDiagnostic)
    return diagnostic_of(*records->u.nonSurrogateDiagnostic);
  if (records->which == Z_Records_multipleNSD && records->u.multipleNonSurDiagnostics) {
    const Z_DiagRecs& recs = *records->u.multipleNonSurDiagnostics;
    if (recs.num_diagRecs > 0 && recs.diagRecs[0] && recs.diagRecs[0]->which == Z_DiagRec_defaultFormat &&
        recs.diagRecs[0]->u.defaultFormat)
      return diagnostic_of(*recs.diagRecs[0]->u.defaultFormat);
  }
  return std::nullopt;
}

std::string close_reason_name(int reason) {
  static constexpr const char* names[] = {"finished", "shutdown", "systemProblem", "costLimit", "resources",
                                          "securityViolation", "protocolError", "lackOfActivity", "peerAbort",
                                          "unspecified"};
  if (reason >= 0 && reason < static_cast<int>(std::size(names))) return names[reason];
  return "reason " + std::to_string(reason);
}

InitResponse init_response_of(Z_InitResponse& response) {
  InitResponse out;
  out.accepted = response.result && *response.result;
  out.implementation_id = peer_text(response.implementationId);
  out.implementation_name = peer_text(response.implementationName);
  out.implementation_version = peer_text(response.implementationVersion);
  if (response.protocolVersion)
    for (int bit = Z_ProtocolVersion_1; bit <= Z_ProtocolVersion_3; ++bit)
      if (ODR_MASK_GET(response.protocolVersion, bit)) out.protocol_versions.push_back(bit + 1);
  if (response.options)
    yaz_init_opt_decode(
        response.options,
        [](const char* name, void* into) { static_cast<std::vector<std::string>*>(into)->push_back(name); },
        &out.options);
  if (!out.accepted)
    if (const Z_DefaultDiagFormat* diag = yaz_decode_init_diag(0, &response)) out.diagnostic = diagnostic_of(*diag);
  return out;
}

}  // namespace

Bytes encode_init_request(const Credentials& credentials) {
  OdrStream stream = make_odr(ODR_ENCODE);
  Z_APDU* apdu = zget_APDU(stream.get(), Z_APDU_initRequest);
  Z_InitRequest* init = apdu->u.initRequest;
  ODR_MASK_ZERO(init->protocolVersion);
  for (int version = Z_ProtocolVersion_1; version <= Z_ProtocolVersion_3; ++version)
    ODR_MASK_SET(init->protocolVersion, version);
  // Only what a probe may use.
  ODR_MASK_ZERO(init->options);
  ODR_MASK_SET(init->options, Z_Options_search);
  ODR_MASK_SET(init->options, Z_Options_present);
  *init->preferredMessageSize = kMessageSize;
  *init->maximumRecordSize = kMessageSize;
  init->implementationId = odr_strdup(stream.get(), "connectivity-agent");
  init->implementationName = odr_strdup(stream.get(), "connectivity-agent Z39.50 probe");
  init->implementationVersion = odr_strdup(stream.get(), "1");
  if (credentials.kind != Credentials::Kind::none) {
    auto* auth = static_cast<Z_IdAuthentication*>(odr_malloc(stream.get(), sizeof(Z_IdAuthentication)));
    if (credentials.kind == Credentials::Kind::open) {
      auth->which = Z_IdAuthentication_open;
      auth->u.open = odr_strdup(stream.get(), credentials.open.c_str());
    } else {
      auth->which = Z_IdAuthentication_idPass;
      auth->u.idPass = static_cast<Z_IdPass*>(odr_malloc(stream.get(), sizeof(Z_IdPass)));
      auth->u.idPass->groupId = credentials.group.empty() ? nullptr : odr_strdup(stream.get(), credentials.group.c_str());
      auth->u.idPass->userId = odr_strdup(stream.get(), credentials.user.c_str());
      auth->u.idPass->password = odr_strdup(stream.get(), credentials.password.c_str());
    }
    init->idAuthentication = auth;
  }
  return finish(stream.get(), apdu);
}

std::optional<Bytes> encode_search_request(const std::string& database, const std::string& pqf, std::string* error) {
  OdrStream stream = make_odr(ODR_ENCODE);
  std::unique_ptr<yaz_pqf_parser, void (*)(YAZ_PQF_Parser)> parser(yaz_pqf_create(), yaz_pqf_destroy);
  Z_RPNQuery* rpn = yaz_pqf_parse(parser.get(), stream.get(), pqf.c_str());
  if (!rpn) {
    const char* message = nullptr;
    std::size_t offset = 0;
    yaz_pqf_error(parser.get(), &message, &offset);
    if (error) *error = std::string(message ? message : "bad query") + " at character " + std::to_string(offset);
    return std::nullopt;
  }
  Z_APDU* apdu = zget_APDU(stream.get(), Z_APDU_searchRequest);
  Z_SearchRequest* search = apdu->u.searchRequest;
  // Piggy-backed records off: the probe wants the count, never the data.
  *search->smallSetUpperBound = 0;
  *search->largeSetLowerBound = 1;
  *search->mediumSetPresentNumber = 0;
  search->num_databaseNames = 1;
  search->databaseNames = static_cast<char**>(odr_malloc(stream.get(), sizeof(char*)));
  search->databaseNames[0] = odr_strdup(stream.get(), database.c_str());
  auto* query = static_cast<Z_Query*>(odr_malloc(stream.get(), sizeof(Z_Query)));
  query->which = Z_Query_type_1;
  query->u.type_1 = rpn;
  search->query = query;
  return finish(stream.get(), apdu);
}

Bytes encode_close() {
  OdrStream stream = make_odr(ODR_ENCODE);
  Z_APDU* apdu = zget_APDU(stream.get(), Z_APDU_close);
  *apdu->u.close->closeReason = Z_Close_finished;
  return finish(stream.get(), apdu);
}

Response decode_response(std::span<const std::uint8_t> bytes) {
  if (auto refused = ber::refuse_for_libyaz(bytes)) return DecodeError{"not a Z39.50 APDU we can decode: " + *refused};
  OdrStream stream = make_odr(ODR_DECODE);
  // odr_setbuf takes char*, but a decoding stream that may not grow only reads it.
  odr_setbuf(stream.get(), const_cast<char*>(reinterpret_cast<const char*>(bytes.data())), static_cast<int>(bytes.size()), 0);
  Z_APDU* apdu = nullptr;
  if (!z_APDU(stream.get(), &apdu, 0, nullptr) || !apdu) {
    const int error = odr_geterror(stream.get());
    return DecodeError{std::string("not a Z39.50 APDU (") + odr_errmsg(error) + " at byte " +
                       std::to_string(odr_offset(stream.get())) + ")"};
  }
  switch (apdu->which) {
    case Z_APDU_initResponse:
      return init_response_of(*apdu->u.initResponse);
    case Z_APDU_searchResponse: {
      const Z_SearchResponse& search = *apdu->u.searchResponse;
      SearchResponse out;
      out.succeeded = search.searchStatus && *search.searchStatus;
      out.hits = search.resultCount ? static_cast<std::int64_t>(*search.resultCount) : 0;
      out.diagnostic = diagnostic_of(search.records);
      return out;
    }
    case Z_APDU_close: {
      const Z_Close& close = *apdu->u.close;
      Close out;
      out.reason = clamp_int(close.closeReason);
      out.reason_name = close_reason_name(out.reason);
      out.diagnostic_information = peer_text(close.diagnosticInformation);
      return out;
    }
    default:
      return OtherApdu{apdu->which};
  }
}

}  // namespace connectivity::z3950

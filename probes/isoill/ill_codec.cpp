#include "probes/isoill/ill_codec.h"

#include "probes/ber/ber_frame.h"

#include <yaz/ill-core.h>
#include <yaz/odr.h>

#include <climits>
#include <cstring>
#include <memory>

namespace connectivity::ill {

namespace {

struct OdrDeleter {
  void operator()(odr* stream) const { odr_destroy(stream); }
};
using OdrStream = std::unique_ptr<odr, OdrDeleter>;

template <class T>
T* make(odr* stream) {
  auto* value = static_cast<T*>(odr_malloc(stream, sizeof(T)));
  std::memset(static_cast<void*>(value), 0, sizeof(T));
  return value;
}

ILL_String* general_string(odr* stream, std::string_view text) {
  auto* out = make<ILL_String>(stream);
  out->which = ILL_String_GeneralString;
  out->u.GeneralString = odr_strdupn(stream, text.data(), text.size());
  return out;
}

// ILL-APDU alternatives in yaz's numbering (ILL_APDU_ILL_Request = 1 ...), ISO 10161 names.
std::string apdu_name(int which) {
  static constexpr const char* names[] = {
      "ILL-Request", "Forward-Notification", "Shipped",  "ILL-Answer", "Conditional-Reply", "Cancel",
      "Cancel-Reply", "Received",           "Recall",   "Returned",   "Checked-In",        "Overdue",
      "Renew",       "Renew-Answer",        "Lost",     "Damaged",    "Message",           "Status-Query",
      "Status-or-Error-Report", "Expired"};
  if (which >= 1 && which <= static_cast<int>(std::size(names))) return names[which - 1];
  return "APDU " + std::to_string(which);
}

std::string report_of(const ILL_Status_Or_Error_Report& report) {
  if (report.error_report && report.error_report->provider_error_report) {
    const ILL_Provider_Error_Report& provider = *report.error_report->provider_error_report;
    if (provider.which == ILL_Provider_Error_Report_transaction_id_problem && provider.u.transaction_id_problem) {
      switch (*provider.u.transaction_id_problem) {
        case ILL_Transaction_Id_Problem_duplicate_transaction_id: return "duplicate-transaction-id";
        case ILL_Transaction_Id_Problem_invalid_transaction_id: return "invalid-transaction-id";
        case ILL_Transaction_Id_Problem_unknown_transaction_id: return "unknown-transaction-id";
        default: return "transaction-id-problem";
      }
    }
    if (provider.which == ILL_Provider_Error_Report_general_problem) return "general-problem";
    if (provider.which == ILL_Provider_Error_Report_state_transition_prohibited) return "state-transition-prohibited";
  }
  if (report.error_report) return "error-report";
  if (report.status_report) return "status-report";
  if (report.reason_no_report) return "no-report";
  return "empty";
}

}  // namespace

Bytes encode_status_query(const std::string& date, const std::string& time) {
  OdrStream stream(odr_createmem(ODR_ENCODE));
  odr* o = stream.get();
  auto* query = make<ILL_Status_Query>(o);
  query->protocol_version_num = odr_intdup(o, ILL_Status_Query_version_2);

  auto* requester = make<ILL_System_Id>(o);
  requester->person_or_institution_symbol = make<ILL_Person_Or_Institution_Symbol>(o);
  requester->person_or_institution_symbol->which = ILL_Person_Or_Institution_Symbol_institution_symbol;
  requester->person_or_institution_symbol->u.institution_symbol = general_string(o, kRequesterSymbol);

  query->transaction_id = make<ILL_Transaction_Id>(o);
  query->transaction_id->initial_requester_id = requester;
  query->transaction_id->transaction_group_qualifier = general_string(o, kTransactionGroup);
  query->transaction_id->transaction_qualifier = general_string(o, kTransactionQualifier);

  query->service_date_time = make<ILL_Service_Date_Time>(o);
  query->service_date_time->date_time_of_this_service = make<ILL_Service_Date_this>(o);
  query->service_date_time->date_time_of_this_service->date = odr_strdup(o, date.c_str());
  query->service_date_time->date_time_of_this_service->time = odr_strdup(o, time.c_str());
  query->requester_id = requester;
  query->note = general_string(o, kNote);

  auto* apdu = make<ILL_APDU>(o);
  apdu->which = ILL_APDU_Status_Query;
  apdu->u.Status_Query = query;
  if (!ill_APDU(o, &apdu, 0, nullptr)) return {};  // only on our own bug: a test encodes it
  int size = 0;
  const char* buffer = odr_getbuf(o, &size, nullptr);
  return Bytes(buffer, buffer + size);
}

Decoded decode_reply(std::span<const std::uint8_t> bytes) {
  if (auto refused = ber::refuse_for_libyaz(bytes)) return DecodeError{"not an ISO ILL APDU we can decode: " + *refused};
  OdrStream stream(odr_createmem(ODR_DECODE));
  // odr_setbuf takes char*, but a decoding stream that may not grow only reads it.
  odr_setbuf(stream.get(), const_cast<char*>(reinterpret_cast<const char*>(bytes.data())), static_cast<int>(bytes.size()), 0);
  ILL_APDU* apdu = nullptr;
  if (!ill_APDU(stream.get(), &apdu, 0, nullptr) || !apdu)
    return DecodeError{std::string("not an ISO ILL APDU (") + odr_errmsg(odr_geterror(stream.get())) + " at byte " +
                       std::to_string(odr_offset(stream.get())) + ")"};
  Reply reply{apdu->which, apdu_name(apdu->which), {}};
  if (apdu->which == ILL_APDU_Status_Or_Error_Report && apdu->u.Status_Or_Error_Report)
    reply.report = report_of(*apdu->u.Status_Or_Error_Report);
  return reply;
}

}  // namespace connectivity::ill

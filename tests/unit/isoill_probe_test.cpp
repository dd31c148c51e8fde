// The ISO ILL probe: the Status-Query it may send, checked by decoding it with libyaz's ILL
// codec, and the probe against loopback peers: a listener (connect only), a responder that
// answers with a Status-or-Error-Report "unknown transaction id" encoded by libyaz as an ILL
// system would, and peers that answer garbage, another protocol, or nothing.
#include "probes/isoill/ill_codec.h"
#include "probes/isoill/isoill_probe.h"
#include "tests/support/loopback.h"
#include "tests/support/run_once.h"

#include <gtest/gtest.h>

#include <yaz/ill-core.h>
#include <yaz/odr.h>

#include <cstring>
#include <memory>

namespace connectivity {
namespace {

using testing::fact_label;
using testing::make_check;
using testing::phase_seconds;
using testing::run_once;

struct OdrDeleter {
  void operator()(odr* stream) const { odr_destroy(stream); }
};

ILL_String* text(odr* o, const char* value) {
  auto* s = static_cast<ILL_String*>(odr_malloc(o, sizeof(ILL_String)));
  s->which = ILL_String_GeneralString;
  s->u.GeneralString = odr_strdup(o, value);
  return s;
}

// What an ILL responder answers a Status-Query about a transaction it does not know
// (ISO 10161-1: Status-or-Error-Report with a provider error, transaction-id-problem
// unknown-transaction-id), encoded by libyaz.
std::string unknown_transaction_report() {
  std::unique_ptr<odr, OdrDeleter> o(odr_createmem(ODR_ENCODE));
  auto* report = static_cast<ILL_Status_Or_Error_Report*>(odr_malloc(o.get(), sizeof(ILL_Status_Or_Error_Report)));
  std::memset(static_cast<void*>(report), 0, sizeof *report);
  report->protocol_version_num = odr_intdup(o.get(), 2);
  report->transaction_id = static_cast<ILL_Transaction_Id*>(odr_malloc(o.get(), sizeof(ILL_Transaction_Id)));
  std::memset(static_cast<void*>(report->transaction_id), 0, sizeof(ILL_Transaction_Id));
  report->transaction_id->transaction_group_qualifier = text(o.get(), "connectivity-agent-probe");
  report->transaction_id->transaction_qualifier = text(o.get(), "no-such-transaction");
  report->service_date_time = static_cast<ILL_Service_Date_Time*>(odr_malloc(o.get(), sizeof(ILL_Service_Date_Time)));
  report->service_date_time->date_time_of_original_service = nullptr;
  report->service_date_time->date_time_of_this_service =
      static_cast<ILL_Service_Date_this*>(odr_malloc(o.get(), sizeof(ILL_Service_Date_this)));
  report->service_date_time->date_time_of_this_service->date = odr_strdup(o.get(), "20261123");
  report->service_date_time->date_time_of_this_service->time = nullptr;
  auto* error = static_cast<ILL_Error_Report*>(odr_malloc(o.get(), sizeof(ILL_Error_Report)));
  error->correlation_information = text(o.get(), "status query");
  error->report_source = odr_intdup(o.get(), ILL_Report_Source_provider);
  error->user_error_report = nullptr;
  error->provider_error_report = static_cast<ILL_Provider_Error_Report*>(odr_malloc(o.get(), sizeof(ILL_Provider_Error_Report)));
  error->provider_error_report->which = ILL_Provider_Error_Report_transaction_id_problem;
  error->provider_error_report->u.transaction_id_problem = odr_intdup(o.get(), ILL_Transaction_Id_Problem_unknown_transaction_id);
  report->error_report = error;
  auto* apdu = static_cast<ILL_APDU*>(odr_malloc(o.get(), sizeof(ILL_APDU)));
  apdu->which = ILL_APDU_Status_Or_Error_Report;
  apdu->u.Status_Or_Error_Report = report;
  EXPECT_TRUE(ill_APDU(o.get(), &apdu, 0, nullptr));
  int size = 0;
  const char* buffer = odr_getbuf(o.get(), &size, nullptr);
  return std::string(buffer, static_cast<std::size_t>(size));
}

RunRecord probe(std::uint16_t port, const std::string& options = "", const std::string& timeout = "2s") {
  return run_once(make_check("isoill", "127.0.0.1:" + std::to_string(port), options, timeout));
}

TEST(IsoIllCodec, TheStatusQueryIsAStatusQueryAboutNoRealTransaction) {
  const ill::Bytes query = ill::encode_status_query("20261123", "120000");
  ASSERT_FALSE(query.empty());
  EXPECT_EQ(query[0], 0x72) << "[APPLICATION 18] Status-Query, never 0x61 ILL-Request";
  // Decoded independently by libyaz: every field where the probe put it.
  std::unique_ptr<odr, OdrDeleter> o(odr_createmem(ODR_DECODE));
  odr_setbuf(o.get(), reinterpret_cast<char*>(const_cast<std::uint8_t*>(query.data())), static_cast<int>(query.size()), 0);
  ILL_APDU* apdu = nullptr;
  ASSERT_TRUE(ill_APDU(o.get(), &apdu, 0, nullptr));
  ASSERT_EQ(apdu->which, ILL_APDU_Status_Query);
  const ILL_Status_Query& q = *apdu->u.Status_Query;
  EXPECT_EQ(*q.protocol_version_num, 2);
  EXPECT_STREQ(q.transaction_id->transaction_group_qualifier->u.GeneralString, "connectivity-agent-probe");
  EXPECT_STREQ(q.transaction_id->transaction_qualifier->u.GeneralString, "no-such-transaction");
  EXPECT_STREQ(q.transaction_id->initial_requester_id->person_or_institution_symbol->u.institution_symbol->u.GeneralString,
               "CONNECTIVITY-AGENT");
  EXPECT_STREQ(q.service_date_time->date_time_of_this_service->date, "20261123");
  EXPECT_STREQ(q.service_date_time->date_time_of_this_service->time, "120000");
  EXPECT_EQ(q.responder_id, nullptr);
  EXPECT_EQ(q.num_status_query_extensions, 0);
}

TEST(IsoIllCodec, DecodesTheReport) {
  const std::string report = unknown_transaction_report();
  auto decoded = ill::decode_reply(std::span(reinterpret_cast<const std::uint8_t*>(report.data()), report.size()));
  const auto* reply = std::get_if<ill::Reply>(&decoded);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->apdu, "Status-or-Error-Report");
  EXPECT_EQ(reply->report, "unknown-transaction-id");
  const ill::Bytes garbage = {0x73, 0x03, 0x01, 0x01, 0x01};
  EXPECT_TRUE(std::holds_alternative<ill::DecodeError>(ill::decode_reply(garbage)));
}

TEST(IsoIllProbe, ConnectOnlyByDefault) {
  testing::LoopbackListener listener;
  const RunRecord run = probe(listener.port());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_FALSE(phase_seconds(run, "status_query"));
  EXPECT_TRUE(run.facts.empty());
  testing::RefusedPort closed;
  EXPECT_EQ(probe(closed.port()).reason, reason::refused);
}

TEST(IsoIllProbe, StatusQueryDrawsAnUnknownTransactionReport) {
  testing::ScriptedPeer responder(unknown_transaction_report());
  const RunRecord run = probe(responder.port(), "status_query = true");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_label(run, "connectivity_isoill_reply_info", "apdu"), "Status-or-Error-Report");
  EXPECT_EQ(fact_label(run, "connectivity_isoill_reply_info", "report"), "unknown-transaction-id");
  EXPECT_TRUE(phase_seconds(run, "status_query"));
}

TEST(IsoIllProbe, WhatIsNotIllIsAProtocolError) {
  testing::ScriptedPeer http("HTTP/1.1 400 Bad Request\r\n\r\n");
  RunRecord run = probe(http.port(), "status_query = true");
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail, "the reply starts with byte 0x48, which no ISO ILL APDU does (\"HTTP/1.1 400 Bad Request\": not ISO ILL)");

  testing::ScriptedPeer z3950(std::string("\xb5\x03\x8c\x01\x01", 5));  // a Z39.50 target on the ILL port
  run = probe(z3950.port(), "status_query = true");
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail.find("the reply starts with byte 0xb5, which no ISO ILL APDU does"), 0u) << run.detail;

  testing::ScriptedPeer undecodable(std::string("\x73\x03\x01\x01\x01", 5));
  run = probe(undecodable.port(), "status_query = true");
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail.find("not an ISO ILL APDU ("), 0u) << run.detail;

  testing::ScriptedPeer closes("", /*end_after_reply=*/true);
  run = probe(closes.port(), "status_query = true");
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail, "connection closed without an ISO ILL APDU");
}

TEST(IsoIllProbe, SilenceTimesOutInTheStatusQuery) {
  testing::ScriptedPeer silent("");
  const RunRecord run = probe(silent.port(), "status_query = true", "1s");
  EXPECT_EQ(run.reason, reason::timeout);
  EXPECT_TRUE(phase_seconds(run, "status_query"));
}

TEST(IsoIllConfig, ErrorsPointAtTheKey) {
  EXPECT_NE(testing::config_error("isoill", "h:1611", "status_query = \"yes\"").find("test.toml:8:16: check \"t\": key \"status_query\": must be true or false"),
            std::string::npos)
      << testing::config_error("isoill", "h:1611", "status_query = \"yes\"");
  EXPECT_NE(testing::config_error("isoill", "h:1611", "status = true").find("unknown key \"status\""), std::string::npos);
}

}  // namespace
}  // namespace connectivity

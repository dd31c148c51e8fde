// The TDS probe: its PRELOGIN codec against byte layouts from MS-TDS 2.2.6.5 and MS-SQLR 2.2.5,
// and the probe against a loopback stand-in for SQL Server (Debian has none) that replays
// server answers, completes the TLS handshakes of TDS 7.x and 8.0, and plays the Browser;
// a real nginx stands in for "not SQL Server on 1433". The client's bytes are cross-checked
// with tshark's TDS dissector when it is installed.
#include "probes/tds/browser.h"
#include "probes/tds/prelogin.h"
#include "probes/tds/tds_probe.h"
#include "tests/support/decoded.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"
#include "tests/support/tds_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <fstream>
#include <sstream>

namespace connectivity {
namespace {

using testing::Bytes;
using testing::BrowserTestResponder;
using testing::PreloginAnswer;
using testing::TdsTestServer;
using testing::TdsTls;
using testing::TestPki;
using testing::decoded;
using testing::error_of;
using testing::fact_label;
using testing::fact_value;
using testing::make_check;
using testing::phase_seconds;
using testing::run_once;
using testing::tds_packet;

constexpr std::string_view kInfo = "connectivity_tds_server_info";
constexpr std::uint8_t kReplyOnly[] = {tds::kReplyPacket};

// ---- The codec, against the spec's layouts ----------------------------------------------

TEST(TdsPrelogin, RequestIsTheSpecsLayout) {
  // MS-TDS 2.2.6.5 with VERSION, ENCRYPTION, INSTOPT, THREADID, MARS; header 12 01 00 2F.
  const Bytes expected = {0x12, 0x01, 0x00, 0x2f, 0x00, 0x00, 0x01, 0x00,
                          0x00, 0x00, 0x1a, 0x00, 0x06, 0x01, 0x00, 0x20, 0x00, 0x01, 0x02, 0x00, 0x21, 0x00, 0x01,
                          0x03, 0x00, 0x22, 0x00, 0x04, 0x04, 0x00, 0x26, 0x00, 0x01, 0xff,
                          0, 0, 0, 0, 0, 0,  // VERSION 0.0.0: we are no driver
                          0x00,              // ENCRYPTION OFF
                          0x00,              // INSTOPT: no instance
                          0, 0, 0, 0,        // THREADID
                          0x00};             // MARS off
  EXPECT_EQ(tds::encode_prelogin({}), expected);
}

TEST(TdsPrelogin, RequestCarriesTheInstanceNulTerminated) {
  const Bytes request = tds::encode_prelogin({"ILLIAD"});
  ASSERT_EQ(request.size(), 47u + 6u);
  EXPECT_EQ(request[3], 53);                                                  // header length
  EXPECT_EQ(Bytes(request.begin() + 18, request.begin() + 23), (Bytes{0x02, 0, 33, 0, 7}));  // INSTOPT entry
  EXPECT_EQ(std::string(request.begin() + 8 + 33, request.begin() + 8 + 40), std::string("ILLIAD\0", 7));
  EXPECT_EQ(Bytes(request.begin() + 23, request.begin() + 28), (Bytes{0x03, 0, 40, 0, 4}));  // THREADID moved on
}

TEST(TdsPrelogin, DecodesAServerAnswer) {
  const PreloginAnswer answer{.major = 15, .minor = 0, .build = 4153, .encryption = 0x03, .instance = 0x00, .mars = 0x01};
  const auto reply = decoded(tds::decode_prelogin_reply(answer.payload()));
  EXPECT_EQ(reply.version.text(), "15.0.4153");
  EXPECT_EQ(tds::product_name(reply.version), "SQL Server 2019");
  EXPECT_EQ(tds::encryption_name(reply.encryption), "required");
  EXPECT_EQ(reply.instance, 0);
  EXPECT_EQ(reply.mars, 1);
}

TEST(TdsPrelogin, VersionsMapToProducts) {
  EXPECT_EQ(tds::product_name({10, 0, 1600}), "SQL Server 2008");
  EXPECT_EQ(tds::product_name({10, 50, 1600}), "SQL Server 2008 R2");
  EXPECT_EQ(tds::product_name({11, 0, 2100}), "SQL Server 2012");
  EXPECT_EQ(tds::product_name({16, 0, 1000}), "SQL Server 2022");
  EXPECT_EQ(tds::product_name({7, 0, 623}), "");
  EXPECT_EQ(tds::encryption_name(0x80), "0x80");
}

TEST(TdsPrelogin, MalformedAnswersSayWhatIsWrong) {
  const Bytes good = PreloginAnswer{}.payload();
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(Bytes{})), "option list has no terminator (0xFF) in 0 bytes");
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(Bytes{0x01, 0x00, 0x00, 0x00, 0x01})),
            "option list has no terminator (0xFF) in 5 bytes");
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(Bytes(good.begin(), good.begin() + 25))),
            "VERSION data at 26+6 runs past the 25-byte reply");
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(Bytes{0x00, 0x00, 0x1a})), "option list cut off inside the entry for VERSION");

  Bytes outside = good;
  outside[2] = 200;  // VERSION's data at 200
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(outside)), "VERSION data at 200+6 runs past the 35-byte reply");
  Bytes oversized = good;
  oversized[8] = 0xff;  // ENCRYPTION length 0xff01
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(oversized)), "ENCRYPTION data at 32+65281 runs past the 35-byte reply");
  Bytes huge_offset = good;
  huge_offset[1] = 0xff, huge_offset[2] = 0xff;  // offset 65535 must not wrap
  EXPECT_NE(error_of(tds::decode_prelogin_reply(huge_offset)).find("runs past"), std::string::npos);

  Bytes short_version = good;
  short_version[4] = 4;
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(short_version)), "VERSION is 4 bytes, not 6");
  Bytes twice = good;
  twice[5] = 0x00;  // ENCRYPTION's entry now says VERSION again
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(twice)), "VERSION appears twice");
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(Bytes{0x01, 0x00, 0x06, 0x00, 0x01, 0xff, 0x00})),
            "reply has no VERSION option");
  EXPECT_EQ(error_of(tds::decode_prelogin_reply(Bytes{0x00, 0x00, 0x06, 0x00, 0x06, 0xff, 15, 0, 0, 1, 0, 0})),
            "reply has no ENCRYPTION option");
}

TEST(TdsPrelogin, UnknownOptionsAreSkipped) {
  // FEDAUTHREQUIRED (0x06) and a token from a later revision, before the terminator.
  Bytes payload = {0x00, 0, 16, 0, 6, 0x01, 0, 22, 0, 1, 0x06, 0, 23, 0, 1, 0xff,
                   16, 0, 0x03, 0xe8, 0, 0, 0x01, 0x01};
  const auto reply = decoded(tds::decode_prelogin_reply(payload));
  EXPECT_EQ(reply.version.text(), "16.0.1000");
  EXPECT_FALSE(reply.instance.has_value());
  EXPECT_FALSE(reply.mars.has_value());
}

TEST(TdsPackets, HeadersAreChecked) {
  const Bytes payload = PreloginAnswer{}.payload();
  EXPECT_EQ(decoded(tds::assemble_message(tds_packet(0x04, payload), kReplyOnly, tds::kMaxPreloginReply)), payload);
  EXPECT_EQ(error_of(tds::assemble_message(tds_packet(0x12, payload), kReplyOnly, tds::kMaxPreloginReply)),
            "packet type 0x12 where TDS expects 0x04");
  EXPECT_EQ(error_of(tds::assemble_message(tds_packet(0x04, payload, 4), kReplyOnly, tds::kMaxPreloginReply)),
            "packet length 4 is shorter than its own header");
  EXPECT_EQ(error_of(tds::assemble_message(tds_packet(0x04, payload, 0xffff), kReplyOnly, tds::kMaxPreloginReply)),
            "packet length 65535 is over TDS's maximum of 32767");
  EXPECT_EQ(error_of(tds::assemble_message(tds_packet(0x04, payload, 100), kReplyOnly, tds::kMaxPreloginReply)),
            "packet promises 92 payload bytes, 35 arrived");
  EXPECT_EQ(error_of(tds::assemble_message(Bytes{0x04, 0x01, 0x00}, kReplyOnly, tds::kMaxPreloginReply)),
            "message ends after 3 bytes, inside a packet header");
  EXPECT_EQ(error_of(tds::assemble_message(tds_packet(0x04, Bytes(100, 0)), kReplyOnly, 64)),
            "message longer than 64 bytes");
}

TEST(TdsPackets, AMessageSpansPackets) {
  const Bytes payload = PreloginAnswer{}.payload();
  Bytes first = tds_packet(0x04, Bytes(payload.begin(), payload.begin() + 10));
  first[1] = 0x00;  // not the end of the message
  const Bytes second = tds_packet(0x04, Bytes(payload.begin() + 10, payload.end()));
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(decoded(tds::assemble_message(first, kReplyOnly, tds::kMaxPreloginReply)), payload);

  // Our own framing splits at 4096 and only the last packet ends the message.
  const Bytes big(5000, 0x16);
  const Bytes framed = tds::frame_message(tds::kPreloginPacket, big);
  ASSERT_EQ(framed.size(), big.size() + 2 * tds::kHeaderSize);
  EXPECT_EQ(framed[1], 0x00);
  EXPECT_EQ((framed[2] << 8) | framed[3], 4096);
  EXPECT_EQ(framed[4096 + 1], 0x01);
  EXPECT_EQ(decoded(tds::assemble_message(framed, std::array<std::uint8_t, 1>{0x12}, 8192)), big);
}

TEST(TdsBrowser, QueryAndAnswerFollowMsSqlr) {
  EXPECT_EQ(tds::encode_browser_query("SQLEXPRESS"),
            (Bytes{0x04, 'S', 'Q', 'L', 'E', 'X', 'P', 'R', 'E', 'S', 'S', 0x00}));
  const auto reply = testing::browser_reply(
      "ServerName;DB1;InstanceName;SQLEXPRESS;IsClustered;No;Version;15.0.2000.5;tcp;1500;np;\\\\DB1\\pipe\\sql\\query;;"
      "ServerName;DB1;InstanceName;ILLIAD;IsClustered;No;Version;16.0.1000.6;np;\\\\DB1\\pipe\\MSSQL$ILLIAD\\sql\\query;;");
  const auto instances = decoded(tds::decode_browser_reply(reply));
  ASSERT_EQ(instances.size(), 2u);
  const auto* express = tds::find_instance(instances, "sqlexpress");
  ASSERT_NE(express, nullptr);
  EXPECT_EQ(express->tcp_port, 1500);
  EXPECT_EQ(express->version, "15.0.2000.5");
  EXPECT_FALSE(tds::find_instance(instances, "ILLIAD")->tcp_port.has_value());  // TCP disabled
  EXPECT_EQ(tds::find_instance(instances, "OTHER"), nullptr);
}

TEST(TdsBrowser, MalformedAnswersSayWhatIsWrong) {
  Bytes wrong_size = testing::browser_reply("InstanceName;A;tcp;1433;;");
  wrong_size[1] += 5;
  EXPECT_EQ(error_of(tds::decode_browser_reply(wrong_size)), "Browser reply announces 30 bytes and carries 25");
  EXPECT_EQ(error_of(tds::decode_browser_reply(Bytes{0x05, 0x00})), "Browser reply of 2 bytes");
  EXPECT_EQ(error_of(tds::decode_browser_reply(Bytes{0x04, 0x00, 0x00})), "Browser reply starts with 4, not SVR_RESP (5)");
  EXPECT_EQ(error_of(tds::decode_browser_reply(testing::browser_reply("InstanceName;A;tcp;99999;;"))),
            "Browser reply has tcp port \"99999\"");
  EXPECT_EQ(error_of(tds::decode_browser_reply(testing::browser_reply("InstanceName;A;tcp;1433;"))),
            "Browser reply's last record has no ending \";;\"");
  EXPECT_EQ(error_of(tds::decode_browser_reply(testing::browser_reply("InstanceName;A;tcp;1433"))),
            "Browser reply ends inside the value of tcp");
  EXPECT_EQ(error_of(tds::decode_browser_reply(testing::browser_reply(";"))), "Browser reply has an empty record");
}

// ---- The probe, against the loopback stand-in ------------------------------------------

RunRecord probe(std::uint16_t port, const std::string& options = "", const std::string& timeout = "2s") {
  return run_once(make_check("tds", "127.0.0.1:" + std::to_string(port), options, timeout));
}

std::string info(const RunRecord& run, std::string_view label) { return fact_label(run, kInfo, label); }

TEST(TdsProbe, ReportsVersionProductEncryptionAndMars) {
  struct Case {
    PreloginAnswer answer;
    std::string version, product, encryption, mars;
  };
  const Case cases[] = {
      {{.major = 10, .minor = 50, .build = 1600, .encryption = 0x00}, "10.50.1600", "SQL Server 2008 R2", "off", "off"},
      {{.major = 15, .minor = 0, .build = 4153, .encryption = 0x01, .mars = 0x01}, "15.0.4153", "SQL Server 2019", "on", "on"},
      {{.major = 16, .minor = 0, .build = 1000, .encryption = 0x02}, "16.0.1000", "SQL Server 2022", "not_supported", "off"},
      {{.major = 16, .minor = 0, .build = 4135, .encryption = 0x03}, "16.0.4135", "SQL Server 2022", "required", "off"},
      {{.major = 42, .minor = 1, .build = 7, .encryption = 0x81}, "42.1.7", "unknown", "0x81", "off"},
  };
  for (const auto& c : cases) {
    TdsTestServer server({.reply = c.answer.packet()});
    const RunRecord run = probe(server.port());
    EXPECT_EQ(run.reason, reason::success) << run.detail;
    EXPECT_EQ(info(run, "version"), c.version);
    EXPECT_EQ(info(run, "product"), c.product);
    EXPECT_EQ(info(run, "encryption"), c.encryption);
    EXPECT_EQ(info(run, "mars"), c.mars);
    EXPECT_EQ(info(run, "instance_check"), "not_checked");
    EXPECT_EQ(fact_value(run, kInfo), 1.0);
    EXPECT_TRUE(phase_seconds(run, "prelogin").has_value());
    EXPECT_EQ(server.received_prelogin(), tds::encode_prelogin({}));
  }
}

TEST(TdsProbe, MalformedOrForeignAnswersAreProtocolErrors) {
  const Bytes good = PreloginAnswer{}.payload();
  Bytes outside = good;
  outside[2] = 200;
  const Bytes no_terminator = {0x01, 0x00, 0x00, 0x00, 0x01};  // one entry, in bounds, then nothing
  Bytes truncated = PreloginAnswer{}.packet();
  truncated.resize(20);
  Bytes oversized_option = good;
  oversized_option[3] = 0x7f, oversized_option[4] = 0xff;
  const std::string http = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  struct Case {
    std::string name;
    Bytes reply;
    std::string detail;
  };
  const Case cases[] = {
      {"wrong packet type", tds_packet(0x12, good), "packet type 0x12 where TDS expects 0x04"},
      {"offset outside", tds_packet(0x04, outside), "VERSION data at 200+6 runs past the 35-byte reply"},
      {"no terminator", tds_packet(0x04, no_terminator), "option list has no terminator"},
      {"oversized option length", tds_packet(0x04, oversized_option), "VERSION data at 26+32767 runs past"},
      {"oversized packet length", tds_packet(0x04, good, 0xffff), "packet length 65535 is over TDS's maximum"},
      {"length under the header", tds_packet(0x04, good, 3), "packet length 3 is shorter than its own header"},
      {"truncated, then closed", truncated, "connection closed inside a 35-byte PRELOGIN packet"},
      {"closed without answer", {}, "connection closed without a PRELOGIN answer"},
      {"a short banner, then closed", {'O', 'K', '\n'}, "connection closed inside a packet header, after 3 bytes"},
      {"an HTTP server", Bytes(http.begin(), http.end()), "(\"HTTP/1.1\": not SQL Server)"},
  };
  for (const auto& c : cases) {
    TdsTestServer server({.reply = c.reply});
    const RunRecord run = probe(server.port());
    EXPECT_EQ(run.reason, reason::protocol_error) << c.name << ": " << run.detail;
    EXPECT_NE(run.detail.find(c.detail), std::string::npos) << c.name << ": " << run.detail;
    EXPECT_FALSE(fact_value(run, kInfo).has_value()) << c.name;
  }
}

TEST(TdsProbe, RealNginxOnTheSqlPortIsNotSqlServer) {
  SKIP_ON_WINDOWS(testing::kNeedsNginx);
  testing::NginxServer nginx("location / { return 200 \"web\"; }");
  const RunRecord run = probe(nginx.port());
  EXPECT_EQ(run.reason, reason::protocol_error) << run.detail;
  EXPECT_NE(run.detail.find("HTTP/1.1"), std::string::npos) << run.detail;
}

TEST(TdsProbe, SilentOrStalledServersTimeOutInPrelogin) {
  testing::ScriptedPeer silent("");
  RunRecord run = probe(silent.port(), "", "300ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_TRUE(phase_seconds(run, "prelogin").has_value());

  Bytes half = PreloginAnswer{}.packet();
  half.resize(30);
  TdsTestServer stalled({.reply = half, .hold_open = true});
  run = probe(stalled.port(), "", "300ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_LE(run.total, std::chrono::milliseconds(300) + std::chrono::seconds(1));  // cut off, not hung
}

TEST(TdsProbe, RefusedAndInstanceChecked) {
  testing::RefusedPort closed;
  EXPECT_EQ(probe(closed.port()).reason, reason::refused);

  TdsTestServer matching({.reply = PreloginAnswer{.instance = 0x00}.packet()});
  RunRecord run = probe(matching.port(), "instance = \"ILLIAD\"");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(info(run, "instance_check"), "match");
  EXPECT_EQ(matching.received_prelogin(), tds::encode_prelogin({"ILLIAD"}));

  TdsTestServer other({.reply = PreloginAnswer{.instance = 0x01}.packet()});
  run = probe(other.port(), "instance = \"ILLIAD\"");
  EXPECT_EQ(run.reason, reason::instance_mismatch) << run.detail;
  EXPECT_EQ(info(run, "instance_check"), "mismatch");
  EXPECT_EQ(run.detail, "the server is not instance ILLIAD");
}

class TdsProbeTls : public ::testing::Test {
 protected:
  TestPki pki;
  std::string trust_our_ca() const { return "ca_file = \"" + pki.ca_file() + "\"\n"; }
};

TEST_F(TdsProbeTls, WrappedHandshakeReadsTheCertificate) {
  const auto cert = pki.issue("sql", {.ip_addresses = {"127.0.0.1"}});
  for (std::uint8_t packet_type : {std::uint8_t{0x12}, std::uint8_t{0x04}}) {
    TdsTestServer server({.reply = PreloginAnswer{.encryption = 0x00}.packet(), .tls = TdsTls::wrapped, .cert = cert,
                          .handshake_packet_type = packet_type});
    const RunRecord run = probe(server.port(), "tls = true\n" + trust_our_ca());
    EXPECT_EQ(run.reason, reason::success) << run.detail;
    EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "ok"}}), 1.0);
    EXPECT_EQ(fact_label(run, "connectivity_tls_leaf_cert_info", "fingerprint_sha256"), cert.sha256_fingerprint);
    EXPECT_EQ(fact_label(run, "connectivity_tls_version_info", "version"), "TLSv1.2");  // 1.3 only comes with TDS 8.0
    EXPECT_EQ(info(run, "encryption"), "off");
    EXPECT_TRUE(phase_seconds(run, "tls").has_value());
    ASSERT_TRUE(server.wait_served(1));
    EXPECT_EQ(server.handshakes_completed(), 1u);
  }
}

TEST_F(TdsProbeTls, BadCertificatesAreCertInvalidWithTheServerStillDescribed) {
  const auto expired = pki.issue("expired", {.not_before_offset = std::chrono::hours(-48),
                                             .not_after_offset = std::chrono::hours(-24)});
  TdsTestServer server({.reply = PreloginAnswer{.encryption = 0x03}.packet(), .tls = TdsTls::wrapped, .cert = expired});
  RunRecord run = probe(server.port(), "tls = true\n" + trust_our_ca());
  EXPECT_EQ(run.reason, reason::cert_invalid) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "expired"}}), 1.0);
  EXPECT_EQ(info(run, "encryption"), "required");

  // SQL Server's own fallback certificate is self-signed: verify = false still reads it.
  const auto fallback = pki.issue("fallback", {.common_name = "SSL_Self_Signed_Fallback", .self_signed = true});
  TdsTestServer self_signed({.reply = PreloginAnswer{}.packet(), .tls = TdsTls::wrapped, .cert = fallback});
  run = probe(self_signed.port(), "tls = true");
  EXPECT_EQ(run.reason, reason::cert_invalid) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "self_signed"}}), 1.0);
  run = probe(self_signed.port(), "tls = true\nverify = false\nverify_hostname = false");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_GT(fact_value(run, "connectivity_tls_earliest_cert_not_after_timestamp_seconds").value_or(0), 0);
}

TEST_F(TdsProbeTls, AServerWithoutTlsOrSpeakingNonsenseFails) {
  TdsTestServer no_tls({.reply = PreloginAnswer{.encryption = 0x02}.packet()});
  RunRecord run = probe(no_tls.port(), "tls = true");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
  EXPECT_EQ(run.detail, "the server answered ENCRYPTION not_supported: it offers no TLS");

  TdsTestServer closes({.reply = PreloginAnswer{}.packet()});  // answers, then hangs up
  run = probe(closes.port(), "tls = true");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
  EXPECT_EQ(run.detail, "connection closed during the TLS handshake");

  Bytes junk = PreloginAnswer{}.packet();
  for (char c : std::string("SSH-2.0-OpenSSH_9.2\r\n")) junk.push_back(static_cast<std::uint8_t>(c));
  TdsTestServer nonsense({.reply = junk, .hold_open = true});
  run = probe(nonsense.port(), "tls = true");
  EXPECT_EQ(run.reason, reason::protocol_error) << run.detail;
  EXPECT_EQ(run.detail, "TLS handshake packet: packet type 0x53 where TDS expects 0x12 or 0x04");

  // Records that are not TLS, inside well-formed packets.
  Bytes garbage = PreloginAnswer{}.packet();
  const Bytes noise = tds_packet(0x12, Bytes(64, 0x42));
  garbage.insert(garbage.end(), noise.begin(), noise.end());
  TdsTestServer not_tls({.reply = garbage, .hold_open = true});
  run = probe(not_tls.port(), "tls = true");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
  EXPECT_NE(run.detail.find("wrong version number"), std::string::npos) << run.detail;
}

TEST_F(TdsProbeTls, StrictRunsTlsFirstWithAlpnThenPrelogin) {
  const auto cert = pki.issue("strict", {.ip_addresses = {"127.0.0.1"}});
  TdsTestServer server({.reply = PreloginAnswer{.major = 16, .build = 4135, .encryption = 0x03}.packet(),
                        .tls = TdsTls::strict, .cert = cert});
  const RunRecord run = probe(server.port(), "strict = true\ninstance = \"ILLIAD\"\n" + trust_our_ca());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(server.alpn_offered(), "tds/8.0");
  EXPECT_EQ(fact_label(run, "connectivity_tls_version_info", "version"), "TLSv1.3");
  EXPECT_EQ(info(run, "product"), "SQL Server 2022");
  EXPECT_EQ(info(run, "instance_check"), "match");
  EXPECT_EQ(server.received_prelogin(), tds::encode_prelogin({"ILLIAD"}));  // inside TLS, unchanged
  EXPECT_TRUE(phase_seconds(run, "tls").has_value());
  EXPECT_TRUE(phase_seconds(run, "prelogin").has_value());

  // A TDS 7.x server answers our ClientHello with a PRELOGIN packet: not TLS.
  const Bytes answer = PreloginAnswer{}.packet();
  testing::ScriptedPeer speaks_first(std::string(answer.begin(), answer.end()));
  const RunRecord refused = probe(speaks_first.port(), "strict = true\n" + trust_our_ca());
  EXPECT_EQ(refused.reason, reason::tls_error) << refused.detail;
  EXPECT_FALSE(fact_value(refused, kInfo).has_value());
}

// ---- SQL Server Browser --------------------------------------------------------------------

TEST(TdsProbeBrowser, NamesTheInstancePortAndMismatchesFail) {
  TdsTestServer server({.reply = PreloginAnswer{}.packet()});
  const std::string port = std::to_string(server.port());
  const auto options = [](std::uint16_t browser_port) {
    return "instance = \"ILLIAD\"\nbrowser = true\nbrowser_port = " + std::to_string(browser_port);
  };

  BrowserTestResponder right(testing::browser_reply("ServerName;DB1;InstanceName;illiad;IsClustered;No;Version;15.0.2000.5;tcp;" + port + ";;"));
  RunRecord run = probe(server.port(), options(right.port()));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tds_browser_tcp_port", {{"sql_instance", "ILLIAD"}}), server.port());
  EXPECT_EQ(right.last_query(), tds::encode_browser_query("ILLIAD"));
  EXPECT_TRUE(phase_seconds(run, "browser").has_value());

  BrowserTestResponder moved(testing::browser_reply("ServerName;DB1;InstanceName;ILLIAD;IsClustered;No;Version;15.0.2000.5;tcp;1344;;"));
  run = probe(server.port(), options(moved.port()));
  EXPECT_EQ(run.reason, reason::instance_mismatch) << run.detail;
  EXPECT_NE(run.detail.find("instance ILLIAD listens on tcp/1344, the check connects to " + port), std::string::npos) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tds_browser_tcp_port", {{"sql_instance", "ILLIAD"}}), 1344.0);
  EXPECT_EQ(info(run, "version"), "15.0.4153");  // the server was still described

  BrowserTestResponder unknown(testing::browser_reply("ServerName;DB1;InstanceName;OTHER;IsClustered;No;Version;15.0.2000.5;tcp;1433;;"));
  run = probe(server.port(), options(unknown.port()));
  EXPECT_EQ(run.reason, reason::instance_mismatch) << run.detail;
  EXPECT_NE(run.detail.find("does not list instance ILLIAD"), std::string::npos) << run.detail;

  BrowserTestResponder garbage(Bytes{0x05, 0xff, 0xff, 'x'});
  run = probe(server.port(), options(garbage.port()));
  EXPECT_EQ(run.reason, reason::protocol_error) << run.detail;

  if (testing::under_wine())
    GTEST_SKIP() << "under wine, the last case: a connected UDP socket never learns of the ICMP port unreachable "
                    "(wine 8 neither fails the receive, as Windows does with WSAECONNRESET, nor passes on Linux's "
                    "ECONNREFUSED), so a Browser port nobody listens on times out instead of being refused; every "
                    "other case ran";
  run = probe(server.port(), options(testing::free_loopback_port(SOCK_DGRAM)));  // nobody there: port unreachable
  EXPECT_EQ(run.reason, reason::refused) << run.detail;
  EXPECT_NE(run.detail.find("SQL Server Browser on udp/"), std::string::npos) << run.detail;
}

TEST(TdsProbeBrowser, ASilentBrowserTimesOutInItsPhase) {
  // Bound but never read: the query is queued, no answer and no port unreachable comes back.
  const auto silent = testing::bind_loopback(SOCK_DGRAM);
  const std::shared_ptr<void> close_fd(nullptr, [fd = silent.fd](void*) { testing::close_socket(fd); });

  TdsTestServer server({.reply = PreloginAnswer{}.packet()});
  const RunRecord run = probe(server.port(), "instance = \"ILLIAD\"\nbrowser = true\nbrowser_port = " +
                                                 std::to_string(silent.port), "300ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_NE(run.detail.find("in phase browser"), std::string::npos) << run.detail;
  EXPECT_EQ(info(run, "version"), "15.0.4153");  // what PRELOGIN learned is kept
  EXPECT_LE(run.total, std::chrono::milliseconds(300) + std::chrono::seconds(1));  // cut off, not hung
}

// ---- Config ----------------------------------------------------------------------------

TEST(TdsProbeConfig, BadOptionsAreConfigErrorsAtTheirKey) {
  const auto error_of = [](const std::string& options) {
    return testing::config_error("tds", "sql.example.edu:1433", options);
  };
  EXPECT_EQ(error_of("instance = \"ILL IAD\""),
            "test.toml:8:12: check \"t\": key \"instance\": must be a SQL Server instance name: 1 to 16 letters, digits, _, $, # or &");
  EXPECT_NE(error_of("instance = \"ABCDEFGHIJKLMNOPQ\"").find("1 to 16"), std::string::npos);
  EXPECT_NE(error_of("browser = true").find("key \"browser\": asks the Browser about an instance: set instance too"),
            std::string::npos);
  EXPECT_NE(error_of("ca_file = \"/etc/ssl/certs/ca-certificates.crt\"")
                .find("key \"ca_file\": is a TLS option: it needs tls = true or strict = true"),
            std::string::npos);
  EXPECT_NE(error_of("strict = true\ntls = false").find("key \"tls\": strict encryption is TLS before anything else"),
            std::string::npos);
  EXPECT_NE(error_of("browser_port = 1434").find("only applies with browser = true"), std::string::npos);
  EXPECT_NE(error_of("instance = \"A\"\nbrowser = true\nbrowser_port = 70000").find("1 to 65535"), std::string::npos);
  EXPECT_NE(error_of("tls = true\nca_file = \"/nonexistent.pem\"").find("key \"ca_file\": cannot load"), std::string::npos);
  EXPECT_NE(error_of("login = true").find("login"), std::string::npos);
  EXPECT_EQ(error_of("tls = true\ninstance = \"ILLIAD\"\nbrowser = true"), "<no error>");
}

// ---- An independent decoder: tshark's TDS dissector --------------------------------------

TEST(TdsProbeWire, TsharkDecodesWhatTheProbeSends) {
  SKIP_ON_WINDOWS(testing::kNeedsTshark);
  if (testing::shell("command -v tshark >/dev/null && command -v text2pcap >/dev/null") != 0) {
    if (std::getenv("CI")) FAIL() << "CI installs tshark (deploy/install-deps.sh --test); it is missing";  // NOLINT(concurrency-mt-unsafe)
    GTEST_SKIP() << "tshark/text2pcap not installed";
  }
  TdsTestServer server({.reply = PreloginAnswer{.major = 15, .build = 4153, .encryption = 0x03}.packet()});
  ASSERT_EQ(probe(server.port(), "instance = \"ILLIAD\"").reason, reason::success);
  const Bytes sent = server.received_prelogin();
  ASSERT_FALSE(sent.empty());

  // Both directions as text2pcap's hex dump, then a pcap with synthetic TCP headers on port 1433.
  const std::string dir = testing::make_temp_dir("tds-wire");
  const std::shared_ptr<void> remove_dir(nullptr, [&](void*) { std::filesystem::remove_all(dir); });
  const auto dump = [](std::ostream& out, const Bytes& bytes, char direction) {
    out << direction << " 0000";
    for (auto byte : bytes) {
      std::array<char, 4> hex{};
      std::snprintf(hex.data(), hex.size(), " %02x", byte);
      out << hex.data();
    }
    out << "\n";
  };
  {
    std::ofstream hex(dir + "/exchange.txt");
    dump(hex, sent, 'I');
    dump(hex, PreloginAnswer{.major = 15, .build = 4153, .encryption = 0x03}.packet(), 'O');
  }
  const std::string decoded_file = dir + "/decoded.txt";
  ASSERT_EQ(testing::shell("text2pcap -q -D -T 50000,1433 " + dir + "/exchange.txt " + dir +
                           "/exchange.pcap && tshark -r " + dir + "/exchange.pcap -V -O tds > " + decoded_file),
            0);
  std::stringstream text;
  text << std::ifstream(decoded_file).rdbuf();
  const std::string out = text.str();
  for (const char* expected : {"Type: TDS7 pre-login message (18)", "Status: 0x01, End of message", "Length: 53",
                               "Option: Version", "Option: Encryption", "Encryption: Encryption is available but off (0)",
                               "InstOpt: ILLIAD", "ThreadID: 0", "MARS: Off (0)", "Option Token: Terminator (255)",
                               "Type: Response (4)", "Version: 15.0.4153",
                               "Encryption: Encryption is required (3)"})
    EXPECT_NE(out.find(expected), std::string::npos) << "tshark did not decode \"" << expected << "\":\n" << out;
  EXPECT_EQ(out.find("Malformed"), std::string::npos) << out;
}

}  // namespace
}  // namespace connectivity

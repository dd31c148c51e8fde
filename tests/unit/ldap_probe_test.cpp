// The LDAP probe: its codec against RFC 4511 byte layouts (and the bytes slapd 2.5.13 was
// seen to accept), and the probe against a real slapd on loopback (plain, StartTLS,
// LDAPS, simple bind) and against hostile or silent peers.
#include "probes/ldap/ldap_codec.h"
#include "probes/ldap/ldap_probe.h"
#include "tests/support/decoded.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"
#include "tests/support/slapd_server.h"
#include "tests/support/sockets.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

namespace connectivity {
namespace {

using ldap::Bytes;
using testing::SlapdServer;
using testing::TestPki;
using testing::decoded;
using testing::error_of;
using testing::fact_label;
using testing::fact_value;
using testing::make_check;
using testing::phase_seconds;
using testing::run_once;

constexpr std::string_view kRootDseInfo = "connectivity_ldap_root_dse_info";
constexpr std::string_view kNamingContexts = "connectivity_ldap_naming_contexts";
constexpr std::string_view kNamingContextInfo = "connectivity_ldap_naming_context_info";
constexpr std::string_view kResultCode = "connectivity_ldap_result_code";

Bytes bytes(std::string_view text) { return {text.begin(), text.end()}; }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}
std::string as_string(const Bytes& b) { return {b.begin(), b.end()}; }

// A TLV with a short-form length (content under 128 bytes).
Bytes tlv(std::uint8_t tag, const Bytes& content) {
  Bytes out{tag, static_cast<std::uint8_t>(content.size())};
  out.insert(out.end(), content.begin(), content.end());
  return out;
}
// The same with a four-byte long-form length (0x84), as some servers send everything.
Bytes tlv84(std::uint8_t tag, const Bytes& content) {
  const auto n = content.size();
  Bytes out{tag, 0x84, static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
            static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes result_fields(std::uint8_t code, std::string_view diagnostic = "") {
  return cat({tlv(0x0a, {code}), tlv(0x04, {}), tlv(0x04, bytes(diagnostic))});
}
Bytes ldap_message(std::uint8_t id, const Bytes& op) { return tlv(0x30, cat({tlv(0x02, {id}), op})); }
Bytes bind_response(std::uint8_t id, std::uint8_t code) { return ldap_message(id, tlv(0x61, result_fields(code))); }
Bytes search_done(std::uint8_t id, std::uint8_t code, std::string_view diagnostic = "") {
  return ldap_message(id, tlv(0x65, result_fields(code, diagnostic)));
}
Bytes root_dse_entry(std::uint8_t id, std::initializer_list<std::string_view> contexts) {
  Bytes values;
  for (auto context : contexts) values = cat({values, tlv(0x04, bytes(context))});
  const Bytes attributes = cat({tlv(0x30, cat({tlv(0x04, bytes("namingContexts")), tlv(0x31, values)})),
                                tlv(0x30, cat({tlv(0x04, bytes("supportedLDAPVersion")),
                                               tlv(0x31, cat({tlv(0x04, bytes("3")), tlv(0x04, bytes("2"))}))}))});
  return ldap_message(id, tlv(0x64, cat({tlv(0x04, {}), tlv(0x30, attributes)})));
}

// ---- Requests: exact bytes ----------------------------------------------------------------

TEST(LdapCodec, StartTlsAndUnbindAreTheBytesSlapdConfirmed) {
  // As slapd takes them: StartTLS is message 1 on its connection, and an anonymous search (message 1)
  // is followed by Unbind as message 2. The probe numbers its requests 1, 2, ... per connection.
  EXPECT_EQ(ldap::encode_starttls_request(1),
            cat({Bytes{0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16}, bytes("1.3.6.1.4.1.1466.20037")}));
  EXPECT_EQ(ldap::encode_unbind_request(2), (Bytes{0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00}));
}

TEST(LdapCodec, RootDseSearchIsRfc4511Layout) {
  const Bytes attributes = cat({tlv(0x04, bytes("namingContexts")), tlv(0x04, bytes("supportedLDAPVersion"))});
  const Bytes expected = ldap_message(
      1, tlv(0x63, cat({Bytes{0x04, 0x00},            // baseObject ""
                        Bytes{0x0a, 0x01, 0x00},      // scope baseObject
                        Bytes{0x0a, 0x01, 0x00},      // derefAliases never
                        Bytes{0x02, 0x01, 0x00},      // sizeLimit 0
                        Bytes{0x02, 0x01, 0x00},      // timeLimit 0
                        Bytes{0x01, 0x01, 0x00},      // typesOnly FALSE
                        tlv(0x87, bytes("objectClass")),  // present filter
                        tlv(0x30, attributes)})));
  EXPECT_EQ(ldap::encode_root_dse_search(1), expected);
  // 30 4b | 02 01 01 | 63 46: 17 bytes of fixed fields, 13 of filter, 40 of attribute list.
  EXPECT_EQ(expected.size(), 77u);
  EXPECT_EQ(expected[1], 0x4b);
  EXPECT_EQ(expected[6], 0x46);
}

TEST(LdapCodec, SimpleBindAndLongFormLengths) {
  EXPECT_EQ(ldap::encode_simple_bind_request(1, "cn=a", "pw"),
            ldap_message(1, tlv(0x60, cat({Bytes{0x02, 0x01, 0x03}, tlv(0x04, bytes("cn=a")), tlv(0x80, bytes("pw"))}))));
  // 200-byte password: [0] gets a 0x81 length, the bindRequest (212) and the message (219) too.
  const Bytes big = ldap::encode_simple_bind_request(300, "cn=a", std::string(200, 'x'));
  EXPECT_EQ(Bytes(big.begin(), big.begin() + 10), (Bytes{0x30, 0x81, 0xdb, 0x02, 0x02, 0x01, 0x2c, 0x60, 0x81, 0xd4}));
  EXPECT_EQ(Bytes(big.begin() + 19, big.begin() + 22), (Bytes{0x80, 0x81, 0xc8}));
  const Bytes huge = ldap::encode_simple_bind_request(0x80, "cn=a", std::string(70000, 'x'));
  EXPECT_EQ(Bytes(huge.begin(), huge.begin() + 2), (Bytes{0x30, 0x83}));
  EXPECT_EQ(Bytes(huge.begin() + 5, huge.begin() + 9), (Bytes{0x02, 0x02, 0x00, 0x80}));  // 128 needs a sign byte
}

// ---- Framing ------------------------------------------------------------------------------

TEST(LdapCodec, FramerSaysHowManyBytesAMessageNeeds) {
  const Bytes done = search_done(2, 0);
  EXPECT_EQ(decoded(ldap::frame_message(done)), done.size());
  EXPECT_EQ(decoded(ldap::frame_message(Bytes(done.begin(), done.begin() + 3))), done.size());  // more to come
  EXPECT_EQ(decoded(ldap::frame_message(Bytes{})), std::nullopt);
  EXPECT_EQ(decoded(ldap::frame_message(Bytes{0x30})), std::nullopt);
  EXPECT_EQ(decoded(ldap::frame_message(Bytes{0x30, 0x84, 0x00, 0x00})), std::nullopt);  // length bytes cut
  EXPECT_EQ(decoded(ldap::frame_message(Bytes{0x30, 0x84, 0x00, 0x00, 0x01, 0x00})), 6u + 256u);
  EXPECT_EQ(decoded(ldap::frame_message(cat({done, done}))), done.size());  // only the first

  EXPECT_EQ(error_of(ldap::frame_message(Bytes{0x30, 0x80})),
            "LDAPMessage: indefinite length (0x80), which LDAP forbids (RFC 4511 5.1)");
  EXPECT_EQ(error_of(ldap::frame_message(Bytes{0x30, 0x85, 0, 0, 0, 0, 1})),
            "LDAPMessage: length in 5 bytes (0x85): more than 4");
  EXPECT_EQ(error_of(ldap::frame_message(Bytes{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff})),
            "LDAPMessage of 2147483647 bytes is over the 65536-byte limit");
  EXPECT_EQ(error_of(ldap::frame_message(bytes("HTTP/1.1 400"))),
            "first byte 0x48 where an LDAPMessage starts with 0x30 (SEQUENCE)");
}

// ---- Decoding -----------------------------------------------------------------------------

TEST(LdapCodec, DecodesResultsEntriesAndExtendedResponses) {
  const auto bind = decoded(ldap::decode_message(bind_response(1, 49)));
  EXPECT_EQ(bind.id, 1);
  EXPECT_EQ(bind.op, ldap::kBindResponse);
  ASSERT_TRUE(bind.result);
  EXPECT_EQ(bind.result->code, 49u);

  const auto entry = decoded(ldap::decode_message(root_dse_entry(2, {"dc=example,dc=org", "o=other"})));
  ASSERT_TRUE(entry.entry);
  EXPECT_EQ(entry.entry->dn, "");
  EXPECT_EQ(entry.entry->values("namingcontexts"), (std::vector<std::string>{"dc=example,dc=org", "o=other"}));
  EXPECT_EQ(entry.entry->values("supportedLDAPVersion"), (std::vector<std::string>{"3", "2"}));
  EXPECT_TRUE(entry.entry->values("absent").empty());

  // slapd's StartTLS answer without TLS configured, with responseName and controls after it.
  const Bytes refused = ldap_message(
      1, cat({tlv(0x78, cat({result_fields(2, "unsupported extended operation"), tlv(0x8a, bytes("1.3.6.1.4.1.1466.20037"))})),
              tlv(0xa0, {})}));
  const auto extended = decoded(ldap::decode_message(refused));
  EXPECT_EQ(extended.op, ldap::kExtendedResponse);
  EXPECT_EQ(extended.result->code, 2u);
  EXPECT_EQ(extended.result->diagnostic, "unsupported extended operation");
  EXPECT_EQ(extended.response_name, ldap::kStartTlsOid);
}

TEST(LdapCodec, DecodesFourByteLongFormLengthsEverywhere) {
  const Bytes result = cat({tlv84(0x0a, {0x00}), tlv84(0x04, {}), tlv84(0x04, bytes("ok"))});
  const Bytes message = tlv84(0x30, cat({tlv84(0x02, {0x00, 0x00, 0x00, 0x07}), tlv84(0x65, result)}));
  EXPECT_EQ(decoded(ldap::frame_message(message)), message.size());
  const auto done = decoded(ldap::decode_message(message));
  EXPECT_EQ(done.id, 7);
  EXPECT_EQ(done.op, ldap::kSearchResultDone);
  EXPECT_EQ(done.result->diagnostic, "ok");
}

TEST(LdapCodec, MalformedMessagesSayWhatIsWrong) {
  const Bytes done = search_done(2, 0);
  EXPECT_EQ(error_of(ldap::decode_message(Bytes(done.begin(), done.end() - 1))),
            "LDAPMessage: length 12 runs past the 11 bytes left");
  EXPECT_EQ(error_of(ldap::decode_message(Bytes{})), "LDAPMessage is cut off");
  EXPECT_EQ(error_of(ldap::decode_message(cat({done, Bytes{0x00}}))), "1 bytes after the LDAPMessage");
  EXPECT_EQ(error_of(ldap::decode_message(Bytes{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00})),
            "LDAPMessage: indefinite length (0x80), which LDAP forbids (RFC 4511 5.1)");
  EXPECT_EQ(error_of(ldap::decode_message(ldap_message(1, tlv(0x65, Bytes{0x0a, 0x01, 0x00})))),
            "searchResDone matchedDN is cut off");
  // A truncated OCTET STRING inside an entry.
  Bytes entry = root_dse_entry(2, {"dc=example,dc=org"});
  entry[1] = static_cast<std::uint8_t>(entry[1] - 3);
  entry.resize(entry.size() - 3);
  EXPECT_NE(error_of(ldap::decode_message(entry)).find("runs past"), std::string::npos);
  // Negative and oversized message IDs.
  EXPECT_EQ(error_of(ldap::decode_message(tlv(0x30, cat({tlv(0x02, {0xff}), tlv(0x61, result_fields(0))})))),
            "messageID is negative");
  EXPECT_EQ(error_of(ldap::decode_message(tlv(0x30, cat({tlv(0x02, {0x01, 0, 0, 0, 0}), tlv(0x61, result_fields(0))})))),
            "messageID is over 2^31-1");
  // A constructed OCTET STRING (legal BER, not LDAP) where the DN belongs.
  EXPECT_EQ(error_of(ldap::decode_message(ldap_message(1, tlv(0x61, cat({tlv(0x0a, {0}), tlv(0x24, {}), tlv(0x04, {})}))))),
            "bindResponse matchedDN: tag 0x24 where 0x04 belongs");
  // High tag numbers, and anything after the controls.
  EXPECT_EQ(error_of(ldap::decode_message(Bytes{0x30, 0x03, 0x1f, 0x01, 0x00})),
            "LDAPMessage: element at depth 1: tag 0x1f uses the high-tag-number form, which LDAP never uses");
  EXPECT_EQ(error_of(ldap::decode_message(ldap_message(1, cat({tlv(0x61, result_fields(0)), tlv(0xa0, {}), tlv(0x04, {})})))),
            "2 bytes after the controls");
}

TEST(LdapCodec, NestingAndSizeAreCapped) {
  Bytes deep = {0x04, 0x00};
  for (int level = 0; level < ldap::kMaxDepth + 2; ++level) deep = tlv84(0x30, deep);
  EXPECT_EQ(error_of(ldap::decode_message(ldap_message(1, tlv84(0x79, deep)))),
            "LDAPMessage: elements nested deeper than 16 levels");
  Bytes shallow = {0x04, 0x00};
  for (int level = 0; level < ldap::kMaxDepth - 3; ++level) shallow = tlv84(0x30, shallow);
  EXPECT_EQ(decoded(ldap::decode_message(ldap_message(1, tlv84(0x79, shallow)))).op, ldap::kIntermediateResponse);

  const Bytes big = tlv84(0x30, Bytes(ldap::kMaxMessage, 0x00));
  EXPECT_EQ(error_of(ldap::frame_message(big)), "LDAPMessage of 65536 bytes is over the 65536-byte limit");
  EXPECT_EQ(error_of(ldap::decode_message(big)), "LDAPMessage of 65542 bytes is over the 65536-byte limit");
}

TEST(LdapCodec, ResultCodesHaveNamesAndReasons) {
  EXPECT_EQ(ldap::result_code_name(49), "invalidCredentials");
  EXPECT_EQ(ldap::result_code_name(2), "protocolError");
  EXPECT_EQ(ldap::result_code_name(4711), "unknown");
  EXPECT_EQ(ldap_result_reason(49), reason::auth_failed);
  EXPECT_EQ(ldap_result_reason(48), reason::auth_failed);
  EXPECT_EQ(ldap_result_reason(50), reason::auth_failed);
  EXPECT_EQ(ldap_result_reason(13), reason::auth_failed);
  EXPECT_EQ(ldap_result_reason(51), reason::unavailable);
  EXPECT_EQ(ldap_result_reason(52), reason::unavailable);
  EXPECT_EQ(ldap_result_reason(53), reason::unavailable);
  EXPECT_EQ(ldap_result_reason(32), reason::ldap_error);
  EXPECT_EQ(ldap_result_reason(80), reason::ldap_error);
}

// ---- The probe against a real slapd ---------------------------------------------------------

RunRecord probe(std::uint16_t port, const std::string& options = "", const std::string& timeout = "3s") {
  return run_once(make_check("ldap", "127.0.0.1:" + std::to_string(port), options, timeout));
}

// One slapd with TLS (ldap:// with StartTLS, and ldaps://) for the whole suite: starting it
// takes a moment, and nothing here changes it.
class LdapProbeSlapd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SKIP_ON_WINDOWS(testing::kNeedsSlapd);
    pki_ = std::make_unique<TestPki>();
    const auto cert = pki_->issue("slapd");
    slapd_ = std::make_unique<SlapdServer>(testing::SlapdOptions{.cert = cert.cert, .key = cert.key});
    password_file_ = pki_->dir() + "/bind-password";
    std::ofstream(password_file_) << SlapdServer::kRootPassword << "\n";
    wrong_password_file_ = pki_->dir() + "/wrong-password";
    std::ofstream(wrong_password_file_) << "not-the-password";
  }
  static void TearDownTestSuite() {
    slapd_.reset();
    pki_.reset();
  }
  // Again per test: gtest 1.12 runs a suite's tests after its SetUpTestSuite skipped.
  void SetUp() override { SKIP_ON_WINDOWS(testing::kNeedsSlapd); }
  static std::string trust_our_ca() { return "ca_file = \"" + pki_->ca_file() + "\"\n"; }
  static std::string bind_with(const std::string& file) {
    return "bind_dn = \"" + std::string(SlapdServer::kRootDn) + "\"\npassword_file = \"" + file + "\"\n";
  }
  static void expect_root_dse(const RunRecord& run) {
    EXPECT_EQ(fact_label(run, kRootDseInfo, "supported_ldap_versions"), "3");
    EXPECT_EQ(fact_value(run, kNamingContexts), 1.0);
    EXPECT_EQ(fact_label(run, kNamingContextInfo, "naming_context"), SlapdServer::kSuffix);
    EXPECT_EQ(fact_value(run, kResultCode, {{"operation", "search"}}), 0.0);
    EXPECT_TRUE(phase_seconds(run, "search").has_value());
  }

  static std::unique_ptr<TestPki> pki_;
  static std::unique_ptr<SlapdServer> slapd_;
  static std::string password_file_;
  static std::string wrong_password_file_;
};
std::unique_ptr<TestPki> LdapProbeSlapd::pki_;
std::unique_ptr<SlapdServer> LdapProbeSlapd::slapd_;
std::string LdapProbeSlapd::password_file_;
std::string LdapProbeSlapd::wrong_password_file_;

TEST_F(LdapProbeSlapd, AnonymousRootDseSearch) {
  const RunRecord run = probe(slapd_->port());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  expect_root_dse(run);
  EXPECT_FALSE(phase_seconds(run, "bind").has_value());
  EXPECT_FALSE(phase_seconds(run, "tls").has_value());
  EXPECT_FALSE(fact_value(run, "connectivity_tls_verify_result").has_value());
}

TEST_F(LdapProbeSlapd, SimpleBindThenSearch) {
  const RunRecord run = probe(slapd_->port(), bind_with(password_file_));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kResultCode, {{"operation", "bind"}}), 0.0);
  EXPECT_TRUE(phase_seconds(run, "bind").has_value());
  expect_root_dse(run);
}

TEST_F(LdapProbeSlapd, WrongPasswordIsAuthFailed) {
  const RunRecord run = probe(slapd_->port(), bind_with(wrong_password_file_));
  EXPECT_EQ(run.reason, reason::auth_failed) << run.detail;
  EXPECT_EQ(run.detail, "bind as cn=admin,dc=example,dc=org refused: resultCode 49 (invalidCredentials)");
  EXPECT_EQ(fact_value(run, kResultCode, {{"operation", "bind"}}), 49.0);
  EXPECT_FALSE(phase_seconds(run, "search").has_value());
}

TEST_F(LdapProbeSlapd, StartTlsReportsTheCertificateThenBindsAndSearches) {
  const RunRecord run = probe(slapd_->port(), "starttls = true\n" + trust_our_ca() + bind_with(password_file_));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kResultCode, {{"operation", "starttls"}}), 0.0);
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "ok"}}), 1.0);
  EXPECT_TRUE(fact_value(run, "connectivity_tls_earliest_cert_not_after_timestamp_seconds").has_value());
  EXPECT_FALSE(fact_label(run, "connectivity_tls_version_info", "version").empty());
  for (const char* phase : {"starttls", "tls", "bind", "search"})
    EXPECT_TRUE(phase_seconds(run, phase).has_value()) << phase;
  expect_root_dse(run);
}

TEST_F(LdapProbeSlapd, LdapsIsTlsFirst) {
  const RunRecord run = probe(slapd_->ldaps_port(), "tls = true\n" + trust_our_ca());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "ok"}}), 1.0);
  EXPECT_FALSE(phase_seconds(run, "starttls").has_value());
  expect_root_dse(run);
}

TEST_F(LdapProbeSlapd, LdapsWithAnUntrustedCaIsCertInvalid) {
  const RunRecord run = probe(slapd_->ldaps_port(), "tls = true\n");  // the system store: our CA is not in it
  EXPECT_EQ(run.reason, reason::cert_invalid) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "unknown_ca"}}), 1.0);
  EXPECT_TRUE(fact_value(run, "connectivity_tls_earliest_cert_not_after_timestamp_seconds").has_value());
  EXPECT_FALSE(phase_seconds(run, "search").has_value());
}

TEST_F(LdapProbeSlapd, StartTlsWithAnUntrustedCaIsCertInvalid) {
  const RunRecord run = probe(slapd_->port(), "starttls = true\n");
  EXPECT_EQ(run.reason, reason::cert_invalid) << run.detail;
  EXPECT_EQ(fact_value(run, kResultCode, {{"operation", "starttls"}}), 0.0);
}

TEST_F(LdapProbeSlapd, LdapsAgainstThePlainPortIsATlsError) {
  const RunRecord run = probe(slapd_->port(), "tls = true\n" + trust_our_ca());
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
}

TEST(LdapProbeSlapdPlain, StartTlsRefusedBySlapdWithoutTls) {
  SKIP_ON_WINDOWS(testing::kNeedsSlapd);
  SlapdServer slapd;
  RunRecord run = probe(slapd.port(), "starttls = true\n");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
  EXPECT_EQ(run.detail.rfind("StartTLS refused: resultCode 2 (protocolError)", 0), 0u) << run.detail;
  EXPECT_EQ(fact_value(run, kResultCode, {{"operation", "starttls"}}), 2.0);
  EXPECT_FALSE(phase_seconds(run, "tls").has_value());

  run = probe(slapd.port());  // the same server answers the plain search
  EXPECT_EQ(run.reason, reason::success) << run.detail;
}

// ---- Hostile, silent and foreign peers ----------------------------------------------------

TEST(LdapProbePeers, ForeignOrMalformedAnswersAreClassified) {
  struct Case {
    std::string name;
    Bytes reply;
    std::string_view reason;
    std::string detail;
  };
  const Case cases[] = {
      {"an HTTP server", bytes("HTTP/1.1 400 Bad Request\r\n\r\n"), reason::protocol_error,
       "RootDSE search response: first byte 0x48 where an LDAPMessage starts with 0x30 (SEQUENCE) "
       "(\"HTTP/1.1 400 Bad Request\": not LDAP)"},
      {"indefinite length", Bytes{0x30, 0x80, 0x02, 0x01, 0x01}, reason::protocol_error,
       "RootDSE search response: LDAPMessage: indefinite length (0x80), which LDAP forbids (RFC 4511 5.1)"},
      {"a length over 4 bytes", Bytes{0x30, 0x88, 1, 2, 3, 4, 5, 6, 7, 8}, reason::protocol_error,
       "length in 8 bytes (0x88): more than 4"},
      {"a 2 GiB message", Bytes{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, reason::protocol_error,
       "LDAPMessage of 2147483647 bytes is over the 65536-byte limit"},
      {"an answer to another message", search_done(9, 0), reason::protocol_error,
       "RootDSE search response: an answer to message 9 where 1 was awaited"},
      {"the wrong operation", bind_response(1, 0), reason::protocol_error,
       "RootDSE search response: bindResponse (0x61) instead"},
      {"a Notice of Disconnection", ldap_message(0, tlv(0x78, result_fields(52, "shutting down"))), reason::unavailable,
       "the server disconnected (Notice of Disconnection) instead of the RootDSE search response: resultCode 52 "
       "(unavailable): shutting down"},
      {"done without an entry", search_done(1, 0), reason::ldap_error, "the RootDSE search succeeded but returned no entry"},
      {"search refused", search_done(1, 53, "no anonymous\x01"), reason::unavailable,
       "RootDSE search refused: resultCode 53 (unwillingToPerform): no anonymous\\x01"},
      {"no such object", search_done(1, 32), reason::ldap_error, "RootDSE search refused: resultCode 32 (noSuchObject)"},
      {"a malformed entry", ldap_message(1, tlv(0x64, tlv(0x04, {}))), reason::protocol_error,
       "SearchResultEntry attributes is cut off"},
  };
  for (const auto& c : cases) {
    testing::ScriptedPeer peer(as_string(c.reply));
    const RunRecord run = probe(peer.port());
    EXPECT_EQ(run.reason, c.reason) << c.name << ": " << run.detail;
    EXPECT_NE(run.detail.find(c.detail), std::string::npos) << c.name << ": " << run.detail;
  }
}

TEST(LdapProbePeers, EntryAndDoneInOneReadWithManyNamingContexts) {
  std::vector<std::string> names;
  names.reserve(12);
  for (int i = 0; i < 12; ++i) names.push_back("dc=n" + std::to_string(i + 10));
  Bytes values;
  for (const auto& name : names) values = cat({values, tlv(0x04, bytes(name))});
  const Bytes attributes = tlv84(0x30, cat({tlv(0x04, bytes("namingContexts")), tlv84(0x31, values)}));
  const Bytes entry = tlv84(0x30, cat({tlv(0x02, {1}), tlv84(0x64, cat({tlv(0x04, {}), tlv84(0x30, attributes)}))}));
  testing::ScriptedPeer peer(as_string(cat({entry, search_done(1, 0)})));
  const RunRecord run = probe(peer.port());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kNamingContexts), 12.0);
  EXPECT_EQ(fact_label(run, kRootDseInfo, "supported_ldap_versions"), "none");
  std::size_t shown = 0;
  for (const auto& fact : run.facts) shown += fact.metric == kNamingContextInfo ? 1 : 0;
  EXPECT_EQ(shown, 8u);  // capped
  EXPECT_FALSE(fact_value(run, kNamingContextInfo, {{"naming_context", "dc=n21"}}).has_value());
  EXPECT_TRUE(fact_value(run, kNamingContextInfo, {{"naming_context", "dc=n10"}}).has_value());
}

// One connection on 127.0.0.1: reads the probe's first request (framed by our framer), then
// sends `reply` one byte per segment (TCP_NODELAY), then reads what else comes until the probe
// closes. join() returns every byte the probe sent.
class ByteByBytePeer {
 public:
  explicit ByteByBytePeer(Bytes reply) : reply_(std::move(reply)) {
    const auto bound = testing::bind_loopback(SOCK_STREAM);
    fd_ = bound.fd;
    port_ = bound.port;
    if (::listen(fd_, 1) != 0) throw std::runtime_error("listen failed");
    thread_ = std::thread([this] { serve(); });
  }
  ~ByteByBytePeer() { join(); }
  std::uint16_t port() const { return port_; }
  Bytes join() {
    if (thread_.joinable()) {
      testing::shutdown_socket(fd_);  // wakes the wait for a connection when nobody came (Linux)
      thread_.join();
      testing::close_socket(fd_);
    }
    return received_;
  }

 private:
  void serve() {
    // Bounded, as Winsock's shutdown() does not wake a blocked accept() (join() without a client).
    if (!testing::wait_readable(fd_, 5000)) return;
    const int connection = testing::accept_socket(fd_);
    if (connection < 0) return;
    testing::set_no_delay(connection);
    // A probe that never sends or closes cannot hold the test.
    testing::set_receive_timeout(connection, std::chrono::seconds(5));
    std::array<std::uint8_t, 512> chunk{};
    for (;;) {
      const auto framed = ldap::frame_message(received_);
      const auto* size = std::get_if<std::optional<std::size_t>>(&framed);
      if (!size || (*size && received_.size() >= **size)) break;
      const auto got = testing::recv_bytes(connection, chunk.data(), chunk.size());
      if (got <= 0) break;
      received_.insert(received_.end(), chunk.begin(), chunk.begin() + got);
    }
    for (const std::uint8_t byte : reply_)
      if (testing::send_bytes(connection, &byte, 1) != 1) break;
    for (;;) {
      const auto got = testing::recv_bytes(connection, chunk.data(), chunk.size());
      if (got <= 0) break;
      received_.insert(received_.end(), chunk.begin(), chunk.begin() + got);
    }
    testing::close_socket(connection);
  }

  Bytes reply_;
  Bytes received_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST(LdapProbePeers, AnswersSplitAcrossSegmentsAndTheBytesTheProbeSends) {
  const Bytes entry = root_dse_entry(1, {"dc=example,dc=org"});
  ByteByBytePeer anonymous(cat({entry, search_done(1, 0)}));
  RunRecord run = probe(anonymous.port());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_label(run, kNamingContextInfo, "naming_context"), "dc=example,dc=org");
  EXPECT_EQ(fact_label(run, kRootDseInfo, "supported_ldap_versions"), "2,3");
  EXPECT_EQ(anonymous.join(), cat({ldap::encode_root_dse_search(1), ldap::encode_unbind_request(2)}));

  // With a bind, the search's answer starts arriving while the bind response is read.
  const std::string dir = testing::make_temp_dir("connectivity-ldap-peer");
  std::ofstream(dir + "/password") << "pw\n";
  ByteByBytePeer bound(cat({bind_response(1, 0), root_dse_entry(2, {"o=x"}), search_done(2, 0)}));
  run = probe(bound.port(), "bind_dn = \"cn=a\"\npassword_file = \"" + dir + "/password\"");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_label(run, kNamingContextInfo, "naming_context"), "o=x");
  EXPECT_EQ(bound.join(), cat({ldap::encode_simple_bind_request(1, "cn=a", "pw"), ldap::encode_root_dse_search(2),
                               ldap::encode_unbind_request(3)}));
}

TEST(LdapProbePeers, SilentOrStalledPeersTimeOutInTheSearch) {
  testing::ScriptedPeer silent("");
  RunRecord run = probe(silent.port(), "", "300ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_TRUE(phase_seconds(run, "search").has_value());

  const Bytes entry = root_dse_entry(1, {"dc=example,dc=org"});
  testing::ScriptedPeer stalled(as_string(Bytes(entry.begin(), entry.begin() + 20)));
  run = probe(stalled.port(), "", "300ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_LE(run.total, std::chrono::milliseconds(300) + std::chrono::seconds(1));  // cut off, not hung

  testing::ScriptedPeer no_tls_answer("");
  run = probe(no_tls_answer.port(), "starttls = true\n", "300ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_TRUE(phase_seconds(run, "starttls").has_value());
}

TEST(LdapProbePeers, ClosedOrRefusedConnections) {
  testing::RefusedPort closed;
  EXPECT_EQ(probe(closed.port()).reason, reason::refused);

  // A close before our request arrived reads as EOF (protocol_error); a close with it unread
  // makes the kernel answer with RST (reset). Both are what happened.
  testing::LoopbackListener listener;
  const RunRecord run = probe(listener.port());
  EXPECT_TRUE(run.reason == reason::protocol_error || run.reason == reason::reset) << run.reason << ": " << run.detail;
}

// ---- Config ---------------------------------------------------------------------------------

TEST(LdapProbeConfig, BadOptionsAreConfigErrorsAtTheirKey) {
  const auto error_of = [](const std::string& options) {
    return testing::config_error("ldap", "ldap.example.edu:389", options);
  };
  const std::string dir = testing::make_temp_dir("connectivity-ldap-config");
  const std::string good = dir + "/password";
  const std::string empty = dir + "/empty";
  std::ofstream(good) << "secret\n";
  std::ofstream(empty) << "\n";

  EXPECT_EQ(error_of("bind_dn = \"cn=a\"\npassword_file = \"/nonexistent/password\""),
            "test.toml:9:17: check \"t\": key \"password_file\": cannot read \"/nonexistent/password\"");
  EXPECT_EQ(error_of("bind_dn = \"cn=a\"\npassword_file = \"" + empty + "\""),
            "test.toml:9:17: check \"t\": key \"password_file\": \"" + empty +
                "\" is empty");
  EXPECT_EQ(error_of("bind_dn = \"cn=a\""), "test.toml:8:11: check \"t\": key \"bind_dn\": bind_dn and password_file go together");
  EXPECT_NE(error_of("password_file = \"" + good + "\"").find("key \"password_file\": bind_dn and password_file go together"),
            std::string::npos);
  EXPECT_NE(error_of("bind_dn = \"\"\npassword_file = \"" + good + "\"").find("key \"bind_dn\": must not be empty"),
            std::string::npos);
  EXPECT_EQ(error_of("tls = true\nstarttls = true"),
            "test.toml:9:12: check \"t\": key \"starttls\": StartTLS upgrades a plain connection: it cannot go with tls = "
            "true (LDAPS, TLS first)");
  EXPECT_EQ(error_of("ca_file = \"/etc/ssl/certs/ca-certificates.crt\""),
            "test.toml:8:11: check \"t\": key \"ca_file\": is a TLS option: it needs tls = true or starttls = true");
  EXPECT_NE(error_of("starttls = true\nca_file = \"/nonexistent.pem\"").find("key \"ca_file\": cannot load"), std::string::npos);
  EXPECT_NE(error_of("base = \"dc=example\"").find("base"), std::string::npos);  // unknown key
  EXPECT_EQ(error_of("starttls = true\nverify_hostname = false\nbind_dn = \"cn=a\"\npassword_file = \"" + good + "\""),
            "<no error>");
  EXPECT_EQ(error_of(""), "<no error>");
  std::filesystem::remove_all(dir);
}

// A simple bind over plain TCP sends the password in clear: allowed (some sites have no TLS on
// their directory), but said at load, at the key, so nobody does it by accident.
TEST(LdapProbeConfig, ACleartextBindLoadsWithAWarningAtThePasswordFile) {
  const std::string dir = testing::make_temp_dir("connectivity-ldap-cleartext");
  const std::string password = dir + "/password";
  std::ofstream(password) << "secret\n";
  const std::string bind = "bind_dn = \"cn=a\"\npassword_file = \"" + password + "\"";

  const CheckConfig plain = testing::make_check("ldap", "ldap.example.edu:389", bind);
  ASSERT_EQ(plain.warnings.size(), 1u);
  EXPECT_EQ(plain.warnings[0].where, "test.toml:9:17");
  EXPECT_EQ(plain.warnings[0].message,
            "key \"password_file\": the simple bind sends this password in clear (no tls or starttls): "
            "anyone on the path can read it");
  EXPECT_EQ(plain.warnings[0].text(), "test.toml:9:17: check \"t\": " + plain.warnings[0].message);

  EXPECT_TRUE(testing::make_check("ldap", "ldap.example.edu:389", "starttls = true\n" + bind).warnings.empty());
  EXPECT_TRUE(testing::make_check("ldap", "ldap.example.edu:636", "tls = true\n" + bind).warnings.empty());
  EXPECT_TRUE(testing::make_check("ldap", "ldap.example.edu:389").warnings.empty());  // anonymous: no password
  std::filesystem::remove_all(dir);
}

// ---- An independent decoder: tshark's LDAP dissector ----------------------------------------

TEST(LdapProbeWire, TsharkDecodesOurRequests) {
  SKIP_ON_WINDOWS(testing::kNeedsTshark);
  if (testing::shell("command -v tshark >/dev/null && command -v text2pcap >/dev/null") != 0) {
    if (std::getenv("CI")) FAIL() << "CI installs tshark (deploy/install-deps.sh --test); it is missing";  // NOLINT(concurrency-mt-unsafe)
    GTEST_SKIP() << "tshark/text2pcap not installed";
  }
  // The requests of a StartTLS + bind run, in order (the peer tests check that the probe sends
  // exactly these encodings), as text2pcap hex dumps on port 389, one segment each.
  const std::string dir = testing::make_temp_dir("ldap-wire");
  const std::shared_ptr<void> remove_dir(nullptr, [&](void*) { std::filesystem::remove_all(dir); });
  {
    std::ofstream hex(dir + "/exchange.txt");
    for (const Bytes& request : {ldap::encode_starttls_request(1), ldap::encode_simple_bind_request(2, "cn=admin,dc=example,dc=org", "secret"),
                                 ldap::encode_root_dse_search(3), ldap::encode_unbind_request(4)}) {
      hex << "I 0000";
      for (auto byte : request) {
        std::array<char, 4> text{};
        std::snprintf(text.data(), text.size(), " %02x", byte);
        hex << text.data();
      }
      hex << "\n";
    }
  }
  const std::string decoded_file = dir + "/decoded.txt";
  ASSERT_EQ(testing::shell("text2pcap -q -D -T 50000,389 " + dir + "/exchange.txt " + dir +
                           "/exchange.pcap && tshark -r " + dir + "/exchange.pcap -V -O ldap > " + decoded_file),
            0);
  std::stringstream text;
  text << std::ifstream(decoded_file).rdbuf();
  const std::string out = text.str();
  for (const char* expected :
       {"LDAPMessage extendedReq(1)", "requestName: 1.3.6.1.4.1.1466.20037 (LDAP_START_TLS_OID)",
        "LDAPMessage bindRequest(2) \"cn=admin,dc=example,dc=org\" simple", "version: 3", "simple: secret",
        "LDAPMessage searchRequest(3) \"<ROOT>\" baseObject", "scope: baseObject (0)",
        "derefAliases: neverDerefAliases (0)", "sizeLimit: 0", "timeLimit: 0", "typesOnly: False",
        "Filter: (objectClass=*)", "AttributeDescription: namingContexts", "AttributeDescription: supportedLDAPVersion",
        "LDAPMessage unbindRequest(4)"})
    EXPECT_NE(out.find(expected), std::string::npos) << "tshark did not decode \"" << expected << "\":\n" << out;
  EXPECT_EQ(out.find("Malformed"), std::string::npos) << out;
}

}  // namespace
}  // namespace connectivity

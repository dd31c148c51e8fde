// The TLS probe against real `openssl s_server` peers with certificates made for each case,
// and against hostile or silent peers.
#include "probes/tls/tls_client.h"
#include "probes/utc_time.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

namespace connectivity {
namespace {

using testing::CertFiles;
using testing::LeafSpec;
using testing::OpensslServer;
using testing::SServerOptions;
using testing::TestPki;
using testing::fact_label;
using testing::fact_value;
using testing::make_check;
using testing::run_once;

constexpr std::string_view kVerify = "connectivity_tls_verify_result";
constexpr std::string_view kNotAfter = "connectivity_tls_cert_not_after_timestamp_seconds";
constexpr std::string_view kEarliest = "connectivity_tls_earliest_cert_not_after_timestamp_seconds";
constexpr std::string_view kLeaf = "connectivity_tls_leaf_cert_info";

class TlsProbe : public ::testing::Test {
 protected:
  TestPki pki;

  std::string trust_our_ca() const { return "ca_file = \"" + pki.ca_file() + "\"\n"; }

  static SServerOptions serving(const CertFiles& cert) {
    return {.cert = cert.cert, .key = cert.key, .chain = cert.chain};
  }

  static RunRecord probe(std::uint16_t port, const std::string& options, const std::string& host = "localhost") {
    // localhost may resolve to ::1 first; the peers listen on 127.0.0.1 only.
    return run_once(make_check("tls", host + ":" + std::to_string(port), "address_family = \"ipv4\"\n" + options));
  }

  // The reason connectivity_tls_verify_result reports (the one valued 1), checking it is alone.
  static std::string verify_reason(const RunRecord& run) {
    std::string found;
    int ones = 0;
    for (const auto& fact : run.facts)
      if (fact.metric == kVerify && fact.value == 1) {
        found = fact.labels.at(0).second;
        ++ones;
      }
    return ones == 1 ? found : "<" + std::to_string(ones) + " reasons set>";
  }
};

double now_unix() { return static_cast<double>(std::time(nullptr)); }

TEST_F(TlsProbe, ValidChainVerifiesAndReportsEveryCertificate) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  const CertFiles leaf = pki.issue("valid");
  OpensslServer server(serving(leaf));
  const RunRecord run = probe(server.port(), trust_our_ca());

  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(verify_reason(run), "ok");
  EXPECT_EQ(fact_label(run, kLeaf, "fingerprint_sha256"), leaf.sha256_fingerprint);
  EXPECT_EQ(fact_label(run, kLeaf, "serial"), leaf.serial_hex);
  EXPECT_EQ(fact_label(run, kLeaf, "subject"), "CN=localhost");
  // The leaf and the CA the server sent along, each with its own expiry; the earliest is the leaf's.
  const auto leaf_expiry = fact_value(run, kNotAfter, {{"position", "0"}, {"serial", leaf.serial_hex}});
  const auto ca_expiry = fact_value(run, kNotAfter, {{"position", "1"}, {"subject", "CN=connectivity-agent test CA"}});
  ASSERT_TRUE(leaf_expiry && ca_expiry);
  EXPECT_NEAR(*leaf_expiry, now_unix() + 30 * 24 * 3600, 120);
  EXPECT_EQ(fact_value(run, kEarliest), std::min(*leaf_expiry, *ca_expiry));
  EXPECT_TRUE(fact_value(run, "connectivity_tls_version_info", {{"version", "TLSv1.3"}}));
  EXPECT_FALSE(fact_label(run, "connectivity_tls_cipher_info", "cipher").empty());
  ASSERT_TRUE(testing::phase_seconds(run, "tls"));
}

struct BadCertificateCase {
  const char* name;
  LeafSpec spec;
  bool trust_ca;
  const char* expected;
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadCertificateCase& c, std::ostream* out) { *out << c.name; }

class TlsProbeBadCertificate : public TlsProbe, public ::testing::WithParamInterface<BadCertificateCase> {};

TEST_P(TlsProbeBadCertificate, IsCertInvalidWithTheReasonAndStillReportsTheChain) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  const BadCertificateCase& c = GetParam();
  const CertFiles leaf = pki.issue(c.name, c.spec);
  OpensslServer server(serving(leaf));
  const RunRecord run = probe(server.port(), c.trust_ca ? trust_our_ca() : "");

  EXPECT_EQ(run.reason, reason::cert_invalid) << run.detail;
  EXPECT_EQ(verify_reason(run), c.expected) << run.detail;
  EXPECT_NE(run.detail.find(c.expected), std::string::npos) << run.detail;
  // The certificate is reported although it did not verify (blackbox_exporter #423/#1119).
  EXPECT_EQ(fact_label(run, kLeaf, "fingerprint_sha256"), leaf.sha256_fingerprint);
  const auto expiry = fact_value(run, kNotAfter, {{"position", "0"}});
  ASSERT_TRUE(expiry);
  EXPECT_NEAR(*expiry, now_unix() + static_cast<double>(c.spec.not_after_offset.count()), 120);
}

using std::chrono::hours;
INSTANTIATE_TEST_SUITE_P(
    Matrix, TlsProbeBadCertificate,
    ::testing::Values(
        BadCertificateCase{"expired", {.not_before_offset = -hours(48), .not_after_offset = -hours(24)}, true, "expired"},
        BadCertificateCase{"not_yet_valid", {.not_before_offset = hours(24), .not_after_offset = hours(48)}, true, "not_yet_valid"},
        BadCertificateCase{"self_signed", {.self_signed = true}, true, "self_signed"},
        BadCertificateCase{"unknown_ca", {}, false, "unknown_ca"},
        BadCertificateCase{"hostname_mismatch",
                           {.common_name = "other.example", .dns_names = {"other.example"}, .ip_addresses = {}},
                           true, "hostname_mismatch"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(TlsProbe, AnAddressTargetIsCheckedAgainstTheCertificatesIpEntries) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  OpensslServer server(serving(pki.issue("by_ip")));
  EXPECT_EQ(probe(server.port(), trust_our_ca(), "127.0.0.1").reason, reason::success);
  OpensslServer other(serving(pki.issue("other_ip", {.ip_addresses = {"192.0.2.1"}})));
  const RunRecord run = probe(other.port(), trust_our_ca(), "127.0.0.1");
  EXPECT_EQ(verify_reason(run), "hostname_mismatch") << run.detail;
}

TEST_F(TlsProbe, ServerNameOverridesTheNameChecked) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  OpensslServer server(serving(pki.issue("sni", {.common_name = "ill.example", .dns_names = {"ill.example"}})));
  const RunRecord run = probe(server.port(), trust_our_ca() + "server_name = \"ill.example\"\n");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
}

TEST_F(TlsProbe, HostnameCheckCanBeTurnedOff) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  OpensslServer server(serving(pki.issue("any_name", {.common_name = "x.example", .dns_names = {"x.example"}})));
  EXPECT_EQ(probe(server.port(), trust_our_ca() + "verify_hostname = false\n").reason, reason::success);
}

TEST_F(TlsProbe, PinnedFingerprintMustMatch) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  const CertFiles leaf = pki.issue("pinned");
  OpensslServer server(serving(leaf));
  EXPECT_EQ(probe(server.port(), trust_our_ca() + "pin_sha256 = \"" + leaf.sha256_fingerprint + "\"\n").reason,
            reason::success);

  const CertFiles swapped = pki.issue("swapped");  // same name, same CA: only the pin tells
  const RunRecord run = probe(server.port(), trust_our_ca() + "pin_sha256 = \"" + swapped.sha256_fingerprint + "\"\n");
  EXPECT_EQ(run.reason, reason::cert_invalid);
  EXPECT_EQ(verify_reason(run), "pin_mismatch");
}

TEST_F(TlsProbe, UnverifiedSelfSignedPeerPassesOnItsPin) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  const CertFiles leaf = pki.issue("internal", {.self_signed = true});
  OpensslServer server(serving(leaf));
  const RunRecord run = probe(server.port(), "verify = false\npin_sha256 = \"" + leaf.sha256_fingerprint + "\"\n");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(verify_reason(run), "ok");
}

TEST_F(TlsProbe, VersionLimitsOnEitherSide) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  const CertFiles leaf = pki.issue("versions");
  SServerOptions only12 = serving(leaf);
  only12.tls_version = "1.2";
  OpensslServer server12(only12);
  RunRecord run = probe(server12.port(), trust_our_ca());
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_TRUE(fact_value(run, "connectivity_tls_version_info", {{"version", "TLSv1.2"}}));
  run = probe(server12.port(), trust_our_ca() + "min_version = \"1.3\"\n");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;

  SServerOptions only13 = serving(leaf);
  only13.tls_version = "1.3";
  OpensslServer server13(only13);
  EXPECT_EQ(probe(server13.port(), trust_our_ca()).reason, reason::success);
  run = probe(server13.port(), trust_our_ca() + "max_version = \"1.2\"\n");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
}

TEST_F(TlsProbe, ClientCertificateRequiredIsRefusedWithoutOneAndAcceptedWithOne) {
  SKIP_ON_WINDOWS(testing::kNeedsOpensslServer);
  const CertFiles leaf = pki.issue("server");
  const CertFiles client = pki.issue("client", {.common_name = "connectivity-agent", .dns_names = {}, .ip_addresses = {}, .client = true});
  for (const char* version : {"1.2", "1.3"}) {
    SCOPED_TRACE(version);
    SServerOptions options = serving(leaf);
    options.tls_version = version;
    options.client_ca = pki.ca_file();
    OpensslServer server(options);
    const RunRecord without = probe(server.port(), trust_our_ca());
    EXPECT_EQ(without.reason, reason::tls_error) << without.detail;
    const RunRecord with = probe(server.port(), trust_our_ca() + "client_cert = \"" + client.cert + "\"\nclient_key = \"" +
                                                    client.key + "\"\n");
    EXPECT_EQ(with.reason, reason::success) << with.detail;
  }
}

TEST_F(TlsProbe, GarbageInsteadOfServerHelloIsATlsError) {
  testing::ScriptedPeer peer("HTTP/1.0 400 Bad Request\r\n\r\nthis is not TLS at all");
  const RunRecord run = probe(peer.port(), "");
  EXPECT_EQ(run.reason, reason::tls_error) << run.detail;
  EXPECT_TRUE(run.facts.empty());
}

TEST_F(TlsProbe, PeerThatClosesAtOnceIsATlsErrorOrAReset) {
  testing::LoopbackListener listener;
  // A close before our ClientHello arrived reads as EOF in the handshake (tls_error); a close
  // with it unread makes the kernel answer with RST (reset). Both are what happened.
  const RunRecord run = probe(listener.port(), "");
  EXPECT_TRUE(run.reason == reason::tls_error || run.reason == reason::reset) << run.reason << ": " << run.detail;
}

TEST_F(TlsProbe, SilentPeerTimesOutAtTheDeadlineInTheTlsPhase) {
  testing::ScriptedPeer silent("");
  const RunRecord run = run_once(make_check("tls", "127.0.0.1:" + std::to_string(silent.port()), "", "300ms"));
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  const auto tls = testing::phase_seconds(run, "tls");
  ASSERT_TRUE(tls);
  EXPECT_GT(*tls, 0.0);
  EXPECT_LE(run.total, std::chrono::milliseconds(300) + std::chrono::seconds(1));  // cut off, not hung
}

// notAfter as Unix seconds: the same as timegm, also for the year 9999 of certificates that
// never expire, past where the Windows CRT's _mkgmtime stops.
TEST(UtcTime, CalendarFieldsAndSecondsConvertBothWays) {
  for (const std::time_t seconds : {std::time_t{0}, std::time_t{951782400} /* 2000-02-29 */, std::time_t{1700000000},
                                    std::time_t{253402300799} /* 9999-12-31T23:59:59Z */})
    EXPECT_EQ(utc_seconds(utc_calendar(seconds)), seconds);
  std::tm last{};
  last.tm_year = 9999 - 1900;
  last.tm_mon = 11;
  last.tm_mday = 31;
  last.tm_hour = 23;
  last.tm_min = 59;
  last.tm_sec = 59;
  EXPECT_EQ(utc_seconds(last), std::time_t{253402300799});
  EXPECT_EQ(utc_calendar(951782400).tm_mday, 29);
}

TEST(TlsProbeConfig, BadOptionsAreConfigErrorsAtTheirKey) {
  const auto error_of = [](const std::string& options) { return testing::config_error("tls", "localhost:443", options); };
  EXPECT_EQ(error_of("ca_file = \"/nonexistent/ca.pem\"").rfind("test.toml:8:11: check \"t\": key \"ca_file\": cannot load", 0), 0u)
      << error_of("ca_file = \"/nonexistent/ca.pem\"");
  EXPECT_NE(error_of("pin_sha256 = \"abc\"").find("key \"pin_sha256\": must be a SHA-256 fingerprint"), std::string::npos);
  EXPECT_NE(error_of("min_version = \"1.4\"").find("min_version"), std::string::npos);
  EXPECT_NE(error_of("min_version = \"1.3\"\nmax_version = \"1.2\"").find("key \"max_version\": is lower than min_version"),
            std::string::npos);
  EXPECT_NE(error_of("client_cert = \"/tmp/x.pem\"").find("client_cert and client_key go together"), std::string::npos);
  EXPECT_NE(error_of("verify_peer = true").find("verify_peer"), std::string::npos);
}

}  // namespace
}  // namespace connectivity

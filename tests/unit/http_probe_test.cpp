// The HTTP probe against real peers on loopback: nginx (plain and TLS), tinyproxy as the
// campus CONNECT proxy, and silent or hostile peers for the failure cases.
#include "probes/http/http_probe.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/run_once.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace connectivity {
namespace {

using testing::fact_value;
using testing::make_check;
using testing::NginxServer;
using testing::phase_seconds;
using testing::run_once;

constexpr std::string_view kStatus = "connectivity_http_status_code";
constexpr std::string_view kRedirects = "connectivity_http_redirects";

// The locations every test shares. `absolute_redirect off` makes nginx send a relative
// Location, so both forms are exercised.
const std::string kSite = R"(
  location = /ok { return 200 "library catalogue ok\n"; }
  location = /r1 { return 302 /r2; }
  location = /r2 { absolute_redirect off; return 302 /ok; }
  location = /loop { return 302 /loop; }
  location = /nowhere { return 302 "gopher://example/"; }
  location = /see-other { return 303 /method; }
  location = /method { return 200 "method=$request_method\n"; }
  location = /missing { return 404; }
  location = /broken { return 500; }
  location = /slow.bin { limit_rate 1k; }
  location /private/ { auth_basic "ILLiad"; auth_basic_user_file $ROOT/htpasswd; }
  location = /htpasswd { deny all; }
)";

std::map<std::string, std::string> site_files() {
  return {{"big.bin", std::string(2 * 1024 * 1024, 'x')},
          {"slow.bin", std::string(64 * 1024, 's')},
          {"private/ok.txt", "patron api ok\n"},
          {"htpasswd", "illiad:{PLAIN}s3cret\n"}};
}

class HttpProbe : public ::testing::Test {
 protected:
  NginxServer nginx{kSite, site_files()};

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(nginx.port()) + path; }

  static RunRecord probe(const std::string& target, const std::string& options = "", const std::string& timeout = "2s") {
    // localhost may resolve to ::1 first; the peers listen on 127.0.0.1 only.
    return run_once(make_check("http", target, "address_family = \"ipv4\"\n" + options, timeout));
  }
};

TEST_F(HttpProbe, OkWithEveryPhaseAndTheStatus) {
  const RunRecord run = probe(url("/ok"), "body_regex = \"catalogue ok\"");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kStatus), 200);
  EXPECT_EQ(fact_value(run, kRedirects), 0);
  EXPECT_EQ(fact_value(run, "connectivity_http_body_bytes"), 21);
  for (const char* phase : {"resolve", "connect", "request", "transfer"}) EXPECT_TRUE(phase_seconds(run, phase)) << phase;
  EXPECT_FALSE(phase_seconds(run, "tls"));
}

TEST_F(HttpProbe, BodyRegexesDecide) {
  EXPECT_EQ(probe(url("/ok"), "body_regex = \"^maintenance\"").reason, reason::body_mismatch);
  EXPECT_EQ(probe(url("/ok"), "body_must_not_match = \"catalogue\"").reason, reason::body_mismatch);
  EXPECT_EQ(probe(url("/ok"), "body_must_not_match = \"error\"").reason, reason::success);
}

TEST_F(HttpProbe, FollowsARedirectChainAbsoluteAndRelative) {
  const RunRecord run = probe(url("/r1"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kRedirects), 2);
  EXPECT_EQ(fact_value(run, kStatus), 200);
  // Each hop connected anew, and the connect phase adds them up.
  ASSERT_EQ(std::count_if(run.phases.begin(), run.phases.end(), [](const auto& p) { return p.name == "connect"; }), 3);
}

TEST_F(HttpProbe, RedirectLimits) {
  RunRecord run = probe(url("/r1"), "max_redirects = 1");
  EXPECT_EQ(run.reason, reason::too_many_redirects) << run.detail;
  EXPECT_EQ(fact_value(run, kStatus), 302);
  EXPECT_EQ(probe(url("/loop")).reason, reason::too_many_redirects);
  // Not following: the 302 itself is the answer, and 3xx is accepted by default.
  run = probe(url("/r1"), "max_redirects = 0");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kStatus), 302);
  EXPECT_EQ(probe(url("/nowhere")).reason, reason::protocol_error);
}

TEST_F(HttpProbe, SeeOtherTurnsAPostIntoAGet) {
  const RunRecord run = probe(url("/see-other"), "method = \"POST\"\nbody = \"x=1\"\nbody_regex = \"method=GET\"");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(probe(url("/method"), "method = \"HEAD\"").reason, reason::success);
}

TEST_F(HttpProbe, StatusCodesOutsideTheValidSetFail) {
  RunRecord run = probe(url("/missing"));
  EXPECT_EQ(run.reason, reason::http_status);
  EXPECT_EQ(fact_value(run, kStatus), 404);
  EXPECT_EQ(probe(url("/broken")).reason, reason::http_status);
  EXPECT_EQ(probe(url("/missing"), "valid_status_codes = [404]").reason, reason::success);
  EXPECT_EQ(probe(url("/broken"), "valid_status_codes = [\"2xx\", \"5xx\"]").reason, reason::success);
  EXPECT_EQ(probe(url("/ok"), "valid_status_codes = [\"3xx\"]").reason, reason::http_status);
}

TEST_F(HttpProbe, OversizedBodyIsCutAtTheCap) {
  EXPECT_EQ(probe(url("/big.bin")).reason, reason::body_too_large);
  EXPECT_EQ(probe(url("/big.bin"), "max_body_bytes = 3000000").reason, reason::success);
}

TEST_F(HttpProbe, SlowBodyTimesOutInTheTransferPhase) {
  const RunRecord run = probe(url("/slow.bin"), "", "500ms");
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_TRUE(phase_seconds(run, "transfer"));
}

TEST_F(HttpProbe, BasicAuthFromAFile) {
  EXPECT_EQ(fact_value(probe(url("/private/ok.txt")), kStatus), 401);
  const std::string password_file = ::testing::TempDir() + "/http_probe_password";
  std::ofstream(password_file) << "s3cret\n";
  const RunRecord run = probe(url("/private/ok.txt"),
                              "basic_auth_user = \"illiad\"\nbasic_auth_password_file = \"" + password_file + "\"");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  std::filesystem::remove(password_file);
}

TEST(HttpProbeSilentPeer, AcceptsAndNeverAnswersTimesOutAtTheDeadline) {
  testing::ScriptedPeer silent("");
  const RunRecord run = run_once(make_check("http", "http://127.0.0.1:" + std::to_string(silent.port()) + "/", "", "300ms"));
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_TRUE(phase_seconds(run, "request"));
  EXPECT_LE(run.total, std::chrono::milliseconds(1300));
}

TEST(HttpProbeHostilePeer, GarbageAndTruncationAreClassified) {
  // The peer holds the connection open after its reply: a truncated body ends at the deadline,
  // anything unparseable is refused as soon as it is read.
  const std::pair<const char*, std::string_view> cases[] = {
      {"SSH-2.0-OpenSSH_9.2\r\n", reason::protocol_error},
      {"HTTP/1.1 2000 Huge\r\n\r\n", reason::protocol_error},
      {"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", reason::protocol_error},
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", reason::timeout},
  };
  for (const auto& [reply, expected] : cases) {
    SCOPED_TRACE(reply);
    testing::ScriptedPeer peer(reply);
    const RunRecord run = run_once(make_check("http", "http://127.0.0.1:" + std::to_string(peer.port()) + "/", "", "500ms"));
    EXPECT_EQ(run.reason, expected) << run.detail;
  }
  std::string endless_header = "HTTP/1.1 200 OK\r\n";
  while (endless_header.size() < 100 * 1024) endless_header += "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  testing::ScriptedPeer flood(endless_header);
  EXPECT_EQ(run_once(make_check("http", "http://127.0.0.1:" + std::to_string(flood.port()) + "/")).reason,
            reason::protocol_error);
  // Closed before the request arrived: EOF where the header should be; with it unread: RST.
  testing::LoopbackListener closes_at_once;
  const RunRecord run = run_once(make_check("http", "http://127.0.0.1:" + std::to_string(closes_at_once.port()) + "/"));
  EXPECT_TRUE(run.reason == reason::protocol_error || run.reason == reason::reset) << run.reason << ": " << run.detail;
}

class HttpsProbe : public ::testing::Test {
 protected:
  testing::TestPki pki;
  std::string trust() const { return "address_family = \"ipv4\"\nca_file = \"" + pki.ca_file() + "\"\n"; }
};

TEST_F(HttpsProbe, ValidCertificateGivesTlsFactsAndTheStatus) {
  const auto leaf = pki.issue("web");
  NginxServer nginx(kSite, site_files(), leaf.chain, leaf.key);
  const RunRecord run = run_once(make_check("http", "https://localhost:" + std::to_string(nginx.port()) + "/r1", trust()));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, kRedirects), 2);
  EXPECT_EQ(testing::fact_label(run, "connectivity_tls_leaf_cert_info", "fingerprint_sha256"), leaf.sha256_fingerprint);
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "ok"}}), 1);
  EXPECT_TRUE(phase_seconds(run, "tls"));
}

TEST_F(HttpsProbe, ExpiredCertificateIsCertInvalidWithItsExpiry) {
  const auto leaf = pki.issue("expired", {.not_before_offset = std::chrono::hours(-48), .not_after_offset = std::chrono::hours(-1)});
  NginxServer nginx(kSite, site_files(), leaf.chain, leaf.key);
  const RunRecord run = run_once(make_check("http", "https://localhost:" + std::to_string(nginx.port()) + "/ok", trust()));
  EXPECT_EQ(run.reason, reason::cert_invalid) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "expired"}}), 1);
  EXPECT_TRUE(fact_value(run, "connectivity_tls_cert_not_after_timestamp_seconds", {{"position", "0"}}));
  EXPECT_FALSE(fact_value(run, kStatus));  // no request is sent to a server that failed verification
}

// tinyproxy, the campus proxy: CONNECT for https, absolute-form requests for http.
class Tinyproxy {
 public:
  explicit Tinyproxy(const std::string& extra = "") : port_(testing::free_loopback_port()) {
    dir_ = testing::make_temp_dir("connectivity-tinyproxy");
    std::ofstream(dir_ + "/tinyproxy.conf") << "Port " << port_ << "\nListen 127.0.0.1\nTimeout 10\nMaxClients 16\n"
                                            << "Allow 127.0.0.1\nLogLevel Info\n" << extra;
    process_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"tinyproxy", "-d", "-c", dir_ + "/tinyproxy.conf"}, dir_ + "/log");
    if (!testing::wait_until_listening(port_)) throw std::runtime_error("tinyproxy did not start: " + process_->log());
  }
  ~Tinyproxy() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::uint16_t port_;
  std::string dir_;
  std::unique_ptr<testing::ChildProcess> process_;
};

TEST_F(HttpsProbe, ThroughAConnectProxy) {
  const auto leaf = pki.issue("behind-proxy");
  NginxServer nginx(kSite, site_files(), leaf.chain, leaf.key);
  NginxServer plain(kSite, site_files());
  Tinyproxy proxy;
  const std::string via = "proxy = \"" + proxy.url() + "\"\n";

  RunRecord run = run_once(make_check("http", "https://localhost:" + std::to_string(nginx.port()) + "/ok", trust() + via));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_tls_verify_result", {{"reason", "ok"}}), 1);
  run = run_once(make_check("http", "http://127.0.0.1:" + std::to_string(plain.port()) + "/r1", trust() + via));
  EXPECT_EQ(run.reason, reason::success) << run.detail;

  Tinyproxy strict("ConnectPort 443\n");  // refuses tunnels to any other port
  run = run_once(make_check("http", "https://localhost:" + std::to_string(nginx.port()) + "/ok",
                            trust() + "proxy = \"" + strict.url() + "\"\n"));
  EXPECT_EQ(run.reason, reason::proxy_error) << run.detail;
  testing::RefusedPort no_proxy;
  run = run_once(make_check("http", "https://localhost:" + std::to_string(nginx.port()) + "/ok",
                            trust() + "proxy = \"http://127.0.0.1:" + std::to_string(no_proxy.port()) + "\"\n"));
  EXPECT_EQ(run.reason, reason::refused);
  EXPECT_NE(run.detail.find("proxy"), std::string::npos) << run.detail;
}

TEST(HttpRedirect, LocationForms) {
  const Target from = parse_url_target("https://ill.example.edu:8443/illiad/logon.html?x=1");
  EXPECT_EQ(resolve_redirect(from, "http://other.example/a").to_string(), "http://other.example/a");
  EXPECT_EQ(resolve_redirect(from, "//cdn.example/b").to_string(), "https://cdn.example/b");
  EXPECT_EQ(resolve_redirect(from, "/root?q").to_string(), "https://ill.example.edu:8443/root?q");
  EXPECT_EQ(resolve_redirect(from, "next.html").to_string(), "https://ill.example.edu:8443/illiad/next.html");
  const Target v6 = parse_url_target("http://[::1]:8080/x/y");
  EXPECT_EQ(resolve_redirect(v6, "z").to_string(), "http://[::1]:8080/x/z");
  EXPECT_THROW(resolve_redirect(from, "ftp://files.example/"), std::invalid_argument);
  EXPECT_THROW(resolve_redirect(from, "https://user:pw@host/"), std::invalid_argument);
}

TEST(HttpProbeConfig, UrlTargetsAndBadOptions) {
  const CheckConfig check = make_check("http", "https://ill.sd00.worldcat.org/articleexchange/");
  EXPECT_EQ(check.target.host, "ill.sd00.worldcat.org");
  EXPECT_EQ(check.target.port, 443);
  EXPECT_EQ(check.target.path, "/articleexchange/");
  EXPECT_EQ(check.target.to_string(), "https://ill.sd00.worldcat.org/articleexchange/");
  EXPECT_EQ(make_check("http", "http://patronapi.example.edu:4500").target.path, "/");

  const auto error_of = [](const std::string& target, const std::string& options) {
    return testing::config_error("http", target, options);
  };
  EXPECT_NE(error_of("webservices.oclc.org:443", "").find("test.toml:4:10: check \"t\": key \"target\": bad target"),
            std::string::npos)
      << error_of("webservices.oclc.org:443", "");
  EXPECT_NE(error_of("https://u:p@host/", "").find("credentials do not belong in a URL"), std::string::npos);
  EXPECT_NE(error_of("https://h/", "body_regex = \"(unclosed\"").find("key \"body_regex\": not a valid regular expression"),
            std::string::npos);
  EXPECT_NE(error_of("https://h/", "valid_status_codes = [200, 700]").find("test.toml:8:28"), std::string::npos)
      << error_of("https://h/", "valid_status_codes = [200, 700]");
  EXPECT_NE(error_of("https://h/", "basic_auth_user = \"u\"\nbasic_auth_password_file = \"/nonexistent\"")
                .find("key \"basic_auth_password_file\": cannot read"),
            std::string::npos);
  EXPECT_NE(error_of("https://h/", "proxy = \"https://proxy:3128\"").find("must be an http:// URL"), std::string::npos);
  EXPECT_NE(error_of("https://h/", "method = \"TRACE\"").find("key \"method\""), std::string::npos);
  EXPECT_NE(error_of("https://h/", "headers = { \"Bad Name\" = \"x\" }").find("headers.Bad Name"), std::string::npos);
  EXPECT_NE(error_of("https://h/", "max_redirects = -1").find("key \"max_redirects\""), std::string::npos);
}

}  // namespace
}  // namespace connectivity

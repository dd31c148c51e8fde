// The Z39.50 probe: the BER framer and the codec against byte layouts from Z39.50-2003 (as
// yaz-ztest 5.34 accepts them), and the probe against a real yaz-ztest on
// loopback, plus scripted peers for what a real target should never do (garbage, silence,
// close, rejection, Close instead of an InitializeResponse).
#include "probes/ber/ber_frame.h"
#include "probes/z3950/z3950_codec.h"
#include "probes/z3950/z3950_probe.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

namespace connectivity {
namespace {

using testing::fact_label;
using testing::fact_value;
using testing::make_check;
using testing::phase_seconds;
using testing::run_once;
using Bytes = std::vector<std::uint8_t>;

constexpr std::string_view kInfo = "connectivity_z3950_info";

Bytes bytes_of(std::string_view text) { return Bytes(text.begin(), text.end()); }

std::string frame_text(const ber::Frame& frame) {
  if (std::holds_alternative<ber::NeedMore>(frame)) return "need more";
  if (const auto* complete = std::get_if<ber::Complete>(&frame)) return "complete " + std::to_string(complete->size);
  return "invalid: " + std::get<ber::Invalid>(frame).why;
}

// ---- The BER framer ---------------------------------------------------------------------

TEST(BerFrame, DefiniteShortAndLongLengths) {
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0xb5, 0x03, 0x8c, 0x01, 0x01})), "complete 5");
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0xb5, 0x03, 0x8c, 0x01, 0x01, 0xb5})), "complete 5");  // next one waits
  Bytes long_form = {0xb5, 0x82, 0x01, 0x00};
  long_form.resize(4 + 256, 0x00);
  EXPECT_EQ(frame_text(ber::frame_message(long_form)), "complete 260");
  Bytes four_octets = {0xb5, 0x84, 0x00, 0x00, 0x00, 0x02, 0x8c, 0x00};
  EXPECT_EQ(frame_text(ber::frame_message(four_octets)), "complete 8");
}

TEST(BerFrame, EveryPrefixOfAMessageNeedsMore) {
  // Indefinite length with a nested indefinite value and a high tag number ([211]), as yaz emits.
  const Bytes message = {0xbf, 0x30, 0x80, 0xa1, 0x80, 0x9f, 0x81, 0x53, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
  for (std::size_t size = 0; size < message.size(); ++size)
    EXPECT_EQ(frame_text(ber::frame_message(std::span(message).first(size))), "need more") << size;
  EXPECT_EQ(frame_text(ber::frame_message(message)), "complete 14");
}

TEST(BerFrame, RefusesWhatCanNeverBeAMessage) {
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0xb5, 0x85, 0, 0, 0, 0, 1})), "invalid: length in 5 octets (at most 4 accepted)");
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0xb5, 0xff})), "invalid: reserved length octet 0xff");
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0x85, 0x80, 0x00, 0x00})), "invalid: indefinite length on a primitive value");
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0x9f, 0x80, 0x01})), "invalid: tag number with a leading zero octet");
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0xbf, 0x81, 0x81, 0x81, 0x81, 0x01})), "invalid: tag number longer than 4 octets");
  // A length far beyond what was sent is refused at once rather than waited for.
  EXPECT_EQ(frame_text(ber::frame_message(Bytes{0xb5, 0x84, 0x7f, 0xff, 0xff, 0xff})),
            "invalid: message of 2147483653 bytes, over the limit of 1048576");
  Bytes deep;
  for (int i = 0; i < 40; ++i) deep.insert(deep.end(), {0xa0, 0x80});
  EXPECT_EQ(frame_text(ber::frame_message(deep)), "invalid: nested deeper than 32 levels");
}

// ---- The codec ----------------------------------------------------------------------------

TEST(Z3950Codec, InitRequestIsTheLayoutYazZtestAccepts) {
  const Bytes request = z3950::encode_init_request({});
  // [20] constructed; versions 1-3 (00 e0), options search+present (00 c0), 1 MiB sizes.
  const Bytes start = {0xb4, static_cast<std::uint8_t>(request.size() - 2), 0x83, 0x02, 0x00, 0xe0, 0x84, 0x02, 0x00, 0xc0,
                       0x85, 0x03, 0x10, 0x00, 0x00, 0x86, 0x03, 0x10, 0x00, 0x00, 0x9f, 0x6e, 0x12};
  ASSERT_GE(request.size(), start.size());
  EXPECT_EQ(Bytes(request.begin(), request.begin() + static_cast<std::ptrdiff_t>(start.size())), start);
  EXPECT_EQ(frame_text(ber::frame_message(request)), "complete " + std::to_string(request.size()));
  const std::string text(request.begin(), request.end());
  EXPECT_NE(text.find("connectivity-agent"), std::string::npos);
}

TEST(Z3950Codec, InitRequestCarriesCredentials) {
  z3950::Credentials id_pass{z3950::Credentials::Kind::id_pass, "", "grp", "illuser", "s3cret"};
  const Bytes with_pass = z3950::encode_init_request(id_pass);
  const std::string text(with_pass.begin(), with_pass.end());
  // idAuthentication [7] EXPLICIT, idPass [1]: groupId [0], userId [1], password [2].
  EXPECT_NE(text.find(std::string("\x80\x03grp\x81\x07illuser\x82\x06s3cret", 20)), std::string::npos);
  z3950::Credentials open{z3950::Credentials::Kind::open, "user/pass", "", "", ""};
  const Bytes with_open = z3950::encode_init_request(open);
  EXPECT_NE(std::string(with_open.begin(), with_open.end()).find("\x1a\x09user/pass"), std::string::npos);
}

TEST(Z3950Codec, CloseIsFinished) {
  // closeReason [211] finished: bf 30 05 9f 81 53 01 00 (accepted by yaz-ztest 5.34).
  EXPECT_EQ(z3950::encode_close(), (Bytes{0xbf, 0x30, 0x05, 0x9f, 0x81, 0x53, 0x01, 0x00}));
}

TEST(Z3950Codec, SearchRequestRefusesABadQuery) {
  std::string error;
  EXPECT_FALSE(z3950::encode_search_request("Default", "@attr 1=7", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_TRUE(z3950::encode_search_request("Default", "@attr 1=7 9780262033848", &error));
}

// A rejected InitializeResponse laid out by hand: result [12] FALSE, implementationName [111].
const Bytes kRejectedInit = {0xb5, 0x1c, 0x83, 0x02, 0x00, 0xe0, 0x84, 0x02, 0x00, 0xc0, 0x85, 0x03, 0x10, 0x00,
                             0x00, 0x86, 0x03, 0x10, 0x00, 0x00, 0x8c, 0x01, 0x00, 0x9f, 0x6f, 0x04, 'T',  'e',  's', 't'};

TEST(Z3950Codec, DecodesARejectedInitResponse) {
  ASSERT_EQ(kRejectedInit.size(), 2u + 0x1c);
  auto response = z3950::decode_response(kRejectedInit);
  const auto* init = std::get_if<z3950::InitResponse>(&response);
  ASSERT_TRUE(init);
  EXPECT_FALSE(init->accepted);
  EXPECT_EQ(init->implementation_name, "Test");
  EXPECT_EQ(init->protocol_versions, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(init->options, (std::vector<std::string>{"search", "present"}));
}

TEST(Z3950Codec, GarbageIsADecodeErrorNotACrash) {
  for (const Bytes& garbage : {Bytes{}, Bytes{0xb5, 0x03, 0x01, 0x01, 0x01}, Bytes{0xb5, 0x00}, bytes_of("HTTP/1.1 400")}) {
    auto response = z3950::decode_response(garbage);
    EXPECT_TRUE(std::holds_alternative<z3950::DecodeError>(response) || std::holds_alternative<z3950::InitResponse>(response));
  }
  EXPECT_TRUE(std::holds_alternative<z3950::DecodeError>(z3950::decode_response(bytes_of("HTTP/1.1 400"))));
}

TEST(Z3950Codec, AConstructedStringNeverReachesLibyaz) {
  // Close with diagnosticInformation [3] in constructed form: libyaz 5.34 writes through a null
  // pointer decoding it (our fuzz target found it). Refused before decoding, whatever the form.
  for (const char* hex : {"bf300c9f81530105a3800401410000", "bf30079f81530105a300", "bf300a9f81530105a303040141"}) {
    Bytes apdu;
    for (const char* at = hex; at[0] && at[1]; at += 2) apdu.push_back(static_cast<std::uint8_t>(std::stoi(std::string(at, 2), nullptr, 16)));
    ASSERT_EQ(frame_text(ber::frame_message(apdu)), "complete " + std::to_string(apdu.size())) << hex;
    auto response = z3950::decode_response(apdu);
    ASSERT_TRUE(std::holds_alternative<z3950::DecodeError>(response)) << hex;
    EXPECT_EQ(std::get<z3950::DecodeError>(response).what,
              "not a Z39.50 APDU we can decode: a string in constructed (segmented) form, which libyaz 5.34 cannot decode safely");
  }
}

TEST(BerFrame, TheLibyazScreenLetsOrdinaryApdusThrough) {
  EXPECT_EQ(ber::refuse_for_libyaz(kRejectedInit), std::nullopt);
  EXPECT_EQ(ber::refuse_for_libyaz(z3950::encode_init_request({})), std::nullopt);
  EXPECT_EQ(ber::refuse_for_libyaz(z3950::encode_close()), std::nullopt);
  // An inner value that runs past its parent, and bytes after the message.
  EXPECT_EQ(ber::refuse_for_libyaz(Bytes{0xb5, 0x03, 0x8c, 0x05, 0x01}), "a value runs past the end of its parent");
  EXPECT_EQ(ber::refuse_for_libyaz(Bytes{0xb5, 0x03, 0x8c, 0x01, 0x01, 0x00}), "bytes after the end of the message");
}

TEST(Z3950Codec, PeerTextIsBoundedAndEscaped) {
  Bytes body = {0x83, 0x02, 0x00, 0xe0, 0x84, 0x02, 0x00, 0xc0, 0x85, 0x03, 0x10, 0x00, 0x00,
                0x86, 0x03, 0x10, 0x00, 0x00, 0x8c, 0x01, 0xff, 0x9f, 0x6f, 0x82, 0x01, 0x2c};
  body.push_back(0x07);  // a control character first, then 299 letters
  body.insert(body.end(), 299, 'x');
  Bytes response = {0xb5, 0x82, static_cast<std::uint8_t>(body.size() >> 8), static_cast<std::uint8_t>(body.size() & 0xff)};
  response.insert(response.end(), body.begin(), body.end());
  auto decoded = z3950::decode_response(response);
  const auto* init = std::get_if<z3950::InitResponse>(&decoded);
  ASSERT_TRUE(init) << std::get<z3950::DecodeError>(decoded).what;
  EXPECT_TRUE(init->accepted);
  EXPECT_EQ(init->implementation_name.substr(0, 5), "\\x07x");
  EXPECT_EQ(init->implementation_name.size(), 256u);
}

// ---- The probe against a real yaz-ztest --------------------------------------------------

class YazZtest {
 public:
  YazZtest() : dir_(testing::make_temp_dir("ztest")), port_(testing::free_loopback_port()) {
    process_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"yaz-ztest", "-l", dir_ + "/ztest.log", "tcp:127.0.0.1:" + std::to_string(port_)},
        dir_ + "/stderr.log");
    if (!testing::wait_until_listening(port_)) throw std::runtime_error("yaz-ztest did not start: " + process_->log());
  }
  ~YazZtest() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(dir_ + "/ztest.log");
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  std::string dir_;
  std::uint16_t port_;
  std::unique_ptr<testing::ChildProcess> process_;
};

class Z3950Probe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SKIP_ON_WINDOWS(testing::kNeedsYazZtest);
    if (std::system("command -v yaz-ztest > /dev/null") != 0) GTEST_SKIP() << "yaz-ztest is not installed (package yaz)";
    server_ = new YazZtest;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  // Again per test: gtest 1.12 runs a suite's tests after its SetUpTestSuite skipped.
  void SetUp() override {
    SKIP_ON_WINDOWS(testing::kNeedsYazZtest);
    if (server_ == nullptr) GTEST_SKIP() << "yaz-ztest is not installed (package yaz)";
  }
  static RunRecord probe(const std::string& options = "", const std::string& timeout = "3s") {
    return run_once(make_check("z3950", server_->target(), options, timeout));
  }
  static YazZtest* server_;
};
YazZtest* Z3950Probe::server_ = nullptr;

TEST_F(Z3950Probe, InitAcceptedByYazZtest) {
  const RunRecord run = probe();
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_label(run, kInfo, "implementation_name"), "GFS/YAZ");
  EXPECT_EQ(fact_label(run, kInfo, "implementation_id"), "81");
  EXPECT_EQ(fact_label(run, kInfo, "implementation_version").substr(0, 5), "5.34.");
  EXPECT_EQ(fact_label(run, kInfo, "protocol_version"), "3");
  EXPECT_EQ(fact_label(run, kInfo, "options"), "search,present");
  EXPECT_TRUE(phase_seconds(run, "init"));
  EXPECT_FALSE(phase_seconds(run, "search"));
  EXPECT_NE(server_->log().find("connectivity-agent"), std::string::npos) << "the target's log names who called";
}

TEST_F(Z3950Probe, SearchReportsTheHitCount) {
  // yaz-ztest answers a numeric term with that many hits.
  const RunRecord run = probe("database = \"Default\"\nquery = \"@attr 1=7 42\"");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  EXPECT_EQ(fact_value(run, "connectivity_z3950_search_hits", {{"database", "Default"}}), 42);
  EXPECT_TRUE(phase_seconds(run, "search"));
}

TEST_F(Z3950Probe, AMissingDatabaseIsASearchFailureWithItsDiagnostic) {
  const RunRecord run = probe("database = \"Gone\"\nquery = \"42\"");
  EXPECT_EQ(run.reason, reason::search_failed);
  EXPECT_EQ(run.detail, "search in Gone failed: diagnostic 109 (Database unavailable: Gone)");
  EXPECT_EQ(fact_label(run, kInfo, "implementation_name"), "GFS/YAZ") << "Init facts stay when the search fails";
}

TEST_F(Z3950Probe, FewerHitsThanExpectedIsASearchFailure) {
  RunRecord run = probe("database = \"Default\"\nquery = \"0\"");
  EXPECT_EQ(run.reason, reason::search_failed);
  EXPECT_EQ(run.detail, "search in Default found 0 records, fewer than min_hits 1");
  EXPECT_EQ(fact_value(run, "connectivity_z3950_search_hits", {{"database", "Default"}}), 0);
  run = probe("database = \"Default\"\nquery = \"0\"\nmin_hits = 0");
  EXPECT_EQ(run.reason, reason::success) << run.detail;
}

TEST_F(Z3950Probe, SendsCredentials) {
  const auto dir = testing::make_temp_dir("z3950-auth");
  std::ofstream(dir + "/password") << "s3cret\n";
  const RunRecord run = probe("user = \"illuser\"\npassword_file = \"" + dir + "/password\"");
  EXPECT_EQ(run.reason, reason::success) << run.detail;  // yaz-ztest accepts any credentials
  std::filesystem::remove_all(dir);
}

// ---- Peers that are not (good) Z39.50 targets ---------------------------------------------

RunRecord probe_peer(std::uint16_t port, const std::string& timeout = "2s") {
  return run_once(make_check("z3950", "127.0.0.1:" + std::to_string(port), "", timeout));
}

TEST(Z3950ProbePeers, ATargetThatRejectsInit) {
  testing::ScriptedPeer peer(std::string(kRejectedInit.begin(), kRejectedInit.end()));
  const RunRecord run = probe_peer(peer.port());
  EXPECT_EQ(run.reason, reason::rejected);
  EXPECT_EQ(run.detail, "the target rejected the Init");
  EXPECT_EQ(fact_label(run, kInfo, "implementation_name"), "Test");
}

TEST(Z3950ProbePeers, ATargetThatClosesInsteadOfAnswering) {
  // Close, closeReason [211] systemProblem (2), diagnosticInformation [3] "busy".
  testing::ScriptedPeer peer(std::string("\xbf\x30\x0b\x9f\x81\x53\x01\x02\x83\x04" "busy", 14));
  const RunRecord run = probe_peer(peer.port());
  EXPECT_EQ(run.reason, reason::rejected);
  EXPECT_EQ(run.detail, "the target answered with Close (systemProblem: busy) instead of an InitializeResponse");
}

TEST(Z3950ProbePeers, ATargetThatClosesRightAfterConnect) {
  testing::LoopbackListener listener;
  const RunRecord run = probe_peer(listener.port());
  EXPECT_TRUE(run.reason == reason::protocol_error || run.reason == reason::reset) << run.reason << ": " << run.detail;
  if (run.reason == reason::protocol_error) {
    EXPECT_EQ(run.detail, "connection closed without a Z39.50 APDU");
  }
}

TEST(Z3950ProbePeers, GarbageIsAProtocolError) {
  testing::ScriptedPeer http("HTTP/1.1 400 Bad Request\r\n\r\n");
  RunRecord run = probe_peer(http.port());
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail, "the reply starts with byte 0x48, which no Z39.50 APDU does (\"HTTP/1.1 400 Bad Request\": not Z39.50)");

  testing::ScriptedPeer undecodable(std::string("\xb5\x03\x01\x01\x01", 5));
  run = probe_peer(undecodable.port());
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail.find("not a Z39.50 APDU ("), 0u) << run.detail;

  // A Close with a segmented string: would crash libyaz, is a protocol_error here.
  testing::ScriptedPeer segmented(std::string("\xbf\x30\x0c\x9f\x81\x53\x01\x05\xa3\x80\x04\x01\x41\x00\x00", 15));
  run = probe_peer(segmented.port());
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_NE(run.detail.find("constructed (segmented) form"), std::string::npos) << run.detail;

  testing::ScriptedPeer huge(std::string("\xb5\x84\x7f\xff\xff\xff", 6));
  run = probe_peer(huge.port());
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail, "the reply is not a Z39.50 APDU: message of 2147483653 bytes, over the limit of 1048576");
}

TEST(Z3950ProbePeers, HalfAnAnswer) {
  const std::string half("\xb5\x20\x83\x02", 4);
  testing::ScriptedPeer then_end(half, /*end_after_reply=*/true);
  RunRecord run = probe_peer(then_end.port());
  EXPECT_EQ(run.reason, reason::protocol_error);
  EXPECT_EQ(run.detail, "connection closed inside a Z39.50 APDU, after 4 bytes");

  testing::ScriptedPeer then_wait(half);
  run = probe_peer(then_wait.port(), "1s");
  EXPECT_EQ(run.reason, reason::timeout);
  EXPECT_TRUE(phase_seconds(run, "init"));
}

TEST(Z3950ProbePeers, ATargetThatNeverAnswersTimesOutInInit) {
  testing::ScriptedPeer silent("");
  const RunRecord run = probe_peer(silent.port(), "1s");
  EXPECT_EQ(run.reason, reason::timeout);
  EXPECT_TRUE(phase_seconds(run, "init"));
}

// ---- Config ------------------------------------------------------------------------------

TEST(Z3950Config, ErrorsPointAtTheKey) {
  using testing::config_error;
  EXPECT_NE(config_error("z3950", "h:210", "query = \"42\"").find("test.toml:8:9: check \"t\": key \"query\": the search step needs both"),
            std::string::npos)
      << config_error("z3950", "h:210", "query = \"42\"");
  EXPECT_NE(config_error("z3950", "h:210", "database = \"D\"\nquery = \"@attr 1=7\"").find("key \"query\": is not a PQF query"),
            std::string::npos);
  EXPECT_NE(config_error("z3950", "h:210", "min_hits = 2").find("key \"min_hits\": only applies with a search"), std::string::npos);
  EXPECT_NE(config_error("z3950", "h:210", "database = \"D\"\nquery = \"1\"\nmin_hits = -1").find("must be an integer, 0 or more"),
            std::string::npos);
  EXPECT_NE(config_error("z3950", "h:210", "user = \"u\"").find("key \"user\": user and password_file go together"),
            std::string::npos);
  EXPECT_NE(config_error("z3950", "h:210", "user = \"u\"\npassword_file = \"/nonexistent\"").find("key \"password_file\": cannot read"),
            std::string::npos);
  EXPECT_NE(config_error("z3950", "h:210", "open_auth = \"x\"\nuser = \"u\"").find("choose one"), std::string::npos);
  EXPECT_NE(config_error("z3950", "h:210", "databse = \"D\"").find("unknown key \"databse\""), std::string::npos);
}

}  // namespace
}  // namespace connectivity

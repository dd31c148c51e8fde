// The HTTP probe against real peers on loopback: nginx (plain and TLS), tinyproxy as the
// campus CONNECT proxy, and silent or hostile peers for the failure cases.
#include "probes/http/http_probe.h"
#include "tests/support/loopback.h"
#include "tests/support/peers.h"
#include "tests/support/platform.h"
#include "tests/support/run_once.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
// After windows.h, which it needs.
#include <psapi.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

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
  void SetUp() override {
    SKIP_ON_WINDOWS(testing::kNeedsNginx);
    nginx.emplace(kSite, site_files());
  }
  std::optional<NginxServer> nginx;  // started by SetUp

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(nginx->port()) + path; }

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

// The process's resident memory, sampled on a thread while a probe runs: its peak above the
// RSS when arm() was called (once the run is under way: starting its threads costs memory,
// a lot of it under ASan, that is not the probe's). Past `cap` it calls `exceeded` once, so
// that a peer feeding a probe that holds what it reads can stop before the test itself takes
// the machine's memory.
class ResidentMemoryWatch {
 public:
  ResidentMemoryWatch(std::size_t cap, std::function<void()> exceeded)
      : cap_(cap), exceeded_(std::move(exceeded)), sampler_([this] { sample(); }) {}
  ~ResidentMemoryWatch() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (sampler_.joinable()) sampler_.join();
  }
  void arm() {
    if (start_ == 0) start_ = resident_bytes();
  }
  std::size_t peak_growth() const {
    const std::size_t start = start_;
    return start != 0 && peak_ > start ? peak_ - start : 0;
  }

 private:
  // Without allocating: under ASan freed memory stays resident a while (the quarantine), and
  // the watch's own would be counted against the probe.
  static std::size_t resident_bytes() {
#ifdef _WIN32
    // The working set: what Windows calls the resident memory (wine reads it from /proc).
    PROCESS_MEMORY_COUNTERS counters{};
    counters.cb = sizeof counters;
    return GetProcessMemoryInfo(GetCurrentProcess(), &counters, sizeof counters) ? counters.WorkingSetSize : 0;
#else
    std::array<char, 128> text{};
    const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const ssize_t got = ::read(fd, text.data(), text.size() - 1);
    ::close(fd);
    if (got <= 0) return 0;
    const char* resident = std::strchr(text.data(), ' ');  // "total resident shared ..." in pages
    std::size_t pages = 0;
    if (resident) std::from_chars(resident + 1, text.data() + got, pages);
    return pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
#endif
  }
  void sample() {
    std::unique_lock lock(mutex_);
    bool reported = false;
    while (!wake_.wait_for(lock, std::chrono::milliseconds(5), [this] { return stopping_; })) {
      if (start_ == 0) continue;
      peak_ = std::max(peak_.load(), resident_bytes());
      if (!reported && peak_growth() > cap_) {
        reported = true;
        exceeded_();
      }
    }
  }

  std::atomic<std::size_t> start_{0};
  std::atomic<std::size_t> peak_{0};
  std::size_t cap_;
  std::function<void()> exceeded_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread sampler_;
};

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
// What one run may add to the agent's memory, whatever the peer sends: the read buffers and
// the regex windows are a few MiB at most.
constexpr std::size_t kProbeMemoryCap = 32 * kMiB;

struct EndlessRun {
  RunRecord run;
  std::uint64_t bytes_sent = 0;
  std::size_t memory_growth = 0;
};

// Runs an http check against a peer that sends `head`, then `block` again and again until the
// run has ended (or the process has grown past the cap: a probe that holds the body). Memory
// is watched from the fourth MiB the peer sent on.
EndlessRun run_against_endless_peer(const std::string& head, const std::string& block, const std::string& options,
                                    const std::string& timeout) {
  std::atomic<bool> stop_feeding{false};
  ResidentMemoryWatch watch(kProbeMemoryCap, [&] { stop_feeding = true; });
  testing::HttpPeer peer([&](testing::HttpPeer::Connection& c) {
    if (!c.send(head)) return;
    for (std::size_t sent = 0; !stop_feeding && c.send(block); sent += block.size())
      if (sent >= 4 * kMiB) watch.arm();
  });
  EndlessRun out;
  out.run = run_once(make_check("http", peer.url(), "address_family = \"ipv4\"\n" + options, timeout));
  watch.stop();
  out.memory_growth = watch.peak_growth();
  out.bytes_sent = peer.bytes_sent();
  return out;
}

// A body limit no loopback peer reaches in these tests' timeouts (1 TiB), so the timeout alone
// ends an endless body: the defect's own 1 GiB arrived in 2.5 s on an idle 2-core machine,
// which then read body_too_large.
constexpr std::string_view kNoReachableBodyLimit = "max_body_bytes = 1099511627776";

// The defect is a time bound: the run went on for as long as the peer sent (40 s in the field).
// A second past the timeout is generous for a loaded machine and the sanitizer build.
constexpr auto kDeadlineSlack = std::chrono::seconds(1);

TEST(HttpProbeEndlessPeer, AFastEndlessBodyEndsAtTheTimeoutInBoundedMemory) {
  const EndlessRun endless = run_against_endless_peer("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n",
                                                      std::string(64 * kKiB, 'x'), std::string(kNoReachableBodyLimit), "3s");
  EXPECT_EQ(endless.run.reason, reason::timeout) << endless.run.detail;
  EXPECT_LT(endless.run.total, std::chrono::seconds(3) + kDeadlineSlack);
  EXPECT_TRUE(phase_seconds(endless.run, "transfer"));
  EXPECT_LT(endless.memory_growth, kProbeMemoryCap) << endless.bytes_sent << " bytes sent";
  // The body streamed through rather than into memory: memory grew by a small part of it.
  EXPECT_LT(endless.memory_growth, endless.bytes_sent / 4);
  std::cout << "[ measured ] " << endless.bytes_sent / kMiB << " MiB streamed in " << std::chrono::duration_cast<std::chrono::milliseconds>(endless.run.total).count()
            << " ms; resident memory grew " << endless.memory_growth / kMiB << " MiB\n";
  if (testing::under_wine() && endless.bytes_sent <= 16 * kMiB)
    GTEST_SKIP() << "under wine: its sockets carried only " << endless.bytes_sent / kMiB
                 << " MiB in the 3 s (every overlapped receive is a round trip to wineserver; fed by a Linux peer the "
                    "probe under wine takes about 10 MiB), short of the 16 MiB that show the body streams rather than accumulates; "
                    "every other expectation held";
  EXPECT_GT(endless.bytes_sent, 16 * kMiB);
}

TEST(HttpProbeEndlessPeer, AnEndlessChunkedBodyEndsAtTheTimeoutInBoundedMemory) {
  const std::string chunk = "10000\r\n" + std::string(64 * kKiB, 'y') + "\r\n";
  const EndlessRun endless = run_against_endless_peer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk,
                                                      std::string(kNoReachableBodyLimit) + "\nbody_regex = \"never there\"", "1s");
  EXPECT_EQ(endless.run.reason, reason::timeout) << endless.run.detail;
  EXPECT_LT(endless.run.total, std::chrono::seconds(1) + kDeadlineSlack);
  EXPECT_LT(endless.memory_growth, kProbeMemoryCap) << endless.bytes_sent << " bytes sent";
}

TEST(HttpProbeEndlessPeer, AnEndlessOrOversizedHeaderIsAProtocolError) {
  const EndlessRun endless = run_against_endless_peer("HTTP/1.1 200 OK\r\n", "X-Filler: " + std::string(1000, 'a') + "\r\n",
                                                      "", "2s");
  EXPECT_EQ(endless.run.reason, reason::protocol_error) << endless.run.detail;
  EXPECT_LT(endless.run.total, std::chrono::seconds(1));  // refused at the header limit, not at the deadline

  testing::HttpPeer huge_line([](testing::HttpPeer::Connection& c) {
    if (c.send("HTTP/1.1 200 OK\r\nX-Huge: " + std::string(kMiB, 'h') + "\r\nContent-Length: 2\r\n\r\nok")) c.ending(std::chrono::seconds(5));
  });
  const RunRecord run = run_once(make_check("http", huge_line.url(), "address_family = \"ipv4\"", "2s"));
  EXPECT_EQ(run.reason, reason::protocol_error) << run.detail;
}

TEST(HttpProbeEndlessPeer, AHeaderThatTricklesTimesOutAtTheDeadline) {
  testing::HttpPeer trickle([](testing::HttpPeer::Connection& c) {
    const std::string head = "HTTP/1.1 200 OK\r\nX-Slow: " + std::string(10000, 's') + "\r\n\r\n";
    for (char byte : head)
      if (c.ending(std::chrono::milliseconds(20)) || !c.send(std::string_view(&byte, 1))) return;
  });
  const RunRecord run = run_once(make_check("http", trickle.url(), "address_family = \"ipv4\"", "500ms"));
  EXPECT_EQ(run.reason, reason::timeout) << run.detail;
  EXPECT_LT(run.total, std::chrono::milliseconds(500) + kDeadlineSlack);
  EXPECT_TRUE(phase_seconds(run, "request"));
}

// Header name -> value of one request head (names lowercased).
std::map<std::string, std::string> header_fields(const std::string& head) {
  std::map<std::string, std::string> fields;
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, line);  // the request line
  while (std::getline(lines, line) && line != "\r") {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const auto value_start = line.find_first_not_of(' ', colon + 1);
    fields[name] = line.substr(value_start, line.find_last_not_of("\r ") + 1 - value_start);
  }
  return fields;
}

// Two origins on loopback (same host, other port): `origin` redirects /cross there and /same
// to its own /here; every other path answers 200.
struct TwoOrigins {
  testing::HttpPeer other{[](testing::HttpPeer::Connection& c) { c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); }};
  testing::HttpPeer origin{[this](testing::HttpPeer::Connection& c) {
    const std::string& head = c.request_head();
    if (head.starts_with("GET /cross "))
      c.send("HTTP/1.1 302 Found\r\nLocation: " + other.url("/landing") + "\r\nContent-Length: 0\r\n\r\n");
    else if (head.starts_with("GET /same "))
      c.send("HTTP/1.1 302 Found\r\nLocation: /here\r\nContent-Length: 0\r\n\r\n");
    else
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  }};
};

TEST(HttpProbeRedirect, AuthorizationAndCookieStayWithTheConfiguredOrigin) {
  TwoOrigins sites;
  const std::string options =
      "address_family = \"ipv4\"\nheaders = { Authorization = \"Bearer t0ken\", Cookie = \"session=s1\", "
      "Proxy-Authorization = \"Basic cHJveHk=\", X-Trace = \"t1\" }";
  RunRecord run = run_once(make_check("http", sites.origin.url("/cross"), options));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  ASSERT_EQ(sites.other.request_heads().size(), 1u);
  const auto at_other = header_fields(sites.other.request_heads().front());
  EXPECT_FALSE(at_other.contains("authorization")) << sites.other.request_heads().front();
  EXPECT_FALSE(at_other.contains("cookie"));
  EXPECT_FALSE(at_other.contains("proxy-authorization"));
  EXPECT_EQ(at_other.count("x-trace") ? at_other.at("x-trace") : "", "t1");  // not sensitive: it follows

  run = run_once(make_check("http", sites.origin.url("/same"), options));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  const auto heads = sites.origin.request_heads();
  ASSERT_EQ(heads.size(), 3u);  // /cross, /same, /here
  for (const auto& head : heads) {
    const auto fields = header_fields(head);
    EXPECT_EQ(fields.count("authorization") ? fields.at("authorization") : "", "Bearer t0ken") << head;
    EXPECT_EQ(fields.count("cookie") ? fields.at("cookie") : "", "session=s1") << head;
  }
}

TEST(HttpProbeRedirect, HeadersTheConfigMarksSensitiveStayWithTheConfiguredOrigin) {
  TwoOrigins sites;
  const RunRecord run = run_once(make_check(
      "http", sites.origin.url("/cross"),
      "address_family = \"ipv4\"\nheaders = { X-Api-Key = \"k-123\", X-Trace = \"t1\" }\nsensitive_headers = [\"x-api-key\"]"));
  EXPECT_EQ(run.reason, reason::success) << run.detail;
  ASSERT_EQ(sites.other.request_heads().size(), 1u);
  const auto at_other = header_fields(sites.other.request_heads().front());
  EXPECT_FALSE(at_other.contains("x-api-key")) << sites.other.request_heads().front();
  EXPECT_TRUE(at_other.contains("x-trace"));
  const auto at_origin = header_fields(sites.origin.request_heads().front());
  EXPECT_EQ(at_origin.count("x-api-key") ? at_origin.at("x-api-key") : "", "k-123");
}

TEST(HttpProbeRedirect, SensitiveHeadersMustBeHeaderNames) {
  const auto error_of = [](const std::string& options) { return testing::config_error("http", "https://h/", options); };
  EXPECT_EQ(error_of("sensitive_headers = [\"X-Api-Key\"]"), "<no error>");
  EXPECT_NE(error_of("sensitive_headers = \"X-Api-Key\"").find("key \"sensitive_headers\": must be an array"), std::string::npos)
      << error_of("sensitive_headers = \"X-Api-Key\"");
  EXPECT_NE(error_of("sensitive_headers = [\"Bad Name\"]").find("key \"sensitive_headers\": each entry is a header name"),
            std::string::npos);
  EXPECT_NE(error_of("sensitive_headers = [42]").find("key \"sensitive_headers\""), std::string::npos);
}

// The body regexes see the body piece by piece, as it arrives.
bool found_in_pieces(const std::string& pattern, const std::vector<std::string>& pieces) {
  const boost::regex regex(pattern);
  StreamingSearch search(regex);
  for (const auto& piece : pieces) search.feed(piece);
  search.finish();
  return search.found();
}

TEST(HttpBodySearch, MatchesAcrossPiecesAsInTheWholeBody) {
  EXPECT_TRUE(found_in_pieces("Article Exchange", {"<title>Article Ex", "change</title>"}));
  EXPECT_TRUE(found_in_pieces("Article Exchange", {"<title>Art", "i", "cle Ex", "change</title>"}));
  EXPECT_FALSE(found_in_pieces("Article Exchange\\b", {"Article ", "Exchange", "d"}));
  // The end of a piece is not the end of the body for $, \z and \b.
  EXPECT_FALSE(found_in_pieces("ok$", {"status ok", " and more"}));
  EXPECT_TRUE(found_in_pieces("ok$", {"status ", "ok"}));
  EXPECT_FALSE(found_in_pieces("ok\\z", {"ok", "\n"}));
  // Nor is the start of a piece the start of the body (or of a line) for \A and ^.
  EXPECT_FALSE(found_in_pieces("\\Amaintenance", {"no ", "maintenance"}));
  EXPECT_TRUE(found_in_pieces("\\Amaintenance", {"maint", "enance"}));
  EXPECT_FALSE(found_in_pieces("^maintenance", {"no ", "maintenance"}));
  EXPECT_TRUE(found_in_pieces("^maintenance", {"news\n", "maintenance"}));
  // An early partial match (start.*end) does not hide a complete one after it.
  EXPECT_TRUE(found_in_pieces("start.*end|needle", {"start of a long page, ", "needle, ", "and no closing word"}));
}

// The same, with each piece a search step long, so every piece boundary is a search.
TEST(HttpBodySearch, PieceBoundariesAtASearchAreNotTheBodysEnd) {
  const std::string filler(StreamingSearch::kSearchStepBytes, ' ');
  EXPECT_FALSE(found_in_pieces("ok$", {filler + "status ok", " and more"}));
  EXPECT_TRUE(found_in_pieces("ok$", {filler + "status ", "ok"}));
  // A lookahead at the end of what has arrived does not decide before the rest is there.
  EXPECT_FALSE(found_in_pieces("ok(?!\\w)", {filler + "ok", "ay, nothing else"}));
  EXPECT_TRUE(found_in_pieces("ok(?!\\w)", {filler + "ok", ", and more"}));
  EXPECT_TRUE(found_in_pieces("Article Exchange", {filler + "<title>Article Ex", "change</title>" + filler}));
}

// An open partial match (".*") fed in small segments must not be searched once per segment:
// each search may cost the whole window.
TEST(HttpBodySearch, SearchesInStepsNotPerPiece) {
  const boost::regex open_ended("Welcome.*Sign in");
  StreamingSearch search(open_ended);
  search.feed("Welcome");
  const std::string segment(kKiB, 'x');
  for (int i = 0; i < 1024; ++i) search.feed(segment);  // 1 MiB in 1 KiB segments
  search.finish();
  EXPECT_FALSE(search.found());
  // Two searches per step (complete, then partial), and one at the end.
  EXPECT_LE(search.searches_run(), 2 * (kMiB / StreamingSearch::kSearchStepBytes) + 1);
}

TEST(HttpBodySearch, HoldsABoundedWindowWhateverTheBodySize) {
  const std::string piece(64 * kKiB, 'a');
  const boost::regex literal("b");
  const boost::regex open_ended("<title>[^<]*</title>");  // a partial match that never completes
  StreamingSearch no_match(literal);
  StreamingSearch held_open(open_ended);
  held_open.feed("<title>");
  std::size_t most_held = 0;
  for (int i = 0; i < 24; ++i) {  // 1.5 MiB: past the window
    no_match.feed(piece);
    held_open.feed(piece);
    most_held = std::max(most_held, held_open.bytes_held());
    EXPECT_LE(no_match.bytes_held(), StreamingSearch::kSearchStepBytes + piece.size() + 1024);
  }
  EXPECT_GT(most_held, StreamingSearch::kMatchWindowBytes / 2);  // it did hold the partial match...
  // ...up to the window, and what arrived since its last search
  EXPECT_LE(most_held, StreamingSearch::kMatchWindowBytes + StreamingSearch::kSearchStepBytes + piece.size() + 1024);

  // Within the window, a long match is still found.
  StreamingSearch long_match(open_ended);
  long_match.feed("<html><title>");
  for (int i = 0; i < 8; ++i) long_match.feed(piece);  // 512 KiB
  long_match.feed("</title></html>");
  long_match.finish();
  EXPECT_TRUE(long_match.found());
}

class HttpsProbe : public ::testing::Test {
 protected:
  testing::TestPki pki;
  std::string trust() const { return "address_family = \"ipv4\"\nca_file = \"" + pki.ca_file() + "\"\n"; }
};

TEST_F(HttpsProbe, ValidCertificateGivesTlsFactsAndTheStatus) {
  SKIP_ON_WINDOWS(testing::kNeedsNginx);
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
  SKIP_ON_WINDOWS(testing::kNeedsNginx);
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
  SKIP_ON_WINDOWS(testing::kNeedsTinyproxy);
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

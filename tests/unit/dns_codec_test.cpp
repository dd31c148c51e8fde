// The dns probe's own DNS codec against RFC 1035 bytes written out by hand: the query's layout
// octet by octet, names at their limits, compression pointers that are fine and ones that must
// not be followed (a loop, a forward pointer, one past the end), and the resolv.conf reader.
#include "probes/dns/dns_message.h"
#include "probes/dns/system_nameservers.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

namespace connectivity {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint16_t A = 1, AAAA = 28;
const std::string kName = "www.example.org";

// ---- Queries --------------------------------------------------------------------------------

TEST(DnsCodecQuery, EveryOctetIsWhereRfc1035Puts) {
  const auto query = dns::encode_query("ns1.Example.COM", A, 0x1234);
  ASSERT_TRUE(query);
  const Bytes expected = {
      0x12, 0x34,  // ID
      0x01, 0x00,  // QR 0, opcode QUERY, AA 0, TC 0, RD 1 | RA 0, Z 0, RCODE 0
      0x00, 0x01,  // QDCOUNT
      0x00, 0x00,  // ANCOUNT
      0x00, 0x00,  // NSCOUNT
      0x00, 0x01,  // ARCOUNT: the OPT record
      3, 'n', 's', '1', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,  // QNAME, case kept
      0x00, 0x01,  // QTYPE A
      0x00, 0x01,  // QCLASS IN
      0x00,        // OPT owner: the root
      0x00, 41,    // TYPE OPT
      0x04, 0xD0,  // CLASS: UDP payload 1232
      0, 0, 0, 0,  // TTL: extended RCODE, version 0, no DO
      0x00, 0x00,  // RDLENGTH
  };
  EXPECT_EQ(*query, expected);
}

// The QNAME of a query for `name`, or nothing when the name is refused.
std::optional<Bytes> qname_of(std::string_view name) {
  const auto query = dns::encode_query(name, A, 1);
  if (!query) return std::nullopt;
  return Bytes(query->begin() + 12, query->end() - 4 - 11);  // less the header, QTYPE/QCLASS and OPT
}

TEST(DnsCodecQuery, TrailingDotsEscapesAndTheRoot) {
  EXPECT_EQ(qname_of("a.b."), (Bytes{1, 'a', 1, 'b', 0}));
  EXPECT_EQ(qname_of("."), (Bytes{0}));
  EXPECT_EQ(qname_of(""), (Bytes{0}));
  EXPECT_EQ(qname_of("a\\.b.c"), (Bytes{3, 'a', '.', 'b', 1, 'c', 0}));  // an escaped dot is inside the label
  EXPECT_EQ(qname_of("\\065\\\\"), (Bytes{2, 'A', '\\', 0}));
  EXPECT_FALSE(qname_of("a\\"));      // an escape with nothing to escape
  EXPECT_FALSE(qname_of("a\\25"));    // \DDD needs three digits
  EXPECT_FALSE(qname_of("a\\256"));   // and a value that fits an octet
}

TEST(DnsCodecQuery, EmptyLabelsAreRefused) {
  EXPECT_FALSE(qname_of("a..b"));
  EXPECT_FALSE(qname_of(".a"));
  EXPECT_FALSE(qname_of("a.."));
  EXPECT_FALSE(qname_of(".."));
}

TEST(DnsCodecQuery, ALabelIsAtMost63Octets) {
  const auto longest = qname_of(std::string(63, 'a') + ".org");
  ASSERT_TRUE(longest);
  EXPECT_EQ(longest->front(), 63);
  EXPECT_FALSE(qname_of(std::string(64, 'a') + ".org"));
  EXPECT_FALSE(qname_of("org." + std::string(64, 'a')));  // the last label too
  EXPECT_FALSE(qname_of(std::string(62, 'a') + "\\098\\099"));  // escapes count as the octets they stand for
}

TEST(DnsCodecQuery, ANameIsAtMost255OctetsOnTheWire) {
  const std::string label(63, 'x');
  // 3 * (1 + 63) + (1 + 61) + the root's 1 = 255 octets.
  const std::string longest = label + "." + label + "." + label + "." + std::string(61, 'y');
  const auto wire = qname_of(longest);
  ASSERT_TRUE(wire);
  EXPECT_EQ(wire->size(), 255u);
  EXPECT_TRUE(qname_of(longest + "."));
  EXPECT_FALSE(qname_of(longest + "y"));          // 256
  EXPECT_FALSE(qname_of(longest + ".z"));         // 257
  EXPECT_FALSE(qname_of(std::string(300, 'a')));  // one label over both limits
}

// ---- Replies --------------------------------------------------------------------------------

// A reply to `id` for www.example.org of `qtype`, the question at offset 12 and the answers
// (ANCOUNT `ancount`) from offset 33 on, as given.
Bytes reply(std::uint16_t id, std::uint16_t ancount, const Bytes& answers, std::uint16_t qtype = A) {
  Bytes out = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x81, 0x80, 0, 1,
               static_cast<std::uint8_t>(ancount >> 8), static_cast<std::uint8_t>(ancount), 0, 0, 0, 0,
               3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0,
               static_cast<std::uint8_t>(qtype >> 8), static_cast<std::uint8_t>(qtype), 0, 1};
  for (const auto byte : answers) out.push_back(byte);  // (insert trips gcc 12's -Warray-bounds here)
  return out;
}

constexpr std::uint8_t kAnswersAt = 33;

std::string malformed_why(const dns::Decoded& decoded) {
  const auto* malformed = std::get_if<dns::Malformed>(&decoded);
  return malformed ? malformed->why : "<not Malformed: variant " + std::to_string(decoded.index()) + ">";
}

TEST(DnsCodecReply, CompressionPointersAreFollowedBackwards) {
  // www.example.org CNAME edge.example.org (written "edge" + a pointer to "example.org" in the
  // question), then edge.example.org A, its owner a pointer to that CNAME's target, which
  // itself ends in a pointer: two jumps.
  const Bytes answers = {
      0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0x01, 0x2C, 0, 7, 4, 'e', 'd', 'g', 'e', 0xC0, 0x10,  // target at offset 45
      0xC0, 45,   0, 1, 0, 1, 0, 0, 0x00, 0x3C, 0, 4, 198, 51, 100, 7,
  };
  const auto decoded = dns::decode_reply(reply(0xABCD, 2, answers), 0xABCD, kName, A);
  const auto* got = std::get_if<dns::Reply>(&decoded);
  ASSERT_TRUE(got) << malformed_why(decoded);
  EXPECT_EQ(got->chain, (std::vector<std::string>{"edge.example.org"}));
  ASSERT_EQ(got->addresses.size(), 1u);
  EXPECT_EQ(got->addresses[0].to_string(), "198.51.100.7");
  EXPECT_EQ(got->min_ttl, 60u);  // the A's 60 under the CNAME's 300
}

TEST(DnsCodecReply, AaaaDataAndOtherClassesAndTypes) {
  const Bytes answers = {
      0xC0, 0x0C, 0, 28, 0, 3, 0, 0, 0, 9, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99,  // CH: not ours
      0xC0, 0x0C, 0, 16, 0, 1, 0, 0, 0, 8, 0, 2, 1, 'x',                                                          // TXT: not collected
      0xC0, 0x0C, 0, 28, 0, 1, 0, 0, 0, 7, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
  };
  const auto decoded = dns::decode_reply(reply(9, 3, answers, AAAA), 9, kName, AAAA);
  const auto* got = std::get_if<dns::Reply>(&decoded);
  ASSERT_TRUE(got) << malformed_why(decoded);
  ASSERT_EQ(got->addresses.size(), 1u);
  EXPECT_EQ(got->addresses[0].to_string(), "2001:db8::53");
  EXPECT_EQ(got->min_ttl, 7u);
}

TEST(DnsCodecReply, APointerLoopIsMalformedNotAHang) {
  // The owner "abc" + a pointer back to its own first label: it points backwards from where it
  // stands, yet round and round.
  const Bytes answers = {3, 'a', 'b', 'c', 0xC0, kAnswersAt, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
  const auto why = malformed_why(dns::decode_reply(reply(7, 1, answers), 7, kName, A));
  EXPECT_EQ(why, "answer record 1 does not decode: the compression pointer at offset 37 points to offset 33, not back "
                 "before offset 33 (a pointer loop or a forward pointer)");
}

TEST(DnsCodecReply, TwoPointersAtEachOtherAreMalformed) {
  // The CNAME's target points to the A's owner, which points back to the CNAME's target.
  const Bytes answers = {
      0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 47,  // target at 45: a pointer to 47
      0xC0, 45,   0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1,
  };
  const auto why = malformed_why(dns::decode_reply(reply(7, 2, answers), 7, kName, A));
  EXPECT_NE(why.find("a pointer loop or a forward pointer"), std::string::npos) << why;
  EXPECT_TRUE(why.starts_with("a CNAME record whose target does not decode")) << why;
}

TEST(DnsCodecReply, AForwardPointerIsMalformed) {
  // The owner points at the A record's data, further on in the message.
  const Bytes answers = {0xC0, 45, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 3, 'a', 'b', 0};
  const auto why = malformed_why(dns::decode_reply(reply(7, 1, answers), 7, kName, A));
  EXPECT_EQ(why, "answer record 1 does not decode: the compression pointer at offset 33 points to offset 45, not back "
                 "before offset 33 (a pointer loop or a forward pointer)");
}

TEST(DnsCodecReply, APointerPastTheEndIsMalformed) {
  const Bytes answers = {0xC1, 0x00, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
  const auto why = malformed_why(dns::decode_reply(reply(7, 1, answers), 7, kName, A));
  EXPECT_EQ(why, "answer record 1 does not decode: the compression pointer at offset 33 points to offset 256, past the "
                 "49-byte message");
}

TEST(DnsCodecReply, AQuestionWithABadPointerIsNotOurs) {
  // Before the question is known to be ours, a reply that breaks the rules is a stray datagram.
  Bytes message = reply(7, 0, {});
  message.resize(12);
  for (const auto byte : Bytes{0xC0, 12, 0, 1, 0, 1}) message.push_back(byte);  // QNAME: a pointer to itself
  const auto decoded = dns::decode_reply(message, 7, kName, A);
  ASSERT_TRUE(std::holds_alternative<dns::NotOurs>(decoded));
  EXPECT_TRUE(std::get<dns::NotOurs>(decoded).why.starts_with("the question's name does not decode: "))
      << std::get<dns::NotOurs>(decoded).why;
}

TEST(DnsCodecReply, ATruncatedHeaderIsNotOurs) {
  const Bytes full = reply(7, 0, {});
  for (const std::size_t size : {0u, 1u, 11u}) {
    const auto decoded = dns::decode_reply(std::span(full).first(size), 7, kName, A);
    ASSERT_TRUE(std::holds_alternative<dns::NotOurs>(decoded)) << size;
    EXPECT_EQ(std::get<dns::NotOurs>(decoded).why, std::to_string(size) + " bytes, shorter than a DNS header");
  }
  // 12 bytes are a header, but one that promises a question it does not hold.
  const auto header_only = dns::decode_reply(std::span(full).first(12), 7, kName, A);
  ASSERT_TRUE(std::holds_alternative<dns::NotOurs>(header_only));
  EXPECT_TRUE(std::get<dns::NotOurs>(header_only).why.starts_with("the question's name does not decode"));
}

TEST(DnsCodecReply, ALabelOver63OctetsIsMalformed) {
  // 0x40 and 0x80 as the top bits are neither a length (at most 63) nor a pointer.
  const Bytes answers = {0x40, 'a', 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
  const auto why = malformed_why(dns::decode_reply(reply(7, 1, answers), 7, kName, A));
  EXPECT_EQ(why, "the record counts and lengths do not fit the 50-byte reply");
  // Past the skim over the records, a CNAME target with such a label is caught as it is read.
  const Bytes cname = {0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, 0, 3, 0x80, 0, 0};
  const auto target_why = malformed_why(dns::decode_reply(reply(7, 1, cname), 7, kName, A));
  EXPECT_EQ(target_why,
            "a CNAME record whose target does not decode: the octet 0x80 at offset 45 is neither a label length nor a "
            "compression pointer");
}

TEST(DnsCodecReply, ANameOver255OctetsIsMalformed) {
  // A CNAME target of four 63-octet labels: 4 * 64 + 1 = 257 octets.
  Bytes target;
  for (int label = 0; label < 4; ++label) {
    target.push_back(63);
    target.insert(target.end(), 63, 'a');
  }
  target.push_back(0);
  Bytes answers = {0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, static_cast<std::uint8_t>(target.size() >> 8),
                   static_cast<std::uint8_t>(target.size())};
  for (const auto byte : target) answers.push_back(byte);
  const auto why = malformed_why(dns::decode_reply(reply(7, 1, answers), 7, kName, A));
  EXPECT_EQ(why, "a CNAME record whose target does not decode: the name at offset 45 is longer than 255 octets");
  // The same name built out of pointers is no shorter.
  Bytes chained = {63};
  chained.insert(chained.end(), 63, 'b');  // offset 33: one label, then the root
  chained.push_back(0);
  for (const auto byte : Bytes{0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1}) chained.push_back(byte);
  // A second record whose owner is three more 63-octet labels ahead of a pointer to the first.
  chained.push_back(63);
  chained.insert(chained.end(), 63, 'c');
  chained.push_back(63);
  chained.insert(chained.end(), 63, 'd');
  chained.push_back(63);
  chained.insert(chained.end(), 63, 'e');
  for (const auto byte : Bytes{0xC0, kAnswersAt, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2}) chained.push_back(byte);
  const auto chained_why = malformed_why(dns::decode_reply(reply(7, 2, chained), 7, kName, A));
  EXPECT_EQ(chained_why, "answer record 2 does not decode: the name at offset 112 is longer than 255 octets");
}

TEST(DnsCodecReply, BytesLeftOverOrCutOffAreMalformed) {
  const Bytes a = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
  Bytes trailing = reply(7, 1, a);
  trailing.push_back(0);
  EXPECT_EQ(malformed_why(dns::decode_reply(trailing, 7, kName, A)),
            "the record counts and lengths do not fit the 50-byte reply");
  Bytes cut = reply(7, 1, a);
  cut.pop_back();
  EXPECT_EQ(malformed_why(dns::decode_reply(cut, 7, kName, A)), "the record counts and lengths do not fit the 48-byte reply");
  EXPECT_TRUE(std::holds_alternative<dns::Reply>(dns::decode_reply(reply(7, 1, a), 7, kName, A)));
}

TEST(DnsCodecReply, NamesReadBackEscapedAsTheyWereAsked) {
  // A CNAME target with a dot and a space inside its first label: "a\.b\032c.example".
  const Bytes answers = {0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, 0, 15, 5, 'a', '.', 'b', ' ', 'c', 7, 'e', 'x', 'a', 'm',
                         'p', 'l', 'e', 0};
  const auto decoded = dns::decode_reply(reply(7, 1, answers), 7, kName, A);
  const auto* got = std::get_if<dns::Reply>(&decoded);
  ASSERT_TRUE(got) << malformed_why(decoded);
  EXPECT_EQ(got->chain, (std::vector<std::string>{"a\\.b\\032c.example"}));
}

// ---- resolv.conf ----------------------------------------------------------------------------

class DnsResolvConf : public ::testing::Test {
 protected:
  std::filesystem::path path_ =
      std::filesystem::path(::testing::TempDir()) /
      ("resolv-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".conf");
  void write(const std::string& text) {
    std::ofstream out(path_, std::ios::binary);
    out << text;
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::vector<std::string> servers() {
    std::vector<std::string> out;
    for (const auto& endpoint : dns::nameservers_from_resolv_conf(path_)) {
      const auto address = endpoint.address();
      out.push_back((address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
                    std::to_string(endpoint.port()));
    }
    return out;
  }
};

TEST_F(DnsResolvConf, NameserverLinesInOrderCommentsAndGarbageSkipped) {
  write("# nameserver 192.0.2.99\n"
        "; nameserver 192.0.2.98\n"
        "search example.org\n"
        "nameserver\n"
        "nameserver dns.example.org\n"
        "nameserver 192.0.2.300\n"
        "nameserverx 192.0.2.97\n"
        " nameserver 192.0.2.96\n"
        "options edns0 trust-ad\n"
        "nameserver   192.0.2.1   # the first\n"
        "nameserver\t2001:db8::53\r\n"
        "nameserver fe80::1%1 trailing words\n");
  const auto endpoints = dns::nameservers_from_resolv_conf(path_);
  ASSERT_EQ(endpoints.size(), 3u);
  EXPECT_EQ(servers()[0], "192.0.2.1:53");
  EXPECT_EQ(servers()[1], "[2001:db8::53]:53");
  // A link-local server keeps its zone (by number here: no interface name is on every host).
  ASSERT_TRUE(endpoints[2].address().is_v6());
  EXPECT_EQ(endpoints[2].address().to_v6().scope_id(), 1u);
  EXPECT_EQ(endpoints[2].address().to_v6(), boost::asio::ip::make_address_v6("fe80::1%1"));
  EXPECT_EQ(endpoints[2].port(), 53);
}

TEST_F(DnsResolvConf, AtMostThreeAreUsed) {
  write("nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n");
  EXPECT_EQ(servers(), (std::vector<std::string>{"192.0.2.1:53", "192.0.2.2:53", "192.0.2.3:53"}));
  EXPECT_EQ(dns::kMaxNameservers, 3u);
}

TEST_F(DnsResolvConf, NoFileOrNoLinesIsNoServers) {
  EXPECT_TRUE(servers().empty());  // not written: no file
  write("domain example.org\n# nameserver 192.0.2.1\n");
  EXPECT_TRUE(servers().empty());
  write("nameserver 192.0.2.8");  // no final newline
  EXPECT_EQ(servers(), (std::vector<std::string>{"192.0.2.8:53"}));
}

}  // namespace
}  // namespace connectivity

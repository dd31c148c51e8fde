// gzip for /metrics: which Accept-Encoding values ask for it, and that what is sent inflates
// back to the text, byte for byte, with zlib's own reader.
#include "exporters/gzip.h"
#include "tests/support/gunzip.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace connectivity {
namespace {

using testing::gunzip;

TEST(Gzip, AcceptEncodingIsReadAsHttpSaysToReadIt) {
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("gzip, deflate, br"));  // what Prometheus and browsers send
  EXPECT_TRUE(accepts_gzip("deflate,GZIP;q=0.5"));
  EXPECT_TRUE(accepts_gzip("x-gzip"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_TRUE(accepts_gzip("identity;q=0.1, *;q=0.2"));
  EXPECT_TRUE(accepts_gzip("gzip;q=0.001"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("deflate, br"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip; q=0.000"));
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_FALSE(accepts_gzip("*, gzip;q=0"));  // named beats the wildcard
  EXPECT_FALSE(accepts_gzip("gzipx, xgzip"));
  EXPECT_FALSE(accepts_gzip(",,;;=,q=1"));
}

TEST(Gzip, InflatesBackToTheText) {
  for (std::size_t size : {0u, 1u, 100u, 70000u}) {
    std::string text;
    for (std::size_t i = 0; text.size() < size; ++i)
      text += "connectivity_up{check=\"c" + std::to_string(i) + "\",probe=\"tcp\"} 1\n";
    text.resize(size);
    const std::string compressed = gzip_compress(text);
    ASSERT_GE(compressed.size(), 18u);  // a header and trailer at least
    EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
    EXPECT_EQ(gunzip(compressed), text);
    if (size == 70000) {
      EXPECT_LT(compressed.size(), size / 5) << "exposition text compresses well";
    }
  }
  // Bytes that do not compress (the output outgrows a first guess) come back whole too.
  std::mt19937 random(7);
  std::string noise(300000, '\0');
  for (auto& c : noise) c = static_cast<char>(random());
  EXPECT_EQ(gunzip(gzip_compress(noise)), noise);
}

}  // namespace
}  // namespace connectivity

#include "exporters/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <stdexcept>

namespace connectivity {

namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The q of one coding's parameters ("q=0.5"); 1 when absent, 0 when it is q=0 in any form.
bool weight_is_zero(std::string_view parameters) {
  while (!parameters.empty()) {
    const auto semicolon = parameters.find(';');
    const std::string_view parameter = trimmed(parameters.substr(0, semicolon));
    parameters = semicolon == std::string_view::npos ? std::string_view{} : parameters.substr(semicolon + 1);
    if (parameter.size() < 2 || std::tolower(static_cast<unsigned char>(parameter[0])) != 'q' || parameter[1] != '=') continue;
    const std::string_view value = trimmed(parameter.substr(2));
    // RFC 9110 qvalue: "0", "0.", "0.0", "0.00", "0.000" are all zero; anything else is not.
    return !value.empty() && value[0] == '0' &&
           std::all_of(value.begin() + 1, value.end(), [](char c) { return c == '.' || c == '0'; });
  }
  return false;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  bool gzip = false;
  bool star = false;
  bool gzip_named = false;
  while (!accept_encoding.empty()) {
    const auto comma = accept_encoding.find(',');
    const std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
    const auto semicolon = item.find(';');
    const std::string_view coding = trimmed(item.substr(0, semicolon));
    const bool zero = semicolon != std::string_view::npos && weight_is_zero(item.substr(semicolon + 1));
    if (equals_ignoring_case(coding, "gzip") || equals_ignoring_case(coding, "x-gzip")) {
      gzip_named = true;
      gzip = !zero;
    } else if (coding == "*") {
      star = !zero;
    }
  }
  return gzip_named ? gzip : star;
}

std::string gzip_compress(std::string_view text) {
  z_stream stream{};
  constexpr int kGzipWindow = 15 + 16;  // 32 KiB window, with a gzip header and trailer
  if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, kGzipWindow, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib: deflateInit2 failed");
  std::string out;
  out.resize(deflateBound(&stream, static_cast<uLong>(std::min<std::size_t>(text.size(), UINT_MAX))) + 64);
  std::size_t written = 0;
  int status = Z_OK;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  std::size_t left = text.size();
  do {
    // uInt counts: a text over 4 GiB goes in slices.
    const auto slice = static_cast<uInt>(std::min<std::size_t>(left, UINT_MAX));
    stream.avail_in = slice;
    left -= slice;
    const int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    do {
      if (written == out.size()) out.resize(out.size() * 2);
      stream.next_out = reinterpret_cast<Bytef*>(out.data() + written);
      stream.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - written, UINT_MAX));
      const uInt before = stream.avail_out;
      status = deflate(&stream, flush);
      written += before - stream.avail_out;
    } while (stream.avail_in > 0 || (flush == Z_FINISH && status != Z_STREAM_END));
  } while (left > 0);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw std::runtime_error("zlib: deflate did not finish");
  out.resize(written);
  return out;
}

}  // namespace connectivity

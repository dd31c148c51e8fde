// gzip for /metrics: Prometheus asks for it (Accept-Encoding: gzip) on every scrape, and the
// exposition text, one line per series with the same label sets over and over, shrinks to about
// a tenth: at 10,000 checks that is megabytes less on the wire per scrape.
#pragma once

#include <string>
#include <string_view>

namespace connectivity {

// Whether an Accept-Encoding header value accepts gzip: listed (or `*`) without q=0.
bool accepts_gzip(std::string_view accept_encoding);

// `text` as one gzip member (RFC 1952), at zlib's fastest level: a scrape is compressed afresh
// each time, so speed matters more than the last few per cent.
std::string gzip_compress(std::string_view text);

}  // namespace connectivity

// Reading BER APDUs sent back to back over TCP (Z39.50, ISO ILL): one whole message at a
// time, framed by its BER length, whatever the reads deliver.
#pragma once

#include "probes/ber/ber_frame.h"
#include "probes/probe.h"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace connectivity::ber {

class MessageReader {
 public:
  // `looks_like_start` judges the first byte of a message (the protocol's own tag class), so
  // "HTTP/1.1 400" fails at once instead of being waited on as a long BER value.
  // `protocol` and `what` name them in failure details: "Z39.50", "a Z39.50 APDU".
  MessageReader(boost::beast::tcp_stream& stream, std::function<bool(std::uint8_t)> looks_like_start,
                std::string protocol, std::string what, FrameLimits limits = {})
      : stream_(stream),
        looks_like_start_(std::move(looks_like_start)),
        protocol_(std::move(protocol)),
        what_(std::move(what)),
        limits_(limits) {}

  // The next complete message, or the failure to report; bytes past the message stay
  // buffered for the next call.
  asio::awaitable<std::variant<std::vector<std::uint8_t>, ProbeResult>> next();

 private:
  boost::beast::tcp_stream& stream_;
  std::function<bool(std::uint8_t)> looks_like_start_;
  std::string protocol_;
  std::string what_;
  FrameLimits limits_;
  std::vector<std::uint8_t> buffered_;
};

}  // namespace connectivity::ber

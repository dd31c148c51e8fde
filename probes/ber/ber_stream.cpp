#include "probes/ber/ber_stream.h"

#include "probes/connect.h"
#include "probes/peer_text.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>

namespace connectivity::ber {


asio::awaitable<std::variant<std::vector<std::uint8_t>, ProbeResult>> MessageReader::next() {
  std::array<std::uint8_t, 16384> chunk{};
  for (;;) {
    if (!buffered_.empty()) {
      if (!looks_like_start_(buffered_.front()))
        co_return ProbeResult{reason::protocol_error, "the reply starts with byte " + hex_byte(buffered_.front()) +
                                                          ", which no " + protocol_ + " APDU does" +
                                                          text_instead(buffered_, protocol_)};
      auto frame = frame_message(buffered_, limits_);
      if (auto* complete = std::get_if<Complete>(&frame)) {
        std::vector<std::uint8_t> message(buffered_.begin(), buffered_.begin() + static_cast<std::ptrdiff_t>(complete->size));
        buffered_.erase(buffered_.begin(), buffered_.begin() + static_cast<std::ptrdiff_t>(complete->size));
        co_return message;
      }
      if (auto* invalid = std::get_if<Invalid>(&frame))
        co_return ProbeResult{reason::protocol_error, "the reply is not " + what_ + ": " + invalid->why};
    }
    // The deadline is the stream's (tcp_stream::expires_at); the frame limit bounds the buffer.
    auto [error, size] = co_await stream_.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    if (error == asio::error::eof) {
      if (buffered_.empty()) co_return ProbeResult{reason::protocol_error, "connection closed without " + what_};
      co_return ProbeResult{reason::protocol_error, "connection closed inside " + what_ + ", after " +
                                                         std::to_string(buffered_.size()) + " bytes"};
    }
    if (error) co_return ProbeResult{classify_network_error(error), "reading " + what_ + ": " + error.message()};
    buffered_.insert(buffered_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(size));
  }
}

}  // namespace connectivity::ber

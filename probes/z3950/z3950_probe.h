// probe = "z3950": does a Z39.50 catalogue target really answer? Resolve, connect, send an
// InitializeRequest and read the InitializeResponse (accepted or rejected, who the target
// says it is, which options it grants); optionally search one database for one term and read
// the hit count, so "answers Init but its database is gone" shows; then Close. Reads no
// records and changes nothing on the target.
#pragma once

#include "probes/ber/ber_stream.h"
#include "probes/probe.h"
#include "probes/z3950/z3950_codec.h"

#include <boost/beast/core/tcp_stream.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace connectivity {

namespace reason {
inline constexpr std::string_view rejected = "rejected";            // the target refused our Init (or closed on it)
inline constexpr std::string_view search_failed = "search_failed";  // the search failed or found fewer hits than expected
}  // namespace reason

// The requests are encoded once, when the config loads: they are the same on every run.
struct Z3950Settings {
  z3950::Bytes init_request;
  z3950::Bytes search_request;  // empty: no search step
  std::string database;         // the search's, for its facts and details
  std::int64_t min_hits = 1;
  AddressFamily family = AddressFamily::any;
};

class Z3950Probe final : public Probe {
 public:
  explicit Z3950Probe(Z3950Settings settings) : settings_(std::move(settings)) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  Z3950Settings settings_;
  asio::awaitable<std::optional<ProbeResult>> search(ProbeContext& ctx, boost::beast::tcp_stream& stream,
                                                     ber::MessageReader& reader, std::vector<Fact>& facts) const;
};

const ProbeKind& z3950_probe_kind();

}  // namespace connectivity

// probe = "tcp": is the port open? Resolve, connect, close.
#pragma once

#include "probes/probe.h"

namespace connectivity {

class TcpProbe final : public Probe {
 public:
  explicit TcpProbe(AddressFamily family) : family_(family) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  AddressFamily family_;
};

const ProbeKind& tcp_probe_kind();

}  // namespace connectivity

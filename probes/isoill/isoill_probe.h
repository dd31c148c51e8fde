// probe = "isoill": is the ISO ILL (ISO 10161) port of an ILL system reachable, and does what
// answers speak ILL? By default a TCP connect only: ILL responders do not speak first, and
// every ILL APDU but one belongs to a loan. With status_query, the probe also sends that one:
// a Status-Query about a transaction id no system ever issued, and expects an ILL APDU back
// (normally a Status-or-Error-Report, "unknown transaction"). README says why that cannot
// create or change a transaction.
#pragma once

#include "probes/probe.h"

namespace connectivity {

struct IsoIllSettings {
  bool status_query = false;
  AddressFamily family = AddressFamily::any;
};

class IsoIllProbe final : public Probe {
 public:
  explicit IsoIllProbe(IsoIllSettings settings) : settings_(settings) {}
  asio::awaitable<ProbeResult> run(ProbeContext& ctx) const override;

 private:
  IsoIllSettings settings_;
};

const ProbeKind& isoill_probe_kind();

}  // namespace connectivity

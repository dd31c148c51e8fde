#include "probes/registry.h"

#include "probes/dns/dns_probe.h"
#include "probes/http/http_probe.h"
#include "probes/isoill/isoill_probe.h"
#include "probes/ldap/ldap_probe.h"
#include "probes/tcp/tcp_probe.h"
#include "probes/tds/tds_probe.h"
#include "probes/tls/tls_probe.h"
#include "probes/z3950/z3950_probe.h"

namespace connectivity {

void ProbeRegistry::add(const ProbeKind& kind) { kinds_.emplace(std::string(kind.name), &kind); }

const ProbeKind* ProbeRegistry::find(std::string_view name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : it->second;
}

std::vector<std::string_view> ProbeRegistry::names() const {
  std::vector<std::string_view> out;
  for (const auto& [name, kind] : kinds_) out.push_back(kind->name);
  return out;
}

void RegisterBuiltinProbes(ProbeRegistry& registry) {
  registry.add(tcp_probe_kind());
  registry.add(tls_probe_kind());
  registry.add(http_probe_kind());
  registry.add(tds_probe_kind());
  registry.add(z3950_probe_kind());
  registry.add(isoill_probe_kind());
  registry.add(ldap_probe_kind());
  registry.add(dns_probe_kind());
}

const ProbeRegistry& builtin_probes() {
  static const ProbeRegistry registry = [] {
    ProbeRegistry r;
    RegisterBuiltinProbes(r);
    return r;
  }();
  return registry;
}

}  // namespace connectivity

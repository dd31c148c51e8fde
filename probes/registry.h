// Probe kinds by name. Built from one explicit list (RegisterBuiltinProbes) rather than static
// self-registration, which static libraries silently drop at link time.
#pragma once

#include "probes/probe.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace connectivity {

class ProbeRegistry {
 public:
  void add(const ProbeKind& kind);
  const ProbeKind* find(std::string_view name) const;
  std::vector<std::string_view> names() const;

 private:
  std::map<std::string, const ProbeKind*, std::less<>> kinds_;
};

void RegisterBuiltinProbes(ProbeRegistry& registry);

// The registry with every built-in kind, built once.
const ProbeRegistry& builtin_probes();

}  // namespace connectivity

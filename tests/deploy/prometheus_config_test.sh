#!/usr/bin/env bash
# The shipped Prometheus, Alertmanager and Grafana files, checked by the engines' own tools:
# promtool (rule syntax, the rules' unit tests, the scrape config), amtool (the Alertmanager
# config, and where alerts are routed), and the dashboards' generator (the JSON is what it
# writes, and every target is well formed).
set -euo pipefail
repo=$1
source "$(dirname "$0")/../support/expect.sh"
routes_to() {  # routes_to RECEIVER LABEL=VALUE...: amtool names exactly that receiver
  local want=$1
  shift
  local got
  got=$(amtool config routes test --config.file="$repo/deploy/alertmanager/alertmanager.yml" "$@" 2>/dev/null)
  [ "$got" = "$want" ] || { echo "      routed to '$got'"; return 1; }
}

expect "promtool check rules" promtool check rules "$repo"/deploy/prometheus/rules/*.rules.yml
expect "promtool test rules (every alert, outage and flapping cases)" \
  promtool test rules "$repo"/deploy/prometheus/tests/*.test.yml
expect "promtool check config prometheus.yml" promtool check config "$repo/deploy/prometheus/prometheus.yml"
expect "amtool check-config alertmanager.yml" amtool check-config "$repo/deploy/alertmanager/alertmanager.yml"
expect "a critical OCLC alert pages on-call" routes_to on-call-pager alertname=ConnectivityOCLCDown severity=critical team=library-it vendor=oclc
expect "a critical agent alert pages on-call" routes_to on-call-pager alertname=ConnectivityAgentDown severity=critical team=monitoring
expect "a warning goes to the queue" routes_to library-it-queue alertname=ConnectivityCertificateExpiringSoon severity=warning team=library-it
expect "an agent warning goes to the queue" routes_to library-it-queue alertname=ConnectivityConfigReloadFailed severity=warning team=monitoring
# Every alert the rules define routes somewhere other than the default by its severity.
for severity in $(grep -o 'severity: [a-z]*' "$repo"/deploy/prometheus/rules/*.rules.yml | awk '{print $2}' | sort -u); do
  expect "severity $severity is one the routes know" test "$severity" = critical -o "$severity" = warning
done
expect "the dashboards are what build.py writes" python3 "$repo/dashboards/build.py" --check
lists_targets() { python3 "$repo/tests/e2e/dashboard_exprs.py" list "$repo"/dashboards/*.json --check c --instance i:1 --variables > /dev/null; }
expect "every dashboard target is well formed" lists_targets
expect "the provisioning files are YAML" python3 -c 'import sys, yaml; [yaml.safe_load(open(p)) for p in sys.argv[1:]]' \
  "$repo"/deploy/grafana/provisioning/*/*.yml "$repo"/deploy/prometheus/file_sd/*.yml
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]

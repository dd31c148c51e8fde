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
# The vantage alerts are the aggregated view of outages the per-agent alert already pages for.
expect "the vantage alerts go to the queue, not the pager (no double page)" \
  routes_to library-it-queue alertname=ConnectivityVantageCheckDown severity=warning team=library-it vendor=atlas system=illiad
expect "the firewall-between-vantages alert goes to the queue" \
  routes_to library-it-queue alertname=ConnectivityVantageBlocked severity=warning team=library-it vendor=atlas system=illiad
# Every alert the rules define routes somewhere other than the default by its severity.
for severity in $(grep -o 'severity: [a-z]*' "$repo"/deploy/prometheus/rules/*.rules.yml | awk '{print $2}' | sort -u); do
  expect "severity $severity is one the routes know" test "$severity" = critical -o "$severity" = warning
done
# The vantage rules compare agents by the `vantage` label the agents export: Prometheus must keep
# it (honor_labels), and the example targets must say where each agent stands.
honours_agent_labels() {
  python3 - "$repo/deploy/prometheus/prometheus.yml" <<'PY'
import sys, yaml
jobs = [j for j in yaml.safe_load(open(sys.argv[1]))["scrape_configs"] if j["job_name"] == "connectivity-agent"]
bad = [j for j in jobs if j.get("honor_labels") is not True]
sys.exit(1 if not jobs or bad else 0)
PY
}
expect "the connectivity-agent job keeps the agents' own labels (honor_labels: true)" honours_agent_labels
file_sd_labelled() {
  python3 - "$repo"/deploy/prometheus/file_sd/*.yml <<'PY'
import sys, yaml
roles = {"illiad-web-server", "staff-client", "sql-server", "catalogue-host", "ill-server", "outside"}
for path in sys.argv[1:]:
    for group in yaml.safe_load(open(path)):
        labels = group.get("labels", {})
        if labels.get("vantage") not in roles or not labels.get("site") or not group.get("targets"):
            print(f"      {path}: {group}")
            sys.exit(1)
PY
}
expect "every file_sd group has targets, a site and a vantage from the role vocabulary" file_sd_labelled
# The rule file writes the "vantage" words template out in each summary that uses it.
vantage_words_agree() {
  python3 - "$repo"/deploy/prometheus/rules/*.rules.yml <<'PY'
import re, sys, yaml
copies = set()
for path in sys.argv[1:]:
    for group in yaml.safe_load(open(path))["groups"]:
        for rule in group["rules"]:
            for text in rule.get("annotations", {}).values():
                copies.update(re.findall(r'\{\{ define "vantage" \}\}.*?\{\{ end \}\}\{\{ end \}\}', text))
sys.exit(0 if len(copies) == 1 else 1)
PY
}
expect "the copies of the vantage words template are the same" vantage_words_agree
expect "the dashboards are what build.py writes" python3 "$repo/dashboards/build.py" --check
lists_targets() { python3 "$repo/tests/e2e/dashboard_exprs.py" list "$repo"/dashboards/*.json --check c --instance i:1 --variables > /dev/null; }
expect "every dashboard target is well formed" lists_targets
expect "the provisioning files are YAML" python3 -c 'import sys, yaml; [yaml.safe_load(open(p)) for p in sys.argv[1:]]' \
  "$repo"/deploy/grafana/provisioning/*/*.yml "$repo"/deploy/prometheus/file_sd/*.yml
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# End-to-end checks of the connectivity-agent binary: CLI and exit codes, a real run scraped
# over HTTP, SIGHUP reload, SIGTERM shutdown, and the embedded default inside a network
# namespace of its own (so its DNS lookups fail locally and nothing leaves the machine).
# Usage: agent_cli_test.sh AGENT_BINARY CONFIGS_DIR
set -u
AGENT=$1
CONFIGS=$2
# The Python peers import their protocol stand-ins from tests/support.
SUPPORT_DIR=$(cd "$(dirname "$0")/../support" && pwd)
export SUPPORT_DIR
work=$(mktemp -d)
ns=""
agent_pid=""

cleanup() {
  [ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null
  [ -n "$ns" ] && ip netns delete "$ns" 2>/dev/null
  [ -n "${holder_pid:-}" ] && kill "$holder_pid" 2>/dev/null
  [ -n "${ns_peers_pid:-}" ] && kill "$ns_peers_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

source "$(dirname "$0")/../support/expect.sh"
# Waits (bounded: N tries 100 ms apart) until FILE contains PATTERN.
wait_for_line() {
  local file=$1 pattern=$2 tries=${3:-100}
  for _ in $(seq "$tries"); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# Starts the agent in the background with the given arguments; sets agent_pid and port.
start_agent() {
  # Emptied here, not by the background job's redirection: that runs later, and a reader could
  # meet the previous agent's "agent started" line, then read the file just emptied (CI did).
  : > "$work/agent.log"
  "$@" >> "$work/agent.log" 2>&1 &
  agent_pid=$!
  port=""
  # The whole line, up to its port: a reader can meet a line the agent is still writing.
  if wait_for_line "$work/agent.log" 'msg="agent started".* port=[0-9][0-9,]* '; then
    port=$(sed -n 's/.*msg="agent started".* port=\([0-9]*\).*/\1/p' "$work/agent.log" | head -1)
  fi
  [ -n "$port" ] || sed 's/^/#   agent (no port logged): /' "$work/agent.log" | tail -20
}
# Sends SIGTERM and waits (bounded, 2 s) for a clean exit; returns the exit status or 124.
stop_agent() {
  kill -TERM "$agent_pid"
  for _ in $(seq 200); do
    if ! kill -0 "$agent_pid" 2>/dev/null; then
      wait "$agent_pid"
      local status=$?
      agent_pid=""
      # A failed exit is only diagnosable with what the agent (or a sanitizer) printed.
      [ $status -ne 0 ] && sed 's/^/#   agent: /' "$work/agent.log" | tail -60
      return $status
    fi
    sleep 0.01
  done
  return 124
}

# --- CLI and exit codes ---------------------------------------------------------------
expect "--version prints the version as the exporters do" bash -c "'$AGENT' --version | grep -Eq '^connectivity-agent, version [0-9.]+ \\(revision: [0-9a-f]+|unknown\\)'"
expect "and what it was built with" bash -c "'$AGENT' --version | grep -Eq '^  openssl: +OpenSSL 3'"
expect "--help exits 0" "$AGENT" --help
"$AGENT" --no-such-flag >/dev/null 2>&1
expect "an unknown flag exits 2" test $? -eq 2
for f in "$CONFIGS"/*.toml; do
  expect "validate $(basename "$f") exits 0" "$AGENT" validate --config "$f"
done

printf '[[check]]\nname = "a"\nprobe = "tcp"\ntarget = "127.0.0.1:1"\ninterval = "5"\n' > "$work/bad.toml"
"$AGENT" validate --config "$work/bad.toml" > /dev/null 2> "$work/validate.err"
expect "validate of a bad config exits 2" test $? -eq 2
expect "the error names file:line:col and key" grep -q "bad.toml:5:12: check \"a\": key \"interval\": bad duration" "$work/validate.err"
"$AGENT" --config "$work/bad.toml" --listen 127.0.0.1:0 > /dev/null 2> "$work/run.err"
expect "running with a bad config exits 2" test $? -eq 2
expect "and logs where" grep -q 'bad.toml:5:12' "$work/run.err"
"$AGENT" --config "$work/bad.toml" --web.listen-address nowhere > /dev/null 2> "$work/listen.err"
expect "a bad --web.listen-address exits 2" test $? -eq 2
expect "and says why" grep -q 'no :port' "$work/listen.err"
printf 'tls_server_config:\n  cert_file: a.crt\n  keyfile: a.key\n' > "$work/web.yml"
"$AGENT" validate --config "$CONFIGS/loopback-demo.toml" --web.config.file "$work/web.yml" > /dev/null 2> "$work/web.err"
expect "validate of a bad web config exits 2" test $? -eq 2
expect "the web config error names file:line:col" grep -q "web.yml:3:3: tls_server_config: unknown key \"keyfile\"" "$work/web.err"
"$AGENT" --config "$CONFIGS/loopback-demo.toml" --web.config.file "$work/web.yml" --listen 127.0.0.1:0 > /dev/null 2> "$work/web-run.err"
expect "running with a bad web config exits 2" test $? -eq 2
expect "and logs where" grep -q 'web.yml:3:3' "$work/web-run.err"
printf 'basic_auth_users:\n  prometheus: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n' > "$work/web.yml"
expect "validate checks a good web config too" bash -c "'$AGENT' validate --config '$CONFIGS/loopback-demo.toml' --web.config.file '$work/web.yml' | grep -q 'web config .*web.yml: valid, plain HTTP, basic auth (1 user)'"
"$AGENT" validate --config "$work/missing.toml" > /dev/null 2>&1
expect "validate of a missing file exits 2" test $? -eq 2
: > "$work/empty.toml"
"$AGENT" validate --config "$work/empty.toml" > /dev/null 2> "$work/empty.err"
expect "validate of an empty file exits 2" test $? -eq 2
expect "and says how to allow one" grep -q 'empty.toml:1:1: no \[\[check\]\] or \[\[inbound\]\] to run.*allow_empty = true' "$work/empty.err"
printf '[agent]\nallow_empty = true\n' > "$work/empty.toml"
expect "validate of an empty config with allow_empty = true exits 0" "$AGENT" validate --config "$work/empty.toml"

# --- A real run on loopback -----------------------------------------------------------
# Loopback peers for 60 s at most: one accepts and closes; one stands in for SQL Server,
# reading a PRELOGIN and answering as SQL Server 2019 that requires encryption (the
# answer's bytes laid out as MS-TDS 2.2.6.5 has them).
cat > "$work/peers.py" <<'PY'
import os, select, socket, sys, time
sys.path.insert(0, os.environ["SUPPORT_DIR"])
from tds_standin import answer_prelogin

def listener(port_file, port=0):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(64)
    open(port_file, "w").write(str(s.getsockname()[1]))
    return s

# Optional fixed ports (argv 3 and 4), for a network namespace of the test's own.
fixed = [int(p) for p in sys.argv[3:5]] or [0, 0]
plain, sql = listener(sys.argv[1], fixed[0]), listener(sys.argv[2], fixed[1])
end = time.time() + 60
while time.time() < end:
    for s in select.select([plain, sql], [], [], 1)[0]:
        try:
            c, _ = s.accept()
            if s is sql:
                answer_prelogin(c)
            c.close()
        except OSError:
            pass
PY
python3 "$work/peers.py" "$work/open.port" "$work/sql.port" &
holder_pid=$!
for _ in $(seq 50); do [ -s "$work/open.port" ] && [ -s "$work/sql.port" ] && break; sleep 0.1; done
open_port=$(cat "$work/open.port")
sql_port=$(cat "$work/sql.port")
cat > "$work/run.toml" <<TOML
[[check]]
name = "open"
probe = "tcp"
target = "127.0.0.1:$open_port"
interval = "200ms"
timeout = "100ms"

[[check]]
name = "refused"
probe = "tcp"
target = "127.0.0.1:1"
interval = "200ms"
timeout = "100ms"

[[check]]
name = "sql"
probe = "tds"
target = "127.0.0.1:$sql_port"
interval = "200ms"
timeout = "200ms"
TOML
# --web.listen-address: the exporters' name for --listen.
start_agent "$AGENT" --config "$work/run.toml" --web.listen-address 127.0.0.1:0
expect "agent starts and logs its port" test -n "$port"
expect "an up check is logged" wait_for_line "$work/agent.log" 'msg="check up" check=open'
expect "a down check is logged with its reason" wait_for_line "$work/agent.log" 'msg="check down" check=refused .*reason=refused'
curl -sf "http://127.0.0.1:$port/metrics" > "$work/metrics.txt"
expect "/metrics has the open check up" grep -q "^connectivity_up{check=\"open\",probe=\"tcp\",target=\"127.0.0.1:$open_port\",vantage=\"any\"} 1" "$work/metrics.txt"
expect "/metrics has the refused check down" grep -q '^connectivity_up{check="refused",probe="tcp",target="127.0.0.1:1",vantage="any"} 0' "$work/metrics.txt"
expect "the tds check is up" wait_for_line "$work/agent.log" 'msg="check up" check=sql'
curl -sf "http://127.0.0.1:$port/metrics" > "$work/metrics-sql.txt"
expect "/metrics describes the SQL Server" grep -q '^connectivity_tds_server_info{check="sql",probe="tds",.*encryption="required",instance_check="not_checked",mars="off",product="SQL Server 2019",version="15.0.4153"} 1' "$work/metrics-sql.txt"
expect "/-/healthy answers" bash -c "curl -sf http://127.0.0.1:$port/-/healthy | grep -q OK"
expect "/-/ready answers once the checks have run" bash -c "curl -sf http://127.0.0.1:$port/-/ready | grep -q ready"
expect "/metrics has the process series" grep -Eq '^process_resident_memory_bytes [0-9]' "$work/metrics.txt"
stop_agent
expect "the agent stops cleanly" test $? -eq 0

# --web.listen-address is repeatable: one server, several sockets, IPv4 and IPv6 loopback.
start_agent "$AGENT" --config "$work/run.toml" --web.listen-address 127.0.0.1:0 --web.listen-address '[::1]:0'
ports=$(sed -n 's/.*msg="agent started".* port=\([0-9,]*\).*/\1/p' "$work/agent.log" | head -1)
expect "two listen addresses give two ports" bash -c "[[ '$ports' =~ ^[0-9]+,[0-9]+$ ]]"
expect "the IPv4 one serves /metrics" curl -sf -o /dev/null "http://127.0.0.1:${ports%,*}/metrics"
expect "the IPv6 one serves /metrics" curl -sf -o /dev/null "http://[::1]:${ports#*,}/metrics"

sed -i 's/name = "refused"/name = "refused-renamed"/' "$work/run.toml"
kill -HUP "$agent_pid"
expect "SIGHUP reloads the config" wait_for_line "$work/agent.log" 'msg="config reloaded"'
curl -sf "http://127.0.0.1:$port/metrics" > "$work/metrics2.txt"
expect "the renamed check is exported" grep -q 'check="refused-renamed"' "$work/metrics2.txt"
expect "the old name is gone" bash -c "! grep -q 'check=\"refused\"' '$work/metrics2.txt'"

echo 'garbage = [' > "$work/run.toml"
kill -HUP "$agent_pid"
expect "a bad SIGHUP reload is rejected and logged" wait_for_line "$work/agent.log" 'msg="config rejected; previous config still running"'
expect "the agent is still serving" bash -c "curl -sf http://127.0.0.1:$port/metrics | grep -q '^connectivity_agent_config_last_reload_successful 0'"

# Port in use: a second agent on the same port fails with a clear message and exit 1.
"$AGENT" --config "$CONFIGS/loopback-demo.toml" --listen "127.0.0.1:$port" > /dev/null 2> "$work/inuse.err"
expect "a port in use exits 1" test $? -eq 1
expect "and says so" grep -q "cannot listen on 127.0.0.1:$port" "$work/inuse.err"

stop_agent
status=$?
expect "SIGTERM stops the agent cleanly (exit 0, within 2 s)" test $status -eq 0

# --- connectivity-agent check: the one-shot firewall preflight --------------------------
"$AGENT" check --profile illiad > "$work/check.out" 2> "$work/check.err"
expect "check without the site's variables exits 2" test $? -eq 2
expect "and names each variable to set, and how" \
  grep -q 'profile "illiad" needs sql_host (.*) and web_host (.*)\. Set them with --var sql_host=\.\.\. --var web_host=\.\.\.' "$work/check.err"
"$AGENT" check --config "$work/bad.toml" > /dev/null 2> "$work/check-bad.err"
expect "check of a bad config exits 2" test $? -eq 2
expect "and names file:line:col" grep -q 'bad.toml:5:12' "$work/check-bad.err"
"$AGENT" check --profile illiad --var sql_host > /dev/null 2> "$work/check-var.err"
expect "a --var without = exits 2" test $? -eq 2
expect "and says the form" grep -q -- '--var sql_host: expected NAME=VALUE' "$work/check-var.err"
cat > "$work/check.toml" <<TOML
[agent]
timeout = "2s"
[[check]]
name = "open"
probe = "tcp"
target = "127.0.0.1:$open_port"
labels = { direction = "outbound", doc = "rule open" }
[[check]]
name = "sql"
probe = "tds"
target = "127.0.0.1:$sql_port"
labels = { direction = "outbound", doc = "rule sql" }
[[check]]
name = "closed"
probe = "tcp"
target = "127.0.0.1:1"
required = false
labels = { direction = "inbound", doc = "rule closed" }
TOML
"$AGENT" check --config "$work/check.toml" > "$work/check-table.txt" 2> "$work/check-table.err"
expect "check exits 0 when only an optional check fails" test $? -eq 0
expect "the table has a header" grep -Eq '^CHECK +TARGET +FROM +DIRECTION +RESULT +REASON +LATENCY +DETAIL +RULE$' "$work/check-table.txt"
expect "the SQL row names the server" grep -Eq "^sql +127.0.0.1:$sql_port +- +outbound +pass +success +[0-9.]+ ms +SQL Server 2019 \(15.0.4153\), encryption required +rule sql$" "$work/check-table.txt"
expect "the closed row says why" grep -Eq '^closed +127.0.0.1:1 +- +inbound +fail \(optional\) +refused ' "$work/check-table.txt"
expect "piped output has no colour and no progress line" bash -c "! grep -q \$'\\033' '$work/check-table.txt' '$work/check-table.err'"
sed -i 's/required = false/required = true/' "$work/check.toml"
"$AGENT" check --config "$work/check.toml" --format json > "$work/check.json"
expect "check exits 1 when a required check fails" test $? -eq 1
expect "the JSON parses and agrees" python3 - "$work/check.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
results = {c["name"]: (c["result"], c.get("reason")) for c in report["checks"]}
assert report["schema"] == "connectivity-agent-check/1", report["schema"]
assert report["exit_code"] == 1 and report["summary"]["failed_required"] == 1, report["summary"]
assert results == {"open": ("pass", "success"), "sql": ("pass", "success"), "closed": ("fail", "refused")}, results
PY
"$AGENT" check --config "$work/check.toml" --only-required > /dev/null
expect "--only-required still fails on a required check" test $? -eq 1

# --- Vantage roles: a host runs only the checks that must start from it -------------------
site_vars=(--var sql_host=127.0.0.1 --var "sql_port=$sql_port" --var web_host=127.0.0.1)
"$AGENT" check --profile illiad --role staff-client "${site_vars[@]}" > "$work/staff.txt" 2> "$work/staff.err"
expect "check --role staff-client lists exactly the staff client's checks" bash -c \
  "awk 'NR > 1 && NF && !/^[0-9]+ checks:/ { print \$1 }' '$work/staff.txt' | sort | tr '\n' ' ' |
     grep -qx 'illiad-client-updates illiad-file-share illiad-odyssey illiad-sql illiad-web-platform illiad-z3950 '"
expect "and its FROM column says where each row must start" \
  grep -Eq "^illiad-sql +127.0.0.1:$sql_port +illiad-web-server,staff-client +outbound +pass " "$work/staff.txt"
"$AGENT" validate --profile illiad --role staff-client "${site_vars[@]}" > "$work/validate-role.txt"
expect "validate --role says which roles and how many checks it left out" \
  grep -qx 'roles: staff-client, with vantage="staff-client"; 13 checks and watches for other roles left out' "$work/validate-role.txt"
"$AGENT" validate --profile illiad "${site_vars[@]}" > "$work/validate-norole.txt"
expect "validate without a role says none was chosen" \
  grep -q '^no role chosen: every check is loaded, with vantage="any" (its checks run from illiad-web-server, outside, staff-client;' "$work/validate-norole.txt"
"$AGENT" check --profile illiad --role staf "${site_vars[@]}" > /dev/null 2> "$work/role-bad.err"
expect "an unknown --role exits 2" test $? -eq 2
expect "and names the known roles" grep -qx -- '--role staf: unknown role (known: illiad-web-server, staff-client, sql-server, catalogue-host, ill-server, outside)' "$work/role-bad.err"

# --- [[inbound]] without CAP_NET_RAW: the watch says so, everything else runs ---------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chmod o+rx "$work"
  cat > "$work/inbound.toml" <<TOML
[[check]]
name = "open"
probe = "tcp"
target = "127.0.0.1:$open_port"
interval = "200ms"
timeout = "100ms"
[[inbound]]
name = "talis-watch"
port = 2200
sources = [{ source = "talis-eu-1", address = "192.0.2.10" }]
TOML
  chmod o+r "$work/inbound.toml"
  start_agent "$AGENT" --config "$work/inbound.toml" --listen 127.0.0.1:0
  expect "as root the watch captures" wait_for_line "$work/agent.log" 'msg="inbound watch started" check=talis-watch port=2200 interface=any'
  stop_agent
  start_agent setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
    "$AGENT" --config "$work/inbound.toml" --listen 127.0.0.1:0
  expect "without CAP_NET_RAW the agent still starts" test -n "$port"
  expect "and logs why the watch is not running" \
    wait_for_line "$work/agent.log" 'msg="inbound watch not running; every other check goes on" check=talis-watch why="no permission to capture: the agent needs CAP_NET_RAW'
  expect "the other checks run" wait_for_line "$work/agent.log" 'msg="check up" check=open'
  curl -sf "http://127.0.0.1:$port/metrics" > "$work/inbound.txt"
  expect "the watch exports that it is not running" grep -q '^connectivity_inbound_watch_running{check="talis-watch",vantage="any",port="2200"} 0' "$work/inbound.txt"
  stop_agent
  expect "and stops cleanly" test $? -eq 0
else
  echo "# skipped: [[inbound]] without CAP_NET_RAW (needs root and setpriv)"
fi

# --- The embedded default, where its hosts cannot be reached ---------------------------
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
  ns="ca-e2e-$$"
  if ip netns add "$ns" && ip -n "$ns" link set lo up; then
    start_agent ip netns exec "$ns" "$AGENT" --listen 127.0.0.1:0
    expect "the embedded default starts with no network" test -n "$port"
    # First runs are spread over the 15 s interval, and a failure is confirmed by four re-runs
    # 1 s apart: wait for one (bounded, 35 s).
    expect "its hosts are reported down, truthfully (dns_error)" \
      wait_for_line "$work/agent.log" 'msg="check down" check=.* reason=dns_error' 350
    ip netns exec "$ns" curl -sf "http://127.0.0.1:$port/metrics" > "$work/default.txt"
    expect "its three checks are exported" test "$(grep -c '^connectivity_check_required{' "$work/default.txt")" -eq 3
    expect "as TLS checks" test "$(grep -c '^connectivity_check_required{.*probe="tls"' "$work/default.txt")" -eq 3
    stop_agent
    expect "and it stops cleanly" test $? -eq 0

    # Open, refused and dropped targets, seen by the binary: in a namespace of our own every
    # port is free, so the agent can listen on a fixed one and probe itself.
    printf 'table inet e2e {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 7001 drop\n  }\n}\n' > "$work/drop.nft"
    expect "an nft drop rule loads in the namespace" ip netns exec "$ns" nft -f "$work/drop.nft"
    cat > "$work/three.toml" <<'TOML'
[agent]
interval = "300ms"
timeout = "200ms"
[[check]]
name = "open"
probe = "tcp"
target = "127.0.0.1:9470"
[[check]]
name = "refused"
probe = "tcp"
target = "127.0.0.1:1"
[[check]]
name = "dropped"
probe = "tcp"
target = "127.0.0.1:7001"
TOML
    start_agent ip netns exec "$ns" "$AGENT" --config "$work/three.toml" --listen 127.0.0.1:9470
    expect "the dropped target is reported as a timeout" \
      wait_for_line "$work/agent.log" 'msg="check down" check=dropped .*reason=timeout'
    wait_for_line "$work/agent.log" 'msg="check up" check=open'
    ip netns exec "$ns" curl -sf "http://127.0.0.1:9470/metrics" > "$work/three.txt"
    expect "open is up" grep -q '^connectivity_up{check="open",probe="tcp",target="127.0.0.1:9470",vantage="any"} 1' "$work/three.txt"
    expect "refused is down" grep -q '^connectivity_up{check="refused",probe="tcp",target="127.0.0.1:1",vantage="any"} 0' "$work/three.txt"
    expect "dropped is down" grep -q '^connectivity_up{check="dropped",probe="tcp",target="127.0.0.1:7001",vantage="any"} 0' "$work/three.txt"
    expect "refused counts as refused" grep -Eq '^connectivity_probes_total\{check="refused",.*result="refused"\} [1-9]' "$work/three.txt"
    expect "dropped counts as timeout" grep -Eq '^connectivity_probes_total\{check="dropped",.*result="timeout"\} [1-9]' "$work/three.txt"
    expect "dropped shows the connect phase it died in" \
      grep -Eq '^connectivity_probe_duration_seconds\{check="dropped",.*phase="connect"\} 0\.[0-9]*[1-9]' "$work/three.txt"
    stop_agent
    expect "and stops cleanly" test $? -eq 0

    # The ILLiad profile after a "firewall change", in the namespace: SQL Server answers on
    # 1433 and Odyssey accepts on 7968; the web server's 443 is closed; ISO ILL's 1611 is
    # dropped; OCLC and Atlas cannot be resolved. The site config sets a short timeout.
    ip netns exec "$ns" python3 "$work/peers.py" "$work/ns-open.port" "$work/ns-sql.port" 7968 1433 &
    ns_peers_pid=$!
    for _ in $(seq 50); do [ -s "$work/ns-sql.port" ] && break; sleep 0.1; done
    printf 'table inet iso {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 1611 drop\n  }\n}\n' > "$work/iso.nft"
    ip netns exec "$ns" nft -f "$work/iso.nft"
    printf '[agent]\ntimeout = "1s"\n[[include]]\nprofile = "illiad"\n' > "$work/illiad-site.toml"
    ip netns exec "$ns" "$AGENT" check --config "$work/illiad-site.toml" --var sql_host=127.0.0.1 --var web_host=127.0.0.1 \
      > "$work/illiad.txt" 2>&1
    expect "check --profile illiad exits 1: required ports are closed" test $? -eq 1
    sed 's/^/#   /' "$work/illiad.txt"
    expect "SQL Server answers on 1433" grep -Eq '^illiad-sql +127.0.0.1:1433 +illiad-web-server,staff-client +outbound +pass +success .*SQL Server 2019' "$work/illiad.txt"
    expect "Odyssey accepts on 7968" grep -Eq '^illiad-odyssey +127.0.0.1:7968 +staff-client,outside +inbound +pass ' "$work/illiad.txt"
    expect "the web pages are closed" grep -Eq '^illiad-web-pages +https://127.0.0.1/illiad/logon.html +outside +inbound +FAIL +refused ' "$work/illiad.txt"
    expect "ISO ILL 1611 is dropped (optional)" grep -Eq '^illiad-iso-ill +127.0.0.1:1611 +outside +inbound +fail \(optional\) +timeout ' "$work/illiad.txt"
    expect "OCLC is not resolvable" grep -Eq '^oclc-webservices +webservices.oclc.org:443 +illiad-web-server +outbound +FAIL +dns_error ' "$work/illiad.txt"
    expect "unset optional hosts are listed as skipped" grep -Eq '^illiad-z3950 +.* skipped +- +- +not run: set catalogue_host ' "$work/illiad.txt"
    expect "each row quotes its seed rule" grep -Eq 'ILLiad required ports: Odyssey Electronic Delivery \(7968\)$' "$work/illiad.txt"
    kill "$ns_peers_pid" 2>/dev/null
  else
    not_ok "could not create a network namespace"
  fi
else
  echo "# skipped: embedded default in a network namespace (needs root and iproute2)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

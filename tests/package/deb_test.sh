#!/usr/bin/env bash
# The Debian package, end to end: builds it (cpack -G DEB), checks what it holds and what it
# depends on, runs lintian (an error fails the test; warnings are printed), installs it with
# apt-get, runs the unit's commands the way systemd would (unprivileged, CAP_NET_RAW only) on
# a loopback config, verifies the unit, and purges the package again.
# Usage: deb_test.sh [BUILD_DIR]
#   Without BUILD_DIR, build/deb-test is configured with -DCONNECTIVITY_TESTS=OFF.
# Needs root (it installs a package); skips otherwise. Needs dpkg-dev, lintian, curl, setpriv
# (util-linux) and systemd-analyze (systemd). Everything it starts binds 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
source_dir=$PWD

if [ "$(id -u)" -ne 0 ]; then
  echo "# skipped: the package test installs a package and needs root"
  exit 0
fi
for tool in cmake cpack dpkg-deb dpkg-shlibdeps lintian apt-get curl setpriv systemd-analyze readelf; do
  if ! command -v "$tool" > /dev/null; then
    echo "not ok - $tool is missing (dpkg-dev, lintian, curl, util-linux, systemd, binutils)"
    exit 1
  fi
done
if dpkg-query -W -f='${Status}' connectivity-agent 2>/dev/null | grep -q 'installed'; then
  echo "not ok - connectivity-agent is already installed here; the test would purge it"
  exit 1
fi

build_dir=${1:-$source_dir/build/deb-test}
work=$(mktemp -d)
chmod 755 "$work"  # the agent runs as nobody and reads its config here; _apt reads the .deb
agent_pid=""
installed=""

cleanup() {
  if [ -n "$agent_pid" ]; then kill -9 "$agent_pid" 2>/dev/null || true; fi
  if [ -n "$installed" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q connectivity-agent > /dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

source tests/support/expect.sh
listed() { grep -qxF "$1" "$work/contents.txt"; }

# --- build and package ----------------------------------------------------------------
if [ $# -eq 0 ]; then
  # Debian's hardening flags (fortify, stack protector, relro, bindnow), as a package build
  # would get them from dpkg-buildflags; CMake reads CXXFLAGS and LDFLAGS at first configure.
  export DEB_BUILD_MAINT_OPTIONS=hardening=+all
  CXXFLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)" \
  LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
    cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCONNECTIVITY_TESTS=OFF > /dev/null
fi
cmake --build "$build_dir" --target connectivity-agent -j "${JOBS:-2}"
(cd "$build_dir" && cpack -G DEB -B "$work/pkg") > "$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log"
  echo "not ok - cpack -G DEB"
  exit 1
}
debs=("$work"/pkg/connectivity-agent_*.deb)
expect "cpack made one connectivity-agent_*.deb" test ${#debs[@]} -eq 1 -a -f "${debs[0]}"
deb=${debs[0]}
echo "# package: $(basename "$deb")"
version=$(sed -n 's/^project(connectivity-agent VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")

# --- what the package holds -------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' > "$work/contents.txt"
expected=(
  /usr/bin/connectivity-agent
  /lib/systemd/system/connectivity-agent.service
  /etc/connectivity-agent/agent.toml
  /etc/connectivity-agent/web-config.example.yml
  /usr/share/doc/connectivity-agent/README.md
  /usr/share/doc/connectivity-agent/copyright
  /usr/share/doc/connectivity-agent/changelog.Debian.gz
  /usr/share/lintian/overrides/connectivity-agent
  /usr/share/man/man1/connectivity-agent.1.gz
  /usr/share/connectivity-agent/dashboards
)
# Whole directories are installed: every file there is expected (prometheus/tests excluded).
for f in "$source_dir"/configs/*.toml "$source_dir"/configs/profiles/*.toml; do
  expected+=("/usr/share/connectivity-agent/configs/${f#"$source_dir"/configs/}")
done
for f in "$source_dir"/dashboards/*.json; do
  [ -e "$f" ] && expected+=("/usr/share/connectivity-agent/dashboards/${f##*/}")
done
while IFS= read -r f; do
  expected+=("/usr/share/connectivity-agent/prometheus/$f")
done < <(cd "$source_dir/deploy/prometheus" && find . -path ./tests -prune -o -type f -print | sed 's|^\./||')
for pair in "deploy/alertmanager:alertmanager" "deploy/grafana/provisioning:grafana"; do
  src=$source_dir/${pair%%:*}
  [ -d "$src" ] || continue
  while IFS= read -r f; do
    expected+=("/usr/share/connectivity-agent/${pair##*:}/$f")
  done < <(cd "$src" && find . -type f -print | sed 's|^\./||')
done
missing=()
for f in "${expected[@]}"; do listed "$f" || missing+=("$f"); done
expect "the package holds all ${#expected[@]} expected paths${missing[*]:+ (missing: ${missing[*]})}" \
  test ${#missing[@]} -eq 0
expect "and no prometheus tests folder" bash -c "! grep -q '^/usr/share/connectivity-agent/prometheus/tests' '$work/contents.txt'"

dpkg-deb -e "$deb" "$work/control"
expect "the config is a conffile" grep -qxF /etc/connectivity-agent/agent.toml "$work/control/conffiles"
for script in postinst prerm postrm; do
  expect "$script is executable and sh -n clean" bash -c "test -x '$work/control/$script' && sh -n '$work/control/$script'"
done
expect "Package: connectivity-agent" test "$(dpkg-deb -f "$deb" Package)" = connectivity-agent
expect "Version: $version-1 (from project())" test "$(dpkg-deb -f "$deb" Version)" = "$version-1"
expect "Section: net" test "$(dpkg-deb -f "$deb" Section)" = net
for field in Maintainer Homepage Description; do
  expect "$field is set" test -n "$(dpkg-deb -f "$deb" "$field")"
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "# Depends: $depends"
for lib in libc6 libssl3 libyaz5 libpcap0.8; do
  expect "Depends names $lib (shlibdeps)" grep -q "\b$lib\b" <<< "$depends"
done
dpkg-deb -x "$deb" "$work/root"
expect "the binary is stripped" bash -c "! readelf -S '$work/root/usr/bin/connectivity-agent' | grep -q '\.symtab'"
expect "changelog.Debian.gz is gzip -n (no name, no time stamp)" \
  bash -c "gzip -t '$work/root/usr/share/doc/connectivity-agent/changelog.Debian.gz' && \
           test \"\$(od -An -tx1 -j4 -N4 '$work/root/usr/share/doc/connectivity-agent/changelog.Debian.gz' | tr -d ' ')\" = 00000000"

# --- lintian ----------------------------------------------------------------------------
# As an unprivileged user (lintian advises against root). It exits non-zero on errors; every
# tag, info included, is printed for the log.
lintian_status=0
setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
  lintian --display-info --tag-display-limit 0 "$deb" > "$work/lintian.txt" 2>&1 || lintian_status=$?
sed 's/^/# lintian: /' "$work/lintian.txt"
expect "lintian reports no errors" bash -c "! grep -q '^E: ' '$work/lintian.txt' && test $lintian_status -eq 0"

# --- install (the way the issue asks) -------------------------------------------------------
installed=yes
(cd "$work/pkg" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./connectivity-agent_*.deb) \
  > "$work/install.log" 2>&1 || { cat "$work/install.log"; not_ok "apt-get install ./connectivity-agent_*.deb"; exit 1; }
ok "apt-get install -y ./connectivity-agent_*.deb"
expect "dpkg has it installed" bash -c "dpkg-query -W -f='\${Status}' connectivity-agent | grep -q 'install ok installed'"
expect "/usr/bin/connectivity-agent --version is $version" bash -c "/usr/bin/connectivity-agent --version | grep -q '^connectivity-agent, version $version '"
expect "the installed config validates" /usr/bin/connectivity-agent validate --config /etc/connectivity-agent/agent.toml
expect "postinst enabled the unit" test -L /etc/systemd/system/multi-user.target.wants/connectivity-agent.service

unit=/lib/systemd/system/connectivity-agent.service
systemd-analyze verify "$unit" > "$work/verify.txt" 2>&1 && verify_status=0 || verify_status=$?
sed 's/^/# systemd-analyze: /' "$work/verify.txt"
expect "systemd-analyze verify is clean" test "$verify_status" -eq 0 -a ! -s "$work/verify.txt"

# --- the unit's commands, run as systemd would (without systemd as PID 1) ------------------
# As the unit's unprivileged user with CAP_NET_RAW alone (ambient, bounding set, no new
# privileges), on a copy of the config path that listens on loopback and probes only itself.
port=""
for _ in $(seq 50); do
  candidate=$((20000 + RANDOM % 20000))
  if ! (exec 3<> "/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
expect "a free loopback port" test -n "$port"
cat > "$work/agent.toml" <<TOML
[agent]
listen = "127.0.0.1:$port"
interval = "1s"
timeout = "500ms"

[[check]]
name = "itself"
probe = "tcp"
target = "127.0.0.1:$port"

[[inbound]]
name = "loopback-watch"
port = $((port + 1))
interface = "lo"
sources = [{ source = "doc", address = "192.0.2.10" }]
TOML
chmod 644 "$work/agent.toml"
as_service=(setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs
  "--inh-caps=-all,+net_raw" "--ambient-caps=-all,+net_raw" "--bounding-set=-all,+net_raw" --)
unit_command() {  # the unit's KEY= command line, with the test's files in place of /etc's
  sed -n "s|^$1=||p" "$unit" |
    sed -e "s|/etc/connectivity-agent/agent.toml|$work/agent.toml|g" \
        -e "s|/etc/connectivity-agent/web-config.yml|$work/web-config.yml|g"
}
# The lines are /bin/sh -c '...', quoted as a shell quotes them (and without a '$' for systemd
# to expand): the shell splits them as systemd does.
eval "pre_command=($(unit_command ExecStartPre))"
eval "start_command=($(unit_command ExecStart))"
expect "ExecStartPre (validate) passes as the service user" "${as_service[@]}" "${pre_command[@]}"
"${as_service[@]}" "${start_command[@]}" > "$work/agent.log" 2>&1 &
agent_pid=$!
healthy=""
for _ in $(seq 100); do  # 10 s at most
  if curl -sf "http://127.0.0.1:$port/-/healthy" > /dev/null 2>&1; then healthy=yes; break; fi
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.1
done
expect "ExecStart serves /-/healthy within 10 s" test -n "$healthy"
if [ -n "$healthy" ]; then
  expect "it runs as nobody with CAP_NET_RAW only" bash -c \
    "grep -Eq '^Uid:\s+65534\s' /proc/$agent_pid/status && grep -Eq '^CapEff:\s+0000000000002000$' /proc/$agent_pid/status"
  curl -sf "http://127.0.0.1:$port/metrics" > "$work/metrics.txt" || true
  expect "/metrics has connectivity_agent_build_info" grep -q '^connectivity_agent_build_info{' "$work/metrics.txt"
  expect "the inbound watch captures with the ambient CAP_NET_RAW" \
    grep -Eq '^connectivity_inbound_watch_running\{check="loopback-watch".*\} 1$' "$work/metrics.txt"
fi
kill -TERM "$agent_pid" 2>/dev/null || true
stopped=""
for _ in $(seq 50); do  # 5 s at most
  if ! kill -0 "$agent_pid" 2>/dev/null; then stopped=yes; break; fi
  sleep 0.1
done
stop_status=0
if [ -n "$stopped" ]; then wait "$agent_pid" || stop_status=$?; fi
agent_pid=""
expect "SIGTERM stops it cleanly" test -n "$stopped" -a "$stop_status" -eq 0
[ $failed -eq 0 ] || sed 's/^/#   agent: /' "$work/agent.log" | tail -30

# --- the web config: passed by the unit once the admin creates web-config.yml ---------------
expect "the package ships the example web config as a conffile" \
  grep -qxF /etc/connectivity-agent/web-config.example.yml "$work/control/conffiles"
expect "the example as shipped validates (every setting commented out)" \
  /usr/bin/connectivity-agent validate --config /etc/connectivity-agent/agent.toml \
  --web.config.file /etc/connectivity-agent/web-config.example.yml
# Basic auth only (the password is "change-me"): TLS is tested elsewhere; this is the unit's wiring.
printf 'basic_auth_users:\n  prometheus: %s\n' \
  "$(sed -n 's/^#   prometheus: //p' /etc/connectivity-agent/web-config.example.yml)" > "$work/web-config.yml"
chmod 644 "$work/web-config.yml"
printf 'tls_server_config:\n  cert_file: nowhere.crt\n' > "$work/bad-web-config.yml"
cp "$work/web-config.yml" "$work/good-web-config.yml"
cp "$work/bad-web-config.yml" "$work/web-config.yml"
if "${as_service[@]}" "${pre_command[@]}" > /dev/null 2>&1; then
  not_ok "ExecStartPre refuses a bad web-config.yml"
else
  ok "ExecStartPre refuses a bad web-config.yml"
fi
cp "$work/good-web-config.yml" "$work/web-config.yml"
expect "ExecStartPre passes with a good one" "${as_service[@]}" "${pre_command[@]}"
"${as_service[@]}" "${start_command[@]}" > "$work/agent-web.log" 2>&1 &
agent_pid=$!
healthy=""
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$port/-/healthy" > /dev/null 2>&1; then healthy=yes; break; fi
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.1
done
expect "with web-config.yml, /-/healthy still needs no password" test -n "$healthy"
expect "and /metrics needs one" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")" = 401
expect "which the example's user has" curl -sf -o /dev/null -u prometheus:change-me "http://127.0.0.1:$port/metrics"
kill -TERM "$agent_pid" 2>/dev/null || true
wait "$agent_pid" 2>/dev/null || true
agent_pid=""

# --- purge ------------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q connectivity-agent > "$work/purge.log" 2>&1 \
  && purge_status=0 || purge_status=$?
installed=""
expect "apt-get purge -y connectivity-agent" test "$purge_status" -eq 0
left=()
for f in /usr/bin/connectivity-agent "$unit" /etc/connectivity-agent /usr/share/connectivity-agent \
  /usr/share/doc/connectivity-agent /usr/share/lintian/overrides/connectivity-agent \
  /etc/systemd/system/multi-user.target.wants/connectivity-agent.service; do
  if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done
expect "purge leaves nothing behind${left[*]:+ (left: ${left[*]})}" test ${#left[@]} -eq 0
expect "dpkg no longer knows it" bash -c "! dpkg-query -W -f='\${Status}' connectivity-agent 2>/dev/null | grep -q installed"

echo "# $passed passed, $failed failed"
[ $failed -eq 0 ]

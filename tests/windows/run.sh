#!/usr/bin/env bash
# The Windows build and its tests, on a Debian bookworm machine: builds connectivity-agent.exe and
# the unit tests for Windows (deploy/windows/build.sh, dependencies from Debian's source packages,
# cached), runs every unit test executable under wine64, then the .exe end to end under wine
# against real loopback peers (tests/windows/e2e_wine.py), then the MSI and the service in a wine
# prefix of their own (tests/windows/service_wine.py).
# Usage: tests/windows/run.sh [LINUX_AGENT]   (with it, the e2e test also compares
# `check --profile illiad`'s table with the Linux binary's)
set -euo pipefail
cd "$(dirname "$0")/../.."
linux_agent=${1:-}

CONNECTIVITY_TESTS=ON bash deploy/windows/build.sh

# One wine prefix for the run, removed when it ends. Each test process shares the wineserver
# while others run and a new one starts after it ends: a persistent server would hand the session's
# services a test's output pipe, and would keep its own aborts (Wine 8.0's sock.c assertion) out
# of the agent's output, where the e2e test looks for them to start over.
export WINEPREFIX
WINEPREFIX=$(mktemp -d /tmp/connectivity-wine.XXXXXX)
export WINEDEBUG=-all
wineserver=/usr/lib/wine/wineserver  # Debian's wine64 puts it here, not on PATH
cleanup() {
  WINEPREFIX=$WINEPREFIX $wineserver -k 2> /dev/null || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT
/usr/lib/wine/wine64 wineboot -i > /dev/null 2>&1
$wineserver -w  # wineboot's server ends first: a command racing its shutdown meets dying services

# Every Windows process of the prefix, the ones a dead wineserver leaves behind included (they
# wait on it forever and hold the output pipe of the test that started them).
kill_prefix_processes() {
  $wineserver -k 2> /dev/null || true
  local pid
  for pid in $(grep -lsxzF "WINEPREFIX=$WINEPREFIX" /proc/[0-9]*/environ | cut -d/ -f3); do
    [ "$pid" != $$ ] && kill -9 "$pid" 2> /dev/null || true
  done
}

echo "== Windows unit tests under wine"
# Wine 8.0's wineserver sometimes aborts in its own socket code (server/sock.c,
# complete_async_poll: an assertion) while a test serves sockets: every process of the prefix
# then waits on a server that is gone, until the test's timeout. It is Wine's defect, not the
# agent's, as the e2e and service tests below also find: the tests that failed run once more on
# a fresh wineserver, saying so, and a failure then (or any failure without that assertion)
# fails the run.
unit_log=$(mktemp /tmp/connectivity-wine-ctest.XXXXXX)
set +e
ctest --no-tests=error --test-dir build/windows --output-on-failure -j "$(nproc)" 2>&1 | tee "$unit_log"
unit_status=${PIPESTATUS[0]}
set -e
aborted=no
grep -q "complete_async_poll: Assertion" "$unit_log" && aborted=yes
rm -f "$unit_log"
if [ "$unit_status" -ne 0 ]; then
  [ "$aborted" = yes ] || exit "$unit_status"
  echo "== wineserver aborted (Wine's sock.c assertion), not a test: the failed tests once more on a fresh wineserver"
  kill_prefix_processes
  ctest --no-tests=error --test-dir build/windows --output-on-failure --rerun-failed
fi
kill_prefix_processes  # the e2e test starts its own wineserver

echo "== connectivity-agent.exe end to end under wine"
python3 tests/windows/e2e_wine.py build/windows/agent/connectivity-agent.exe $linux_agent

echo "== the MSI and the Windows service under wine"
# The upgrade is tried with the same .exe packaged as the next patch version.
version=$(sed -n 's/^project(connectivity-agent VERSION \([0-9]*\.[0-9]*\)\.\([0-9]*\).*/\1 \2/p' CMakeLists.txt)
next_version="${version% *}.$(( ${version#* } + 1 ))"
bash deploy/windows/build-msi.sh build/windows/agent/connectivity-agent.exe build/windows/upgrade-test.msi "$next_version"
python3 tests/windows/service_wine.py "build/windows/connectivity-agent-${version% *}.${version#* }.msi" build/windows/upgrade-test.msi \
  build/windows/agent/connectivity-agent.exe

#!/usr/bin/env bash
# The Windows build and its tests, on a Debian bookworm machine: builds connectivity-agent.exe and
# the unit tests for Windows (deploy/windows/build.sh, dependencies from Debian's source packages,
# cached), runs every unit test executable under wine64, then the .exe end to end under wine
# against real loopback peers (tests/windows/e2e_wine.py).
# Usage: tests/windows/run.sh [LINUX_AGENT]   (with it, the e2e test also compares
# `check --profile illiad`'s table with the Linux binary's)
set -euo pipefail
cd "$(dirname "$0")/../.."
linux_agent=${1:-}

CONNECTIVITY_TESTS=ON bash deploy/windows/build.sh

# One wine prefix for the run, its wineserver kept up between the test processes (-p) so each
# does not start its own; both go when the run ends.
export WINEPREFIX
WINEPREFIX=$(mktemp -d /tmp/connectivity-wine.XXXXXX)
export WINEDEBUG=-all
cleanup() {
  WINEPREFIX=$WINEPREFIX wineserver -k 2> /dev/null || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT
/usr/lib/wine/wine64 wineboot -i > /dev/null 2>&1
wineserver -p 2> /dev/null || true

echo "== Windows unit tests under wine"
ctest --no-tests=error --test-dir build/windows --output-on-failure -j "$(nproc)"

echo "== connectivity-agent.exe end to end under wine"
python3 tests/windows/e2e_wine.py build/windows/agent/connectivity-agent.exe $linux_agent

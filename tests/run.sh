#!/usr/bin/env bash
# Fresh Debian bookworm machine to a full test run: installs build and test dependencies,
# builds with warnings as errors, and runs every test (ctest: unit tests and the end-to-end
# test of the binary), then again under AddressSanitizer+UndefinedBehaviorSanitizer, and the
# threaded parts (scheduler, running agent) under ThreadSanitizer, and last the libFuzzer
# targets for a bounded time (FUZZ_SECONDS per target, default 30), then the Debian package
# (built, linted, installed with apt-get, started as the service would run it, purged), and last
# the Windows build: connectivity-agent.exe and its unit tests cross-built with mingw-w64 (the
# dependencies from Debian's source packages, cached under /var/cache), run under wine64, with
# the .exe end to end and the MSI installing, reloading, upgrading and removing the service.
# Run as root for the network-namespace tests (they skip, saying so, otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh --test --windows

jobs=$(nproc)
# The test builds live in build/release, build/asan and build/tsan, never in deploy/run-dev.sh's
# build/run: that one is configured without tests, and a cached CONNECTIVITY_TESTS=OFF would
# leave ctest with nothing to run. The option is forced on here all the same, and every ctest
# call fails on zero tests rather than passing quietly.
build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCONNECTIVITY_WERROR=ON -DCONNECTIVITY_TESTS=ON "$@" > /dev/null
  cmake --build "$dir" -j "$jobs"
}

echo "== release build and tests"
build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --no-tests=error --test-dir build/release --output-on-failure -j "$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
build build/asan -DCMAKE_BUILD_TYPE=Debug -DCONNECTIVITY_SANITIZE=address,undefined
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --no-tests=error --test-dir build/asan --output-on-failure -j "$jobs"

echo "== ThreadSanitizer (scheduler, running agent, preflight, inbound capture, coalesced reload and render, the web config swapped under TLS clients)"
build build/tsan -DCMAKE_BUILD_TYPE=Debug -DCONNECTIVITY_SANITIZE=thread
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --no-tests=error --test-dir build/tsan --output-on-failure -j "$jobs" -R '^(Schedule|Scheduler|RunningAgent|AgentStartup|PreflightFixture|InboundCapture|CoalescedJob|TlsServer|BasicAuth)\.'

# 30 s per target keeps the whole run inside CI's hour with the Windows stage; the seeds and
# dictionaries carry the known shapes, and a long run is one variable away (README).
export FUZZ_SECONDS=${FUZZ_SECONDS:-30}
echo "== libFuzzer (clang, ASan+UBSan), ${FUZZ_SECONDS}s per target"
bash tests/fuzz/run.sh

echo "== Debian package (build, lintian, apt-get install, start as the service user, purge)"
# From the release build above (already built; cpack takes only what install() names).
JOBS="$jobs" bash tests/package/deb_test.sh build/release

echo "== Windows: connectivity-agent.exe and the unit tests under wine, the .exe end to end"
bash tests/windows/run.sh build/release/agent/connectivity-agent

#!/usr/bin/env bash
# Fresh Debian bookworm machine to build/windows/agent/connectivity-agent.exe: a native Windows x64
# build (Windows 10 / Server 2016 and later) of the same sources, one self-contained .exe, and
# its installer build/windows/connectivity-agent-VERSION.msi (deploy/windows/build-msi.sh).
# Installs the cross compiler, builds the compiled dependencies from Debian's source packages
# once (cached under /var/cache/connectivity-agent/windows, keyed by version), then the agent.
#   CONNECTIVITY_TESTS=ON also builds the unit tests for Windows (tests/windows/run.sh runs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/install-deps.sh --windows
bash deploy/windows/build-deps.sh build/windows/dependencies.cmake
cmake -S . -B build/windows -G Ninja -DCMAKE_TOOLCHAIN_FILE="$PWD/build/windows/dependencies.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DCONNECTIVITY_WERROR=ON -DCONNECTIVITY_TESTS="${CONNECTIVITY_TESTS:-OFF}" > /dev/null
cmake --build build/windows -j "$(nproc)"
echo "built: build/windows/agent/connectivity-agent.exe"
bash deploy/windows/build-msi.sh

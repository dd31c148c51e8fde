#!/usr/bin/env bash
# Fresh Debian bookworm machine to a running agent: installs the build dependencies, builds,
# and runs connectivity-agent on its embedded default config (the ILLiad outbound essentials),
# serving http://localhost:9470/metrics. Extra arguments go to the agent, e.g.
#   bash deploy/run-dev.sh --config configs/loopback-demo.toml
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
# build/run, not tests/run.sh's build/release: this build is configured without tests, and
# sharing a build directory would carry that setting over into the test run.
cmake -S . -B build/run -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONNECTIVITY_TESTS=OFF > /dev/null
cmake --build build/run --target connectivity-agent
exec build/run/agent/connectivity-agent "$@"

#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a bounded time, from
# the checked-in seeds. Finds go to build/fuzz/findings/<target>/ and fail the run.
# CI runs it for FUZZ_SECONDS=30 per target; by hand, e.g.: FUZZ_SECONDS=3600 bash tests/fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
cxx=${FUZZ_CXX:-clang++-14}
build=build/fuzz

cmake -S . -B "$build" -G Ninja -DCONNECTIVITY_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build "$build" -j "$(nproc)"

status=0
for target in tds_prelogin tds_browser ber_frame z3950_response ill_reply ldap_message dns_answer inbound_frame; do
  work="$build/corpus/$target"      # what the fuzzer learns stays out of the repo
  findings="$build/findings/$target"
  mkdir -p "$work" "$findings"
  case $target in
    ber_frame | z3950_response | ill_reply) dict=tests/fuzz/ber.dict ;;  # one BER vocabulary
    *) dict=tests/fuzz/$target.dict ;;
  esac
  echo "== fuzzing $target for ${seconds}s"
  if ! "$build/tests/fuzz/${target}_fuzz" "$work" "tests/fuzz/corpus/$target" \
      -dict="$dict" -max_total_time="$seconds" -max_len=20000 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$findings/" -print_final_stats=1 2>&1 | tail -n 25; then
    status=1
  fi
  if [ -n "$(ls -A "$findings")" ]; then
    echo "$target: the fuzzer found inputs that crash or hang: $findings" >&2
    status=1
  fi
done
exit $status

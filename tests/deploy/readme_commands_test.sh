#!/usr/bin/env bash
# The README's two commands, run one after the other on one machine, must not weaken each
# other: deploy/run-dev.sh builds without tests, so it must not share a build directory with
# tests/run.sh, whose builds force the tests on; and every ctest call in tests/run.sh must fail
# when it finds no test, so a build without tests can never pass as a green run.
# Usage: readme_commands_test.sh REPO_ROOT
set -uo pipefail
repo=$1
source "$(dirname "$0")/../support/expect.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dev_dir=$(sed -n 's/^cmake -S \. -B \([^ ]*\).*/\1/p' "$repo/deploy/run-dev.sh" | head -1)
test_dirs=$(sed -n 's/^build \([^ ]*\).*/\1/p' "$repo/tests/run.sh")
expect "run-dev.sh names its build directory" test -n "$dev_dir"
expect "tests/run.sh names its build directories" test -n "$test_dirs"
for dir in $test_dirs; do
  expect "run-dev.sh's $dev_dir is not tests/run.sh's $dir" test "$dev_dir" != "$dir"
done

# tests/run.sh's own ctest calls and those of the Windows stage it runs (tests/windows/run.sh).
ctest_calls=$(cat "$repo/tests/run.sh" "$repo/tests/windows/run.sh" | grep -c '^ *ctest ')
guarded=$(cat "$repo/tests/run.sh" "$repo/tests/windows/run.sh" | grep -c '^ *ctest .*--no-tests=error')
expect "tests/run.sh runs the Windows stage" grep -q '^bash tests/windows/run.sh' "$repo/tests/run.sh"
expect "the Windows stage builds the MSI and tests it and the service" \
  grep -q '^python3 tests/windows/service_wine.py' "$repo/tests/windows/run.sh"
expect "the Windows build script builds the MSI" grep -q '^bash deploy/windows/build-msi.sh' "$repo/deploy/windows/build.sh"
expect "tests/run.sh calls ctest" test "$ctest_calls" -gt 0
expect "every ctest call in tests/run.sh fails on zero tests ($guarded of $ctest_calls)" test "$guarded" -eq "$ctest_calls"
expect "tests/run.sh forces the tests on in its builds" grep -q -- '-DCONNECTIVITY_TESTS=ON' "$repo/tests/run.sh"

# What the guard is for, shown: a build directory configured as run-dev.sh does has no tests,
# ctest passes it unless told otherwise, and fails it with --no-tests=error.
cmake -S "$repo" -B "$work/dev" -G Ninja -DCONNECTIVITY_TESTS=OFF > "$work/configure.log" 2>&1
expect "a build configured without tests configures" test $? -eq 0
ctest --test-dir "$work/dev" > /dev/null 2>&1
expect "plain ctest passes a build without tests (the trap)" test $? -eq 0
ctest --no-tests=error --test-dir "$work/dev" > /dev/null 2>&1
expect "ctest --no-tests=error fails it" test $? -ne 0
# Reconfigured as tests/run.sh does, the same directory has tests again (no build needed to
# list the ones registered with add_test).
cmake -S "$repo" -B "$work/dev" -G Ninja -DCONNECTIVITY_WERROR=ON -DCONNECTIVITY_TESTS=ON > "$work/configure.log" 2>&1
listed=$(ctest -N --test-dir "$work/dev" 2>/dev/null | sed -n 's/^Total Tests: \([0-9]*\)/\1/p')
expect "tests/run.sh's configure brings the tests back into that directory ($listed listed)" test "${listed:-0}" -gt 0

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]

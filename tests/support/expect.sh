# TAP-style assertions for the shell tests (source it): ok, not_ok, and
# `expect DESCRIPTION COMMAND...`, which runs COMMAND and counts it in $passed or $failed.
passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
expect() {  # expect DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

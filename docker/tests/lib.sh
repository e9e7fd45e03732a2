# Shared by the Docker test scripts (test-image.sh, test-ha-compose.sh): sourced, not run.
# Each check prints "PASS name", "FAIL name: why" or "SKIP name: why"; summary prints "N passed, M failed" and exits
# non-zero when a check failed.

PASSED=0 FAILED=0 SKIPPED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $(printf '%s' "$2" | tr '\n' ' ')"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $1: $2"; }
info() { echo "  .. $*"; }
# check NAME CONDITION-COMMAND... -> PASS/FAIL with the command's output as the reason.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(tail -n 5 <<<"$out" | tr '\n' ' ')"; fi
}

summary() {
    [ "$SKIPPED" -gt 0 ] && echo "($SKIPPED skipped)"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

# Shared helpers for the e2e tests (sourced, not run). Each test counts its checks and
# ends with the plain "N passed, N failed" line; any failed check makes it exit 1.
set -euo pipefail

: "${IOTSEC_BUILD_DIR:?run through ctest, or set IOTSEC_BUILD_DIR}"
: "${IOTSEC_SOURCE_DIR:?run through ctest, or set IOTSEC_SOURCE_DIR}"
IOTSEC="$IOTSEC_BUILD_DIR/iotsec"
PASSED=0
FAILED=0
WORK=$(mktemp -d)
cleanup_hooks=()
on_exit() {
    for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
    [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap on_exit EXIT

pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }

# check NAME EXPECTED_EXIT CMD...: runs CMD, captures stdout/stderr in $OUT / $ERR.
check_exit() {
    local name=$1 want=$2
    shift 2
    set +e
    "$@" >"$WORK/.out" 2>"$WORK/.err"
    local got=$?
    set -e
    OUT=$(cat "$WORK/.out")
    ERR=$(cat "$WORK/.err")
    if [ "$got" -eq "$want" ]; then pass; else fail "$name: exit $got, wanted $want; stderr: $ERR"; fi
}

expect_eq() { # NAME GOT WANT
    if [ "$2" == "$3" ]; then pass; else fail "$1: got '$2', wanted '$3'"; fi
}

expect_contains() { # NAME HAYSTACK NEEDLE
    case "$2" in *"$3"*) pass ;; *) fail "$1: '$2' does not contain '$3'" ;; esac
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# A private passphrase file with the given content.
make_secret_file() { # PATH CONTENT
    (umask 077 && printf '%s\n' "$2" >"$1")
}

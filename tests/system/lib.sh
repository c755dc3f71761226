# SPDX-License-Identifier: MIT
#
# What the system tests share (sourced by test-system.sh and test-deb.sh): TAP lines, a command's exit
# status as a TAP line with its output as details, and the ways into the container (tests/system/sdbox).
# The sourcing script sets SDBOX (the sdbox script) and SCRATCH (a directory for the last command's
# output) first.

n=0
failed=0
ok() {
        n=$((n + 1))
        if [ "$1" = 0 ]; then
                echo "ok $n - $2"
        else
                echo "not ok $n - $2"
                echo "not ok $n - $2" >&2 # meson prints a failed test's stderr: all a CI log shows
                failed=$((failed + 1))
        fi
}
check() { # check DESCRIPTION CMD... : one TAP line for the exit status of CMD
        local d=$1
        shift
        "$@" >"$SCRATCH/last.out" 2>&1
        local r=$?
        ok $r "$d"
        [ $r = 0 ] || sed 's/^/# /' "$SCRATCH/last.out" | tail -40 | tee -a /dev/stderr
        return $r
}
diag() { echo "# $*"; }
bail() {
        echo "Bail out! $*" | tee -a /dev/stderr
        exit 1
}
box() { timeout 60 "$SDBOX" run "$@"; }
net() { timeout 30 "$SDBOX" net "$@"; }

# SPDX-License-Identifier: MIT
#
# What the browser tests share (sourced by test-browser.sh and test-html-report.sh): TAP numbering,
# prerequisites, process groups killed at exit, a free port, the DevTools client. The sourcing script
# sets W (its work directory, emptied here) and CACHE (where playwright-core is installed) first.

n=0
failed=0
daemon_pid=""

# tap: numbers the unnumbered "ok - " / "not ok - " lines on stdin, passes comments through. A
# failure and the comments that follow it (its details) also go to stderr: meson prints a failed
# test's stderr (--print-errorlogs), which is all a CI log shows of it.
tap() {
        local line detail=0
        while IFS= read -r line; do
                case "$line" in
                "ok - "* | "ok -"*) n=$((n + 1)) detail=0 && echo "ok $n ${line#ok }" ;;
                "not ok - "*"# TODO"*) n=$((n + 1)) detail=0 && echo "not ok $n ${line#not ok }" ;;
                "not ok - "*)
                        n=$((n + 1)) failed=$((failed + 1)) detail=1
                        echo "not ok $n ${line#not ok }"
                        echo "not ok $n ${line#not ok }" >&2
                        ;;
                *)
                        echo "# ${line#\# }"
                        [ $detail = 0 ] || echo "#   ${line#\# }" >&2
                        ;;
                esac
        done
}
ok() { if [ "$1" = 0 ]; then tap <<<"ok - $2"; else tap <<<"not ok - $2"; fi; }
diag() { echo "# $*"; }

# require PROGRAM...: the whole test is skipped, with the reason, when one is missing
require() {
        local p
        for p; do
                if ! command -v "$p" >/dev/null; then
                        echo "1..0 # SKIP $p is missing (scripts/setup-debian.sh test installs it)"
                        exit 0
                fi
        done
}
# require_built BUILDDIR FILE...: the binaries under test; without them the test fails
require_built() {
        local build=$1 b
        shift
        for b; do
                if [ ! -x "$build/$b" ]; then
                        echo "Bail out! $build/$b is not built" | tee -a /dev/stderr
                        exit 1
                fi
        done
}

# The daemon and the browsers run in process groups of their own (setsid): killed at exit with
# whatever they left.
cleanup() {
        [ -n "$daemon_pid" ] && kill -KILL -- -"$daemon_pid" 2>/dev/null
        local g
        for g in $(cat "$W"/pgids 2>/dev/null); do kill -KILL -- -"$g" 2>/dev/null; done
        return 0
}
# run_group CMD...: run CMD in its own process group, remembered for cleanup
run_group() {
        setsid "$@" &
        local p=$! r
        echo "$p" >>"$W/pgids"
        wait "$p"
        r=$?
        kill -KILL -- -"$p" 2>/dev/null # whatever the run left behind (e.g. Firefox's children)
        return $r
}

# browser_test_start: the traps, an empty $W with $W/state, PORT (free on 127.0.0.1) and URL
browser_test_start() {
        trap cleanup EXIT
        trap 'exit 130' INT TERM
        rm -rf "$W"
        mkdir -p "$W/state"
        PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        URL=https://127.0.0.1:$PORT/
}

# playwright_setup: playwright-core, the DevTools client only, into a cache outside the tree (no browser
# download); NODE_PATH points at it
playwright_setup() {
        if [ ! -d "$CACHE/node_modules/playwright-core" ]; then
                mkdir -p "$CACHE"
                timeout 180 npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error playwright-core \
                        >"$W/npm.log" 2>&1
                ok $? "npm install playwright-core into $CACHE"
        fi
        export NODE_PATH=$CACHE/node_modules
}

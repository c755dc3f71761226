#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Every attempt in the journal at 1000 attempts/s for a minute (issue 15): a real systemd and journald
# (tests/system/sdbox), tlswatchd installed from a build, driven by bench/loadgen with real TLS
# handshakes, a share of them failing (TLS 1.2 clients against --tls-min 1.3: tls_error, alert 70). Then
# the rows in SQLite are counted against the journal entries of that run (MESSAGE_ID of an attempt,
# _SYSTEMD_INVOCATION_ID of the run): they must be equal.
#
#   bench/journal-rate.sh BUILDDIR [-r RATE] [-s SECONDS] [-f FAIL_PERCENT] [-c CASES]
#
# RATE attempts/s (default 1000) for SECONDS (default 60), FAIL_PERCENT of them failing (default 20).
# CASES (default "namespace default default-small unit"), each in a fresh tlswatchd:
#   namespace      the shipped setting: units/journal-all.conf (LogNamespace=tlswatch) and
#                  /etc/systemd/journald@tlswatch.conf
#   default        --journal all in the default namespace, journald as shipped by Debian
#   default-small  the same with a journal that may use 64 MB (SystemMaxUse=64M), which the cases before
#                  have filled: journald scales the per-unit burst (10000 per 30 s) up by the journal's
#                  free space (up to 4x with GBs free), so a journal at its size limit, the steady state
#                  of any system after a while, allows 10000 per 30 s (333/s); run it after the others
#   unit           the same full 64 MB journal, with the per-unit setting LogRateLimitIntervalSec=0 in
#                  the service instead of a namespace (the alternative: no loss, but the entries then
#                  rotate the system's logs out of its 64 MB)
# Each case prints: handshakes offered and achieved, rows, journal entries, lost, and journald's
# "Suppressed" lines. Needs root, systemd-container, and a build with bench/loadgen (libssl-dev).
set -uo pipefail

SRC=$(readlink -f "$(dirname "$0")/..")
BUILD=$(readlink -f "${1:?usage: journal-rate.sh BUILDDIR [-r RATE] [-s SECONDS] [-f FAIL_PERCENT] [-c CASES]}")
shift
RATE=1000 SECS=60 FAIL=20 CASES="namespace default default-small unit"
while [ $# -gt 0 ]; do
        case $1 in
        -r) RATE=$2; shift 2 ;;
        -s) SECS=$2; shift 2 ;;
        -f) FAIL=$2; shift 2 ;;
        -c) CASES=$2; shift 2 ;;
        *) echo "journal-rate.sh: unknown argument $1" >&2; exit 2 ;;
        esac
done
LOADGEN=$BUILD/bench/loadgen
[ -x "$LOADGEN" ] || { echo "no $LOADGEN (needs libssl-dev and -Dbench=true)" >&2; exit 1; }
[ "$(id -u)" = 0 ] && command -v systemd-nspawn >/dev/null || { echo "needs root and systemd-nspawn" >&2; exit 1; }

SDBOX=$SRC/tests/system/sdbox
export SDBOX_NAME=journal-rate-$$
export SDBOX_STATE=/tmp/tlswatch-journal-rate-$$
export SDBOX_MAX_LIFETIME=$((SECS * 5 + 600))
box() { timeout 120 "$SDBOX" run "$@"; }
cleanup() {
        timeout 90 "$SDBOX" stop >/dev/null 2>&1 || true
        rm -rf "$SDBOX_STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout 90 "$SDBOX" start || exit 1
timeout 300 "$SDBOX" install "$BUILD" || exit 1
SBIN=$(box sh -c 'dirname "$(command -v tlswatchd)"')
DROPIN=$(box sh -c 'ls /usr/share/tlswatch/journal-all.conf /usr/local/share/tlswatch/journal-all.conf 2>/dev/null | head -1')
[ -n "$DROPIN" ] || { echo "the build does not install journal-all.conf" >&2; exit 1; }
PORT=8443
ID_OK=b865240ac5e245e1a456c8849da3ab5b
ID_FAILED=14502e3cce2d4b15a6d9fc9ca932feb5

fail_rate=$((RATE * FAIL / 100))
ok_rate=$((RATE - fail_rate))
echo "systemd $(box systemctl --version | awk 'NR == 1 { print $2 }'), $RATE attempts/s for $SECS s, $FAIL% failing"

run_case() {
        local name=$1 ns=""
        box systemctl stop tlswatchd.socket tlswatchd.service >/dev/null 2>&1
        box rm -rf /var/lib/private/tlswatch /var/lib/tlswatch /etc/systemd/system/tlswatchd.service.d \
                /etc/systemd/journald.conf.d
        box mkdir -p /etc/systemd/system/tlswatchd.service.d /etc/systemd/journald.conf.d
        case $name in
        namespace)
                box ln -s "$DROPIN" /etc/systemd/system/tlswatchd.service.d/
                ns=--namespace=tlswatch
                ;;
        default) ;;
        default-small) box sh -c 'printf "[Journal]\nSystemMaxUse=64M\n" >/etc/systemd/journald.conf.d/small.conf' ;;
        unit)
                box sh -c 'printf "[Journal]\nSystemMaxUse=64M\n" >/etc/systemd/journald.conf.d/small.conf'
                box sh -c 'printf "[Service]\nLogRateLimitIntervalSec=0\n" \
                        >/etc/systemd/system/tlswatchd.service.d/ratelimit.conf'
                ;;
        *) echo "unknown case $name" >&2; return 1 ;;
        esac
        box systemctl restart systemd-journald
        # the failing share: TLS 1.2 clients against --tls-min 1.3 (the namespace comes from the drop-in)
        box sh -c "printf '[Service]\nExecStart=\nExecStart=$SBIN/tlswatchd --journal all --tls-min 1.3\n' \
                >/etc/systemd/system/tlswatchd.service.d/zz-bench.conf"
        box systemctl daemon-reload
        box systemctl start tlswatchd.socket
        timeout 10 "$SDBOX" net curl -sk -o /dev/null "https://127.0.0.1:$PORT/"
        local inv
        inv=$(box systemctl show -P InvocationID tlswatchd.service)
        SECONDS=0
        timeout $((SECS + 60)) "$SDBOX" net "$LOADGEN" --connect "127.0.0.1:$PORT" --lite --clients 8 \
                --rate "$ok_rate" --seconds "$SECS" >"$SDBOX_STATE/ok.out" 2>&1 &
        local p1=$!
        timeout $((SECS + 60)) "$SDBOX" net "$LOADGEN" --connect "127.0.0.1:$PORT" --tls 1.2 --clients 4 \
                --rate "$fail_rate" --seconds "$SECS" >"$SDBOX_STATE/fail.out" 2>&1 &
        local p2=$!
        wait $p1 $p2
        box systemctl stop tlswatchd.service >/dev/null 2>&1
        local rows entries ok_hs fail_hs
        rows=$(box sh -c 'sqlite3 /var/lib/private/tlswatch/tlswatch.db "SELECT count(*) FROM attempts" 2>/dev/null ||
                sqlite3 /var/lib/tlswatch/tlswatch.db "SELECT count(*) FROM attempts"')
        box journalctl $ns --sync
        entries=$(box journalctl $ns -o cat --output-fields=TLSWATCH_ID \
                "_SYSTEMD_INVOCATION_ID=$inv" "MESSAGE_ID=$ID_OK" + "_SYSTEMD_INVOCATION_ID=$inv" "MESSAGE_ID=$ID_FAILED" |
                grep -c .)
        ok_hs=$(sed -n 's/.*handshakes=\([0-9]*\) errors=\([0-9]*\).*/\1/p' "$SDBOX_STATE/ok.out")
        fail_hs=$(sed -n 's/.*handshakes=\([0-9]*\) errors=\([0-9]*\).*/\2/p' "$SDBOX_STATE/fail.out")
        printf '%-14s offered %d/s; made %s ok + %s failing in %d s (%s/s); rows %s, journal entries %s, lost %s (%s%%)\n' \
                "$name" "$RATE" "${ok_hs:-?}" "${fail_hs:-?}" "$SECS" \
                "$(awk -v r="$rows" -v s="$SECS" 'BEGIN { printf "%.0f", r / s }')" "$rows" "$entries" \
                "$((rows - entries))" "$(awk -v r="$rows" -v e="$entries" 'BEGIN { printf "%.1f", r ? 100 * (r - e) / r : 0 }')"
        box journalctl --no-pager $ns _TRANSPORT=driver --since "-$((SECONDS + 5))s" |
                grep -i suppressed | sed 's/^/    journald: /' | tail -4
        box journalctl --disk-usage | sed 's/^/    system journal: /'
        case $name in namespace | unit) [ "$rows" = "$entries" ] ;; esac
}

status=0
for c in $CASES; do
        run_case "$c" || status=1
done
exit $status

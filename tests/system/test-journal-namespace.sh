#!/bin/bash
# SPDX-License-Identifier: MIT
#
# System test (TAP): with the shipped journal namespace (units/journal-all.conf and
# journald@tlswatch.conf), every attempt is a journal entry even when the system's journald would
# drop them, and tlswatch-journal-upload.service ships them to a collector.
#
# A real systemd and journald (tests/system/sdbox). The system's journald gets a strict rate limit
# (RateLimitBurst=500 per 30 s: journald scales it by the free space, to at most 2000), and a few
# seconds of load go above it: 3000 attempts (connections closed without a byte, the cheapest
# attempt, plus real TLS handshakes with curl). First in the default namespace with --journal all:
# entries must be lost (which proves the load is above the limit), then with the shipped drop-in:
# rows in SQLite and entries in the namespace must be equal, and the system's journal holds none of
# them. Then systemd-journal-remote on loopback and tlswatch-journal-upload.service: the collector
# must get every entry.
#
#   test-journal-namespace.sh SOURCEDIR BUILDDIR
set -uo pipefail

SRC=$(readlink -f "${1:?usage: test-journal-namespace.sh SOURCEDIR BUILDDIR}")
BUILD=$(readlink -f "${2:?usage: test-journal-namespace.sh SOURCEDIR BUILDDIR}")
SDBOX=$SRC/tests/system/sdbox
export SDBOX_NAME=tlswatch-jns-$$
export SDBOX_STATE=$BUILD/tests/journal-namespace-state
export SDBOX_MAX_LIFETIME=${SDBOX_MAX_LIFETIME:-300}
PORT=8443
N=3000
ID_OK=b865240ac5e245e1a456c8849da3ab5b
ID_FAILED=14502e3cce2d4b15a6d9fc9ca932feb5

SCRATCH=$SDBOX_STATE
. "$SRC/tests/system/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v systemd-nspawn >/dev/null; then
        echo "1..0 # SKIP needs root and systemd-nspawn (Debian package systemd-container)"
        exit 0
fi
if [ ! -x /lib/systemd/systemd-journal-remote ]; then
        echo "1..0 # SKIP needs systemd-journal-remote (Debian package systemd-journal-remote)"
        exit 0
fi

cleanup() {
        timeout 90 "$SDBOX" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'trap - EXIT; setsid timeout 90 "$SDBOX" stop >/dev/null 2>&1 </dev/null & exit 130' INT TERM

mkdir -p "$SDBOX_STATE"
rm -rf "$SDBOX_STATE/journal"
installed=$(meson introspect "$BUILD" --installed 2>/dev/null) || installed=""
for f in '/journal-all.conf"' '/journald@tlswatch.conf"' '/tlswatch-journal-upload.service"' 'bin/tlswatchd"'; do
        grep -qF "$f" <<<"$installed" || bail "$BUILD does not install ${f//\"/} (meson introspect --installed)"
done

SECONDS=0
timeout 90 "$SDBOX" start || bail "the container did not boot"
timeout 300 "$SDBOX" install "$BUILD" || bail "meson install into the container failed"
diag "container booted and installed in ${SECONDS}s"
SBIN=$(box sh -c 'dirname "$(command -v tlswatchd)"')
DROPIN=$(box sh -c 'ls /usr/share/tlswatch/journal-all.conf /usr/local/share/tlswatch/journal-all.conf 2>/dev/null | head -1')
[ -n "$DROPIN" ] || bail "journal-all.conf is not installed"

verify_out=$(box systemd-analyze verify tlswatch-journal-upload.service 2>&1)
[ -z "$verify_out" ]
ok $? "systemd-analyze verify tlswatch-journal-upload.service is clean"
[ -z "$verify_out" ] || sed 's/^/# /' <<<"$verify_out"

# the system's journald: a strict rate limit
box mkdir -p /etc/systemd/journald.conf.d
box sh -c 'printf "[Journal]\nRateLimitIntervalSec=30s\nRateLimitBurst=500\n" >/etc/systemd/journald.conf.d/strict.conf'
check "the system's journald restarts with RateLimitBurst=500" box systemctl restart systemd-journald

# load: N connections that close without a byte, from 4 threads, and 3 real handshakes
load() {
        local r
        net curl -sfk -o /dev/null "https://127.0.0.1:$PORT/" || return 1 # starts the service
        net python3 - "$PORT" "$N" <<'EOF'
import socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
def run(k):
    for _ in range(k):
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.close()
ts = [threading.Thread(target=run, args=(n // 4,)) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
EOF
        r=$?
        net curl -sfk -o /dev/null "https://127.0.0.1:$PORT/" && net curl -sfk -o /dev/null "https://[::1]:$PORT/" || r=1
        return $r
}

# run_case NAME: a fresh tlswatchd with what the drop-in directory holds now, the load, then ROWS and
# ENTRIES (journal entries of attempts of that run, in every namespace), INV (its invocation)
run_case() {
        box rm -rf /var/lib/private/tlswatch
        box systemctl daemon-reload
        box systemctl start tlswatchd.socket
        SECONDS=0
        load
        ok $? "$1: $((N + 3)) connections made in ${SECONDS}s"
        INV=$(box systemctl show -P InvocationID tlswatchd.service)
        box systemctl stop tlswatchd.service tlswatchd.socket
        ROWS=$(box sqlite3 /var/lib/private/tlswatch/tlswatch.db 'SELECT count(*) FROM attempts')
        box journalctl --namespace=tlswatch --sync >/dev/null 2>&1
        box journalctl --sync
        ENTRIES=$(entries "--namespace=*")
}
entries() { # entries NAMESPACE-OPTION: attempt entries of run $INV
        box journalctl "$1" -o cat --output-fields=TLSWATCH_ID "_SYSTEMD_INVOCATION_ID=$INV" "MESSAGE_ID=$ID_OK" + \
                "_SYSTEMD_INVOCATION_ID=$INV" "MESSAGE_ID=$ID_FAILED" | grep -c .
}

# --- without the namespace: the system's limit drops entries ---
box mkdir -p /etc/systemd/system/tlswatchd.service.d
box sh -c "printf '[Service]\nExecStart=\nExecStart=$SBIN/tlswatchd --journal all\n' \
        >/etc/systemd/system/tlswatchd.service.d/journal-all-default-namespace.conf"
run_case "default namespace"
diag "default namespace: $ROWS rows, $ENTRIES journal entries"
[ "$ROWS" -ge "$N" ] && [ "$ENTRIES" -lt "$ROWS" ]
ok $? "default namespace: the load is above the system's rate limit ($((ROWS - ENTRIES)) of $ROWS entries dropped)"
box journalctl --no-pager _TRANSPORT=driver --since=-5min | grep -i suppressed | head -2 | sed 's/^/# /'

# --- with the shipped drop-in: every attempt, in the namespace ---
box rm -f /etc/systemd/system/tlswatchd.service.d/journal-all-default-namespace.conf
box ln -s "$DROPIN" /etc/systemd/system/tlswatchd.service.d/
run_case "namespace tlswatch"
diag "namespace tlswatch: $ROWS rows, $ENTRIES journal entries"
[ "$ROWS" -ge "$N" ] && [ "$ROWS" = "$ENTRIES" ]
ok $? "namespace tlswatch: one journal entry per row ($ENTRIES entries, $ROWS rows)"
in_ns=$(entries --namespace=tlswatch)
in_default=$(box journalctl -o cat --output-fields=TLSWATCH_ID "_SYSTEMD_INVOCATION_ID=$INV" | grep -c .)
[ "$in_ns" = "$ROWS" ] && [ "$in_default" = 0 ]
ok $? "the entries are in the namespace ($in_ns), none in the system's journal ($in_default)"
mid=$(box cat /etc/machine-id)
box test -d "/var/log/journal/$mid.tlswatch"
ok $? "the namespace's files are in /var/log/journal/MACHINE-ID.tlswatch"

# --- the upload to a collector ---
box systemd-run --unit=collector --property=StateDirectory=collector /lib/systemd/systemd-journal-remote \
        --listen-http=19532 --output=/var/lib/collector/ --split-mode=host >/dev/null 2>&1
box sh -c 'printf "[Upload]\nURL=http://127.0.0.1:19532\n" >/etc/systemd/journal-upload.conf'
check "systemctl start tlswatch-journal-upload.service" box systemctl start tlswatch-journal-upload.service
got=0
for _ in $(seq 60); do
        got=$(box journalctl -D /var/lib/collector -o cat --output-fields=TLSWATCH_ID "_SYSTEMD_INVOCATION_ID=$INV" \
                2>/dev/null | grep -c .)
        [ "$got" -ge "$ROWS" ] && break
        sleep 0.5
done
[ "$got" = "$ROWS" ]
ok $? "the collector got every attempt of the run ($got of $ROWS) from tlswatch-journal-upload.service"
box systemctl status --no-pager tlswatch-journal-upload.service 2>&1 | tail -3 | sed 's/^/# /'

echo "1..$n"
[ "$failed" = 0 ]

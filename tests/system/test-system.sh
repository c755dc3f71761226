#!/bin/bash
# SPDX-License-Identifier: MIT
#
# System test (TAP): tlswatch installed with `meson install` into a throwaway container that boots a
# real systemd and journald (tests/system/sdbox), then used the way an administrator would:
# systemctl start the socket, connect with real clients, systemctl status, journalctl, reload,
# stop, sqlite3 on the database, tlsreport.
#
#   test-system.sh SOURCEDIR BUILDDIR
#
# BUILDDIR must install tlswatchd, tlsreport and the units: without them the test fails (it tests the
# real daemon or nothing).
set -uo pipefail

SRC=$(readlink -f "${1:?usage: test-system.sh SOURCEDIR BUILDDIR}")
BUILD=$(readlink -f "${2:?usage: test-system.sh SOURCEDIR BUILDDIR}")
SDBOX=$SRC/tests/system/sdbox
export SDBOX_NAME=tlswatch-system-$$
export SDBOX_STATE=$BUILD/tests/system-state
export SDBOX_MAX_LIFETIME=${SDBOX_MAX_LIFETIME:-300}
PORT=8443

SCRATCH=$SDBOX_STATE
. "$SRC/tests/system/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v systemd-nspawn >/dev/null; then
        echo "1..0 # SKIP needs root and systemd-nspawn (Debian package systemd-container)"
        exit 0
fi

cleanup() {
        timeout 90 "$SDBOX" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
# meson test's timeout sends SIGTERM to our process group and SIGKILL 0.5 s later: stop the
# container from a session of its own so that the SIGKILL cannot cut the poweroff short.
trap 'trap - EXIT; setsid timeout 90 "$SDBOX" stop >/dev/null 2>&1 </dev/null & exit 130' INT TERM

mkdir -p "$SDBOX_STATE"
rm -rf "$SDBOX_STATE/journal"

# The build must install the real daemon, the report tool and the units.
installed=$(meson introspect "$BUILD" --installed 2>/dev/null) || installed=""
for f in '/tlswatchd.service"' '/tlswatchd.socket"' 'bin/tlswatchd"' 'bin/tlsreport"'; do
        grep -qF "$f" <<<"$installed" || bail "$BUILD does not install ${f//\"/} (meson introspect --installed)"
done

SECONDS=0
timeout 90 "$SDBOX" start || bail "the container did not boot"
diag "container booted in ${SECONDS}s"
timeout 300 "$SDBOX" install "$BUILD" || bail "meson install into the container failed"

# --- static checks of the installed units, where their ExecStart exists ---
sock_unit=$(box systemctl show -P FragmentPath tlswatchd.socket)
svc_unit=$(box systemctl show -P FragmentPath tlswatchd.service)
diag "units: $sock_unit $svc_unit"
verify_out=$(box systemd-analyze verify "$sock_unit" "$svc_unit" 2>&1)
r=$?
[ -z "$verify_out" ] || r=1
ok $r "systemd-analyze verify is clean (no output, exit 0)"
[ -z "$verify_out" ] || sed 's/^/# /' <<<"$verify_out"

security=$(box systemd-analyze security --no-pager tlswatchd.service 2>&1 | grep 'Overall exposure level')
exposure=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$security")
diag "$security"
ok "$(awk -v e="${exposure:-99}" 'BEGIN { print (e <= 2.0) ? 0 : 1 }')" \
        "systemd-analyze security rates tlswatchd.service at most 2.0 (got ${exposure:-nothing})"

# --- socket activation ---
check "systemctl start tlswatchd.socket" box systemctl start tlswatchd.socket
check "the socket is active" box systemctl is-active tlswatchd.socket
! box systemctl is-active --quiet tlswatchd.service
ok $? "the service is not started before the first connection"

# --- real clients, counted: every TCP connection must become exactly one row ---
conns=0
fails=0
check "curl -k over IPv4 gets the page (activates the service)" \
        net curl -sfk --max-time 10 -o "$SDBOX_STATE/page.html" "https://127.0.0.1:$PORT/"
conns=$((conns + 1))
grep -q '127\.0\.0\.1' "$SDBOX_STATE/page.html"
ok $? "the page shows the visitor's address"
check "curl -k over IPv6 gets the page" net curl -sk --max-time 10 -o /dev/null "https://[::1]:$PORT/"
conns=$((conns + 1))
check "the service was activated by the connection" box systemctl is-active tlswatchd.service
! net curl -s --max-time 10 -o /dev/null "https://127.0.0.1:$PORT/" 2>/dev/null
ok $? "curl without -k rejects the self-signed certificate"
conns=$((conns + 1)) fails=$((fails + 1))
! net openssl s_client -connect "127.0.0.1:$PORT" -verify_return_error </dev/null >/dev/null 2>&1
ok $? "openssl s_client -verify_return_error rejects it"
conns=$((conns + 1)) fails=$((fails + 1))
net curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null
conns=$((conns + 1)) fails=$((fails + 1))
check "a port check (connect, close) is accepted" \
        net python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 5).close()"
conns=$((conns + 1)) fails=$((fails + 1))

# STATUS= is sent every 2 s: wait until it counts every connection so far
for ((i = 0; i < 100; i++)); do
        status_text=$(box systemctl show -P StatusText tlswatchd.service)
        [ "$(sed -n 's/.*; \([0-9]*\) attempts:.*/\1/p' <<<"$status_text")" = "$conns" ] && break
        sleep 0.1
done
diag "StatusText: $status_text"
grep -q "; $conns attempts: " <<<"$status_text"
ok $? "sd_notify STATUS= carries counters ($conns attempts)"
box systemctl status --no-pager tlswatchd.service >"$SDBOX_STATE/status.txt" 2>&1
status_line=$(grep -m1 'Status: "' "$SDBOX_STATE/status.txt")
diag "systemctl status: $status_line"
grep -q '[0-9]' <<<"$status_line"
ok $? "systemctl status tlswatchd shows them"

# --- DynamicUser and StateDirectory ---
main_pid=$(box systemctl show -P MainPID tlswatchd.service)
uid=$(box awk '/^Uid:/ { print $2 }' "/proc/$main_pid/status")
diag "main PID $main_pid runs as uid $uid"
[ -n "$uid" ] && [ "$uid" != 0 ]
ok $? "the daemon does not run as root"
box test -d /var/lib/tlswatch
ok $? "StateDirectory /var/lib/tlswatch exists"
files=$(box find -L /var/lib/tlswatch -maxdepth 1 -type f -printf '%f %m %U\n')
diag "state directory: $(tr '\n' ';' <<<"$files")"
grep -q '^tlswatch.db ' <<<"$files"
ok $? "the database is /var/lib/tlswatch/tlswatch.db"
cert_file=$(box sh -c 'grep -l "BEGIN CERTIFICATE" /var/lib/tlswatch/* 2>/dev/null | head -1')
key_file=$(box sh -c 'grep -l "PRIVATE KEY" /var/lib/tlswatch/* 2>/dev/null | head -1')
[ -n "$cert_file" ] && [ -n "$key_file" ]
ok $? "the generated certificate and key are in /var/lib/tlswatch ($cert_file, $key_file)"
key_mode=$(box stat -L -c '%a %u' "$key_file" 2>/dev/null)
[ "$key_mode" = "600 $uid" ]
ok $? "the key is 0600 and owned by the service's user (got '$key_mode')"

# --- reload serves a new certificate ---
# with a request: s_client that completes the handshake and quits without one looks like a client that
# rejects the certificate after the handshake (tlswatchd(8), "Rejected after the handshake")
served_fp() {
        printf 'HEAD / HTTP/1.0\r\n\r\n' | net openssl s_client -connect "127.0.0.1:$PORT" -ign_eof 2>/dev/null |
                openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
fp_before=$(served_fp)
conns=$((conns + 1))
fp_file=$(box openssl x509 -in "$cert_file" -noout -fingerprint -sha256)
[ -n "$fp_before" ] && [ "$fp_before" = "$fp_file" ]
ok $? "the served certificate is the one in the state directory"
newdir=$SDBOX_STATE/newcert
rm -rf "$newdir"
mkdir -p "$newdir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$newdir/key.pem" \
        -out "$newdir/cert.pem" -days 2 -subj /CN=reloaded -addext subjectAltName=IP:127.0.0.1 2>/dev/null
cp "$newdir/cert.pem" "$newdir/key.pem" "$SDBOX_STATE/payload/"
# overwrite in place: owner and mode stay the service's
box sh -c "cat /src/key.pem >'$key_file' && cat /src/cert.pem >'$cert_file'"
check "systemctl reload tlswatchd" box systemctl reload tlswatchd.service
fp_after=$(served_fp)
conns=$((conns + 1))
[ "$fp_after" = "$(openssl x509 -in "$newdir/cert.pem" -noout -fingerprint -sha256)" ]
ok $? "after reload the new certificate is served"
[ "$(box systemctl show -P MainPID tlswatchd.service)" = "$main_pid" ]
ok $? "reload did not restart the process"

# --- stop drains: connections in the middle of a handshake are still recorded ---
# Three clients send half a ClientHello and hang up 2 s later; stop comes while they wait.
slow_client='
import socket, time
s = socket.create_connection(("127.0.0.1", '$PORT'), 5)
s.sendall(bytes([0x16, 3, 1, 0x02, 0x00, 1, 0, 1, 0xfc, 3, 3]))
print("sent", flush=True)
time.sleep(2)
s.close()'
# connections to the port that the daemon has accepted: established, and with an inode (the kernel gives
# the server side one only once accept() took it)
accepted() { net awk -v port="$(printf '%04X' $PORT)" 'NR > 1 && $2 ~ (":" port "$") && $4 == "01" && $10 != "0"' /proc/net/tcp | wc -l; }
pids=()
rm -f "$SDBOX_STATE/slow.out"
for i in 1 2 3; do
        net python3 -c "$slow_client" >>"$SDBOX_STATE/slow.out" &
        pids+=($!)
        conns=$((conns + 1)) fails=$((fails + 1))
done
# wait until the daemon has accepted the three
for ((i = 0; i < 100; i++)); do
        [ "$(grep -c sent "$SDBOX_STATE/slow.out" 2>/dev/null)" = 3 ] && [ "$(accepted)" -ge 3 ] && break
        sleep 0.1
done
diag "slow clients accepted by the daemon: $(accepted) (after $((i / 10)).$((i % 10)) s)"
SECONDS=0
check "systemctl stop tlswatchd.socket tlswatchd.service" \
        timeout 60 "$SDBOX" run systemctl stop tlswatchd.socket tlswatchd.service
diag "stop took ${SECONDS}s"
wait "${pids[@]}" 2>/dev/null
! box systemctl is-active --quiet tlswatchd.service
ok $? "the service is stopped"

db=/var/lib/tlswatch/tlswatch.db
rows=$(box sqlite3 "$db" 'SELECT count(*) FROM attempts')
diag "connections made: $conns, rows: $rows"
[ "$rows" = "$conns" ]
ok $? "the database holds every attempt, one row per connection ($rows of $conns)"
diag "outcomes: $(box sqlite3 "$db" "SELECT outcome || '/' || state_reached || ':' || count(*) FROM attempts GROUP BY outcome, state_reached ORDER BY 1" | tr '\n' ' ')"
db_fails=$(box sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome != 'ok'")
[ "$db_fails" = "$fails" ]
ok $? "failed attempts in the database: $db_fails, expected $fails"
for o in not_tls no_data; do
        [ "$(box sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = '$o'")" = 1 ]
        ok $? "exactly one $o attempt"
done
[ "$(box sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = 'peer_alert' AND alert_received IS NOT NULL")" -ge 1 ]
ok $? "the rejected certificate is recorded as peer_alert with the alert number"
[ "$(box sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = 'ok' AND version IS NOT NULL AND cipher IS NOT NULL")" -ge 4 ]
ok $? "successful attempts carry version and cipher"
[ "$(box sqlite3 "$db" "SELECT count(*) FROM attempts WHERE peer_addr = '::1'")" = 1 ]
ok $? "the IPv6 attempt is recorded with peer_addr ::1"

# --- journal: one structured entry per failed attempt, with the catalog ---
box journalctl --sync >/dev/null 2>&1
box journalctl -u tlswatchd -o json --no-pager >"$SDBOX_STATE/journal.json" 2>&1
box sqlite3 -json "$db" "SELECT * FROM attempts WHERE outcome != 'ok'" >"$SDBOX_STATE/db-failures.json"
python3 - "$SDBOX_STATE/journal.json" "$SDBOX_STATE/db-failures.json" >"$SDBOX_STATE/last.out" 2>&1 <<'EOF'
import json, sys
entries = {}
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("TLSWATCH_OUTCOME", "ok") != "ok":
        key = (e.get("TLSWATCH_PEER_PORT"), e.get("TLSWATCH_STARTED_US"))
        assert key not in entries, "two journal entries for attempt %s" % (key,)
        entries[key] = e
rows = json.load(open(sys.argv[2]))
assert len(rows) == len(entries), "%d failed rows, %d journal entries" % (len(rows), len(entries))
for r in rows:
    e = entries.get((str(r["peer_port"]), str(r["started_us"])))
    assert e, "no journal entry for row %s" % r
    assert "MESSAGE_ID" in e, "no MESSAGE_ID: %s" % e
    for col, v in r.items():
        if v is None:
            continue
        f = "TLSWATCH_" + col.upper()
        assert f in e, "row %d: journal entry lacks %s" % (r["id"], f)
        assert e[f] == str(v), "row %d: %s=%r in the journal, %r in the database" % (r["id"], f, e[f], v)
print("%d failed attempts, each with one journal entry carrying every non-NULL column" % len(rows))
EOF
r=$?
ok $r "journalctl -u tlswatchd: exactly one entry per failed attempt, with every column of its row as TLSWATCH_*"
sed 's/^/# /' "$SDBOX_STATE/last.out"
box journalctl -u tlswatchd -x --no-pager TLSWATCH_OUTCOME=not_tls >"$SDBOX_STATE/journal-x.txt" 2>&1
grep -q '^ *░░ ' "$SDBOX_STATE/journal-x.txt"
ok $? "journalctl -x shows the catalog text for a failed attempt"
grep '░░' "$SDBOX_STATE/journal-x.txt" | head -3 | sed 's/^/# /'

# --- tlsreport in the container ---
box tlsreport --since today -o json >"$SDBOX_STATE/tlsreport.json" 2>"$SDBOX_STATE/tlsreport.err"
ok $? "tlsreport --since today -o json runs"
python3 - "$SDBOX_STATE/tlsreport.json" "$fails" <<'EOF'
import json, sys
seqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for s in seqs:
    for k in ("client", "sni", "ja4", "key", "first_us", "last_us", "attempts", "failures", "outcome",
              "pattern", "diagnosis", "attempt_ids"):
        assert k in s, "sequence without %s: %s" % (k, s)
failures = sum(s["failures"] for s in seqs)
assert failures == int(sys.argv[2]), "tlsreport counts %d failures, expected %s" % (failures, sys.argv[2])
ids = [i for s in seqs for i in s["attempt_ids"]]
assert len(ids) == len(set(ids)), "an attempt in two sequences: %s" % ids
assert any(s["pattern"] == "cert_rejected_then_ok" for s in seqs), "no cert_rejected_then_ok sequence"
EOF
ok $? "tlsreport --since today reports the sequences of the failed attempts"

SECONDS=0
timeout 90 "$SDBOX" stop
diag "poweroff took ${SECONDS}s"
trap - EXIT
! timeout 5 "$SDBOX" status
ok $? "the container is gone"
echo "1..$n"
[ $failed = 0 ]

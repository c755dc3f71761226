#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Fleet test (TAP, issue 15): three servers and a collector, each a container booting a real systemd
# (tests/system/sdbox), set up with the commands of the README's section "More than one server", which
# the test reads from README.md. The servers (web1, web2, web3, each its own host name) run the built
# tlswatchd from its units with --journal all in the journal namespace tlswatch, and
# tlswatch-journal-upload.service; the collector (logs) runs systemd-journal-remote over http, split by
# host, into /var/log/journal/remote. The containers are joined by a bridge in the collector's network
# namespace (veth pairs the test creates; nothing on this machine's own network). Real clients (curl,
# openssl s_client, wget, python requests), a different mix per host, connect to each server. Then the
# collector's journal files must hold, host by host, exactly the attempts of that host's SQLite
# database, none lost; a server whose upload is off is caught as incomplete and catches up when it is
# on again; the collector down for a while loses nothing; and tlsreport -D on the collector must give,
# server by server, the sequences of each server's own report (each attempt once), and fleet views
# that say on how many servers each client family fails.
#
#   test-fleet.sh SOURCEDIR BUILDDIR
set -uo pipefail

SRC=$(readlink -f "${1:?usage: test-fleet.sh SOURCEDIR BUILDDIR}")
BUILD=$(readlink -f "${2:?usage: test-fleet.sh SOURCEDIR BUILDDIR}")
SDBOX=$SRC/tests/system/sdbox
WORK=$BUILD/tests/fleet
export SDBOX_MAX_LIFETIME=${SDBOX_MAX_LIFETIME:-300}
SERVERS=(web1 web2 web3)
COLLECTOR=logs
PORT=8443
DB=/var/lib/tlswatch/tlswatch.db
REMOTE=/var/log/journal/remote
NET=10.77.0                        # the collector is $NET.1, server i is $NET.1i
URL=http://$NET.1:19532

SCRATCH=$WORK
. "$SRC/tests/system/lib.sh"

# on HOST CMD... : run CMD in container HOST; onnet HOST CMD... : a host program in its network
# namespace only. Each container has a name and a state directory of its own. Once it runs, its PID 1
# is known and the commands enter it with nsenter as sdbox run/net do, without sdbox's own start-up
# (0.6 s a call on a loaded machine, and the test makes some 150).
sdbox_env() { echo "SDBOX_NAME=tlswatch-fleet-$1-$$" "SDBOX_STATE=$WORK/$1"; }
declare -A leader
on() {
        local h=$1
        shift
        [ -n "${leader[$h]:-}" ] || return 1
        timeout 60 nsenter --target "${leader[$h]}" --mount --uts --ipc --net --pid --cgroup -- \
                env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
                SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 SYSTEMD_LESS= LANG=C.UTF-8 "$@"
}
onnet() {
        local h=$1
        shift
        [ -n "${leader[$h]:-}" ] || return 1
        timeout 30 nsenter --target "${leader[$h]}" --net -- "$@"
}

missing=""
for p in systemd-nspawn:systemd-container /lib/systemd/systemd-journal-remote:systemd-journal-remote \
        curl:curl wget:wget openssl:openssl sqlite3:sqlite3 ip:iproute2; do
        command -v "${p%%:*}" >/dev/null || missing="$missing ${p#*:}"
done
# Debian's python3 with python3-requests: a version manager's shim in PATH costs seconds per start
# on a loaded machine, and the test starts python some 40 times.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export PY
$PY -c 'import requests' 2>/dev/null || missing="$missing python3-requests"
if [ "$(id -u)" != 0 ] || [ -n "$missing" ]; then
        echo "1..0 # SKIP needs root and the Debian packages${missing:- (not root)} (scripts/setup-debian.sh test)"
        exit 0
fi

ALL=("${SERVERS[@]}" "$COLLECTOR")
# stop_script: the shell commands that power the four containers off, side by side
stop_script() {
        local h
        for h in "${ALL[@]}"; do
                printf 'env %s timeout 90 %q stop >/dev/null 2>&1 &\n' "$(sdbox_env "$h")" "$SDBOX"
        done
        echo wait
}
trap 'bash -c "$(stop_script)"' EXIT
# meson test's timeout sends SIGTERM to our process group and SIGKILL 0.5 s later: stop the
# containers from a session of their own so that the SIGKILL cannot cut the poweroff short.
trap 'trap - EXIT; setsid bash -c "$(stop_script)" >/dev/null 2>&1 </dev/null & exit 130' INT TERM

installed=$(meson introspect "$BUILD" --installed 2>/dev/null) || installed=""
for f in '/tlswatchd.service"' '/tlswatchd.socket"' 'bin/tlswatchd"' 'bin/tlsreport"'; do
        grep -qF "$f" <<<"$installed" || bail "$BUILD does not install ${f//\"/} (meson introspect --installed)"
done
rm -rf "$WORK"
mkdir -p "$WORK"
timeout 300 meson install -C "$BUILD" --no-rebuild --quiet --destdir "$WORK/destdir" >"$WORK/install.log" 2>&1 ||
        bail "meson install failed: $(tail -5 "$WORK/install.log")"

# --- four containers, booted side by side ---
SECONDS=0
for h in "${ALL[@]}"; do
        mkdir -p "$WORK/$h"
        env $(sdbox_env "$h") SDBOX_NSPAWN_ARGS="--hostname=$h" timeout 120 "$SDBOX" start \
                >"$WORK/$h/start.log" 2>&1 &
done
booted=0
for h in "${ALL[@]}"; do
        wait -n && booted=$((booted + 1))
done
[ $booted = ${#ALL[@]} ] || { cat "$WORK"/*/start.log >&2; bail "not every container booted ($booted of ${#ALL[@]})"; }
diag "4 containers booted in ${SECONDS}s"
for h in "${ALL[@]}"; do
        leader[$h]=$(env $(sdbox_env "$h") "$SDBOX" pid)
        [ -n "${leader[$h]}" ] || bail "no PID 1 for $h"
done
for h in "${ALL[@]}"; do
        env $(sdbox_env "$h") timeout 120 "$SDBOX" install --tree "$WORK/destdir" >"$WORK/$h/install.log" 2>&1 &
done
installed_in=0
for h in "${ALL[@]}"; do
        wait -n && installed_in=$((installed_in + 1))
done
[ $installed_in = ${#ALL[@]} ] || { cat "$WORK"/*/install.log >&2; bail "sdbox install failed (log above)"; }
diag "installed in each by ${SECONDS}s"

# --- the network: a bridge in the collector's namespace, a veth pair to each server ---
setup_net() {
        local i h
        onnet $COLLECTOR ip link add br0 type bridge || return 1
        onnet $COLLECTOR ip addr add $NET.1/24 dev br0 || return 1
        onnet $COLLECTOR ip link set br0 up || return 1
        i=0
        for h in "${SERVERS[@]}"; do
                i=$((i + 1))
                onnet $COLLECTOR ip link add "v$h" type veth peer name eth0 netns "${leader[$h]}" || return 1
                onnet $COLLECTOR ip link set "v$h" master br0 up || return 1
                onnet "$h" ip addr add "$NET.1$i/24" dev eth0 || return 1
                onnet "$h" ip link set eth0 up || return 1
        done
}
check "a bridge joins the collector ($NET.1) and the servers ($NET.11-13)" setup_net ||
        bail "no network between the containers"

# --- the README's section "More than one server", run as it is written ---
# readme_block NAME: the shell block after the README's "<!-- fleet: NAME -->" line
readme_block() {
        sed -n "/^<!-- fleet: $1 -->\$/,/^\`\`\`\$/p" "$SRC/README.md" | sed '1,2d;$d'
}
for b in server collector; do
        readme_block $b >"$WORK/readme-$b.sh"
        [ -s "$WORK/readme-$b.sh" ] || bail "README.md has no block after '<!-- fleet: $b -->'"
done
# The README's names for what differs here: the collector's address, the drop-in's directory (the
# build's prefix: /usr/local/share/tlswatch with meson's default, /usr/share/tlswatch in the package).
dropin=$(grep -o ': *"[^"]*/tlswatch/journal-all.conf"' <<<"$installed" | head -1 | sed 's/^: *"//; s/"$//')
[ -n "$dropin" ] || bail "$BUILD does not install journal-all.conf (meson introspect --installed)"
check "collector: the README's commands (systemd-journal-remote over http, split by host)" \
        on $COLLECTOR sh -euc "$(cat "$WORK/readme-collector.sh")"
for h in "${SERVERS[@]}"; do
        check "$h: tlswatchd.socket running" on "$h" systemctl enable --now tlswatchd.socket
        check "$h: the README's commands (tlswatchd --journal all, tlswatch-journal-upload to $URL)" \
                on "$h" sh -euc "$(sed -e "s|http://collector.example.net:19532|$URL|" \
                -e "s|/usr/share/tlswatch/journal-all.conf|$dropin|" "$WORK/readme-server.sh")"
done

# --- real clients, a different mix per host ---
# made[HOST]: the connections made so far to HOST, each one attempt that HOST must record
declare -A made
for h in "${SERVERS[@]}"; do made[$h]=0; done
client() { # client HOST EXPECT(ok|fail) DESCRIPTION CMD... (run in HOST's network namespace)
        local h=$1 expect=$2 d=$3
        shift 3
        onnet "$h" "$@" >"$WORK/client.out" 2>&1
        local r=$?
        made[$h]=$((made[$h] + 1))
        if [ "$expect" = ok ]; then
                ok $r "$h: $d"
        else
                [ $r != 0 ]
                ok $? "$h: $d (fails)"
        fi
}
from_collector() { # from_collector HOST EXPECT DESCRIPTION CMD...: a client on the collector
        local h=$1 expect=$2 d=$3
        shift 3
        onnet $COLLECTOR "$@" >"$WORK/client.out" 2>&1
        local r=$?
        made[$h]=$((made[$h] + 1))
        if [ "$expect" = ok ]; then
                ok $r "$h: $d, from the collector"
        else
                [ $r != 0 ]
                ok $? "$h: $d, from the collector (fails)"
        fi
}
L=https://127.0.0.1:$PORT/
s_client_request() { # a handshake and a request: openssl s_client that trusts nothing, told to go on
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "$1" -ign_eof -quiet 2>/dev/null |
                grep -q '^HTTP/1\.[01] 200'
}
requests_get() { # python requests, verifying (the default) or not
        "$PY" -c 'import sys, requests, urllib3
urllib3.disable_warnings()
requests.get(sys.argv[1], verify=sys.argv[2] == "verify", timeout=10).raise_for_status()' "$@"
}
export -f s_client_request requests_get
round1() {
        # web1: curl that does not trust the certificate, then with -k; openssl s_client rejects it
        client web1 fail "curl" curl -s --max-time 10 -o /dev/null "$L"
        client web1 ok "curl -k" curl -sfk --max-time 10 -o /dev/null "$L"
        client web1 fail "openssl s_client -verify_return_error" \
                sh -c 'openssl s_client -connect "$1" -verify_return_error </dev/null' sh 127.0.0.1:$PORT
        client web1 ok "curl -k" curl -sfk --max-time 10 -o /dev/null "$L"
        # web2: python requests that verifies (fails twice, gives up), wget --no-check-certificate
        client web2 fail "python requests" bash -c 'requests_get "$1" verify' sh "$L"
        client web2 fail "python requests" bash -c 'requests_get "$1" verify' sh "$L"
        client web2 ok "wget --no-check-certificate" wget -q -T 10 -t 1 --no-check-certificate -O /dev/null "$L"
        client web2 ok "python requests verify=False" bash -c 'requests_get "$1" no' sh "$L"
        client web2 fail "plain http to the https port" curl -sf --max-time 10 -o /dev/null "http://127.0.0.1:$PORT/"
        # web3: wget that verifies, then openssl s_client with a request
        client web3 fail "wget" wget -q -T 10 -t 1 -O /dev/null "$L"
        client web3 ok "openssl s_client with a request" bash -c 's_client_request "$1"' sh 127.0.0.1:$PORT
        # and one client on the collector that fails on every server: curl without -k
        local i=0 h
        for h in "${SERVERS[@]}"; do
                i=$((i + 1))
                from_collector "$h" fail "curl" curl -s --max-time 10 -o /dev/null "https://$NET.1$i:$PORT/"
        done
}
round1

# --- what each server recorded, what the collector holds ---
# rows HOST: its SQLite rows as JSON; remote HOST: the collector's journal entries for it as JSON
rows() { on "$1" sqlite3 -json "$DB" 'SELECT * FROM attempts ORDER BY id' >"$WORK/$1.rows.json" 2>"$WORK/$1.rows.err"; }
remote() {
        on $COLLECTOR journalctl -D $REMOTE -o json --no-pager "_HOSTNAME=$1" >"$WORK/$1.remote.json" 2>"$WORK/$1.remote.err"
}
# compare HOST: exit 0 if the collector holds exactly one entry for each of HOST's rows with every
# column's value, and no other tlswatch entry for HOST; the differences on stdout
compare() {
        rows "$1" && remote "$1" || return 1
        $PY - "$WORK/$1.rows.json" "$WORK/$1.remote.json" "$1" "${made[$1]}" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else []
host = sys.argv[3]
entries = {}
dups = 0
resent = 0
for line in open(sys.argv[2]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if "TLSWATCH_OUTCOME" not in e:
        continue
    if e.get("_HOSTNAME") != host:
        print("an entry from %s among %s's" % (e.get("_HOSTNAME"), host))
        sys.exit(1)
    key = (e.get("TLSWATCH_STARTED_US"), e.get("TLSWATCH_PEER_ADDR"), e.get("TLSWATCH_PEER_PORT"))
    if key in entries:
        # systemd-journal-upload delivers at least once: after an outage it may send again an entry
        # the collector already wrote. That is the same entry (the same boot, timestamps, fields,
        # only the collector's own cursor differs); two entries of tlswatchd's for one attempt are not.
        a, b = ({k: v for k, v in x.items() if not k.startswith("__") or k.endswith("_TIMESTAMP")}
                for x in (entries[key], e))
        if a != b:
            dups += 1
        else:
            resent += 1
        continue
    entries[key] = e
bad = []
seen = set()
for r in rows:
    key = (str(r["started_us"]), r["peer_addr"], str(r["peer_port"]))
    seen.add(key)
    e = entries.get(key)
    if e is None:
        bad.append("row %d (%s:%s %s) is not on the collector" % (r["id"], r["peer_addr"], r["peer_port"], r["outcome"]))
        continue
    if e.get("TLSWATCH_ID") != str(r["id"]):
        bad.append("row %d: TLSWATCH_ID=%r on the collector" % (r["id"], e.get("TLSWATCH_ID")))
    for col, v in r.items():
        if col == "id" or v is None:
            continue
        f = "TLSWATCH_" + col.upper()
        if e.get(f) != str(v) and not (isinstance(e.get(f), list) and bytes(e[f]) == str(v).encode()):
            bad.append("row %d: %s=%r on the collector, %r in the database" % (r["id"], f, e.get(f), v))
extra = [k for k in entries if k not in seen]
if dups:
    bad.append("%d attempts with two different entries on the collector" % dups)
if extra:
    bad.append("%d entries on the collector that are not in the database: %s" % (len(extra), extra[:3]))
if len(rows) != int(sys.argv[4]):
    bad.append("%d rows in the database, %d attempts made" % (len(rows), int(sys.argv[4])))
print("%s: %d attempts made, %d rows, %d entries on the collector, %d of them sent again by journal-upload"
      % (host, int(sys.argv[4]), len(rows), len(entries) + dups + resent, resent))
for b in bad[:10]:
    print(b)
sys.exit(1 if bad else 0)
EOF
}
# wait_complete HOST...: wait up to 40 s until the collector holds every host's rows (the upload is
# restarted 10 s after a failure)
wait_complete() {
        local h all end=$((SECONDS + 40))
        while [ $SECONDS -lt $end ]; do
                all=1
                for h in "$@"; do
                        compare "$h" >/dev/null 2>&1 || {
                                all=0
                                break
                        }
                done
                [ $all = 1 ] && return 0
                sleep 0.5
        done
        return 1
}
complete() { # complete WHEN: one TAP line per server
        local h
        wait_complete "${SERVERS[@]}"
        for h in "${SERVERS[@]}"; do
                compare "$h" >"$WORK/compare.out" 2>&1
                ok $? "$1: the collector holds each of $h's attempts once, with every column of its row"
                sed 's/^/# /' "$WORK/compare.out"
        done
}
diag "first clients done at ${SECONDS}s"
complete "after the first clients"
i=0
for h in "${SERVERS[@]}"; do
        i=$((i + 1))
        [ -s "$WORK/$COLLECTOR/journal/remote/remote-$NET.1$i.journal" ]
        ok $? "split by host: $h's entries are in $REMOTE/remote-$NET.1$i.journal"
done

# --- a server whose upload is off is caught, and catches up when it is on again ---
check "web3: systemctl stop tlswatch-journal-upload" on web3 systemctl stop tlswatch-journal-upload.service
client web3 ok "curl -k" curl -sfk --max-time 10 -o /dev/null "$L"
client web3 fail "curl" curl -s --max-time 10 -o /dev/null "$L"
sleep 3
! compare web3 >/dev/null 2>&1
ok $? "with web3's upload off, the comparison finds its new attempts missing on the collector"
sed 's/^/# /' <(compare web3)
check "web3: systemctl start tlswatch-journal-upload" on web3 systemctl start tlswatch-journal-upload.service
wait_complete web3
compare web3 >"$WORK/compare.out" 2>&1
ok $? "with web3's upload on again, the collector catches up"
sed 's/^/# /' "$WORK/compare.out"

# --- the collector down for a while ---
diag "web3 caught up at ${SECONDS}s"
check "collector: systemctl stop systemd-journal-remote.socket systemd-journal-remote.service" \
        on $COLLECTOR systemctl stop systemd-journal-remote.socket systemd-journal-remote.service
down_at=$SECONDS
round2() {
        client web1 ok "curl -k" curl -sfk --max-time 10 -o /dev/null "$L"
        client web1 fail "python requests" bash -c 'requests_get "$1" verify' sh "$L"
        client web2 ok "openssl s_client with a request" bash -c 's_client_request "$1"' sh 127.0.0.1:$PORT
        client web2 fail "curl" curl -s --max-time 10 -o /dev/null "$L"
        client web2 ok "curl -k" curl -sfk --max-time 10 -o /dev/null "$L"
        client web3 ok "wget --no-check-certificate" wget -q -T 10 -t 1 --no-check-certificate -O /dev/null "$L"
}
round2
# journal-upload fails while the collector is away: wait until each has failed at least once
failed_uploads() { on "$1" systemctl show -P NRestarts tlswatch-journal-upload.service; }
end=$((SECONDS + 40))
while [ $SECONDS -lt $end ]; do
        all=1
        for h in "${SERVERS[@]}"; do
                [ "$(failed_uploads "$h")" -ge 1 ] || all=0
        done
        [ $all = 1 ] && break
        sleep 0.5
done
for h in "${SERVERS[@]}"; do
        ! compare "$h" >/dev/null 2>&1
        ok $? "with the collector down, $h's new attempts are not on it (journal-upload restarted $(failed_uploads "$h") times)"
done
diag "collector down for $((SECONDS - down_at))s"
check "collector: systemctl start systemd-journal-remote.socket" on $COLLECTOR systemctl start systemd-journal-remote.socket
complete "after the collector's outage"
for h in "${SERVERS[@]}"; do
        [ "$(on "$h" systemctl show -P ActiveState tlswatch-journal-upload.service)" = active ]
        ok $? "$h: tlswatch-journal-upload is active again"
done

diag "the collector caught up at ${SECONDS}s"

# --- tlsreport on the collector: server by server what each server's own database says ---
for h in "${SERVERS[@]}"; do
        on "$h" tlsreport --all -o json >"$WORK/$h.own.json" 2>&1
        r1=$?
        on $COLLECTOR tlsreport -D $REMOTE --host "$h" --all -o json >"$WORK/$h.fleet.json" 2>&1
        r2=$?
        $PY - "$WORK/$h.own.json" "$WORK/$h.fleet.json" "$h" "${made[$h]}" $r1 $r2 >"$WORK/last.out" 2>&1 <<'EOF'
import json, sys
own_file, fleet_file, host, made, r1, r2 = sys.argv[1:]
if r1 != "0" or r2 != "0":
    sys.exit("tlsreport failed (on %s: %s, on the collector: %s):\n%s%s"
             % (host, r1, r2, open(own_file).read()[-500:], open(fleet_file).read()[-500:]))
def load(f):
    seqs = [json.loads(l) for l in open(f) if l.strip()]
    return sorted(seqs, key=lambda s: (s["first_us"], s["key"]))
own, fleet = load(own_file), load(fleet_file)
print("%s: %d sequences of %d attempts in its database, %d of %d on the collector" % (
    host, len(own), sum(s["attempts"] for s in own), len(fleet), sum(s["attempts"] for s in fleet)))
assert sum(s["attempts"] for s in own) == int(made), "the database's report counts %d attempts, %s made" % (
    sum(s["attempts"] for s in own), made)
for s in own + fleet:
    assert s.get("host") == host, "a sequence of %s in %s's report: %s" % (s.get("host"), host, s)
for a, b in zip(own, fleet):
    assert a == b, "a sequence differs:\n  database:  %s\n  collector: %s" % (a, b)
assert len(own) == len(fleet), "%d sequences from the database, %d from the collector: %s" % (
    len(own), len(fleet), (own if len(own) > len(fleet) else fleet)[min(len(own), len(fleet)):])
EOF
        ok $? "tlsreport -D $REMOTE --host $h --all gives the sequences of tlsreport --all on $h"
        sed 's/^/# /' "$WORK/last.out" | cut -c1-300 | head -8
        on "$h" tlsreport clients -o json >"$WORK/$h.clients.json" 2>&1
done

# --- the fleet views: on how many servers each client family fails, and where first ---
on $COLLECTOR tlsreport -D $REMOTE clients -o json >"$WORK/fleet-clients.json" 2>&1
r1=$?
on $COLLECTOR tlsreport -D $REMOTE summary -o json >"$WORK/fleet-summary.json" 2>&1
r2=$?
on $COLLECTOR journalctl -D $REMOTE -u tlswatchd -o json --no-pager >"$WORK/fleet-journal.json" 2>&1
total=0
for h in "${SERVERS[@]}"; do total=$((total + made[$h])); done
$PY - "$WORK" "$total" $r1 $r2 "${SERVERS[@]}" >"$WORK/last.out" 2>&1 <<'EOF'
import json, sys
work, total, r1, r2, hosts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
assert r1 == "0" and r2 == "0", "tlsreport clients/summary failed on the collector (%s, %s)" % (r1, r2)
def lines(f):
    return [json.loads(l) for l in open(f) if l.strip()]
# what each server's own database says: the families that fail there, and when first
expect = {}
for h in hosts:
    for c in lines("%s/%s.clients.json" % (work, h)):
        if c["attempts"] > c["successes"]:
            expect.setdefault(c["ja4"], {})[h] = c["first_failure_us"]
fleet = {c["ja4"]: c for c in lines(work + "/fleet-clients.json")}
for ja4, where in sorted(expect.items(), key=lambda kv: str(kv[0])):
    c = fleet.get(ja4)
    assert c, "family %s fails on %s but is not in the collector's clients" % (ja4, sorted(where))
    first = min(where, key=where.get)
    print("%s (%s): fails on %d hosts (%s), first on %s" % (c["label"] or "-", ja4, c["failing_hosts"],
          ",".join(sorted(where)), c["first_failure_host"]))
    assert c["failing_hosts"] == len(where), "%s: failing_hosts %s, the servers' databases say %s" % (
        ja4, c["failing_hosts"], sorted(where))
    assert (c["first_failure_host"], c["first_failure_us"]) == (first, where[first]), \
        "%s: first failure on %s at %s, the servers' databases say %s" % (
            ja4, c["first_failure_host"], c["first_failure_us"], where)
for ja4, c in fleet.items():
    assert ja4 in expect or c["attempts"] == c["successes"], "%s fails on the collector only" % ja4
curl = [c for c in fleet.values() if (c["label"] or "").startswith("curl/")]
assert curl and curl[0]["failing_hosts"] == len(hosts), "curl without -k failed on every server: %s" % curl
s = json.load(open(work + "/fleet-summary.json"))
assert s["hosts"] == len(hosts), "summary: %s hosts" % s["hosts"]
assert s["attempts"] == total, "summary: %s attempts, %d made" % (s["attempts"], total)
assert {f["ja4"]: f["failing_hosts"] for f in s["fleet"]} == {j: len(w) for j, w in expect.items()}, \
    "summary's fleet part: %s" % s["fleet"]
print("summary: %d attempts on %d hosts" % (s["attempts"], s["hosts"]))
entries = [e for e in lines(work + "/fleet-journal.json") if "TLSWATCH_OUTCOME" in e]
assert len(entries) >= total, "journalctl -D -u tlswatchd: %d entries, %d attempts made" % (len(entries), total)
EOF
ok $? "tlsreport -D $REMOTE clients and summary: each family fails on the servers where their databases say"
sed 's/^/# /' "$WORK/last.out" | cut -c1-300


# --- the README's commands on the collector, as written ---
sed -n '/^## More than one server/,/^## /p' "$SRC/README.md" | sed -n 's/^    \(\(tlsreport\|journalctl\) -D [^#]*\).*/\1/p' |
        sed 's/ *$//' >"$WORK/readme-reports.txt"
[ "$(wc -l <"$WORK/readme-reports.txt")" -ge 3 ]
ok $? "the README's section lists the commands for the collector ($(wc -l <"$WORK/readme-reports.txt"))"
while read -r cmd; do
        on $COLLECTOR env COLUMNS=200 sh -c "$cmd" >"$WORK/last.out" 2>&1 </dev/null
        r=$?
        [ -s "$WORK/last.out" ] || r=1
        case "$cmd" in
        *--host*) ! grep -q 'web[23]' "$WORK/last.out" || r=1 ;; # its server only
        *) grep -q web1 "$WORK/last.out" || r=1 ;;               # names the servers
        esac
        ok $r "collector: $cmd"
        [ $r = 0 ] || sed 's/^/# /' "$WORK/last.out" | tail -5
done <"$WORK/readme-reports.txt"
diag "tlsreport done at ${SECONDS}s"
bash -c "$(stop_script)"
trap - EXIT
diag "powered off at ${SECONDS}s"
echo "1..$n"
[ $failed = 0 ]

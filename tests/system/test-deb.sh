#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Debian package test (TAP, issue 16): build the package from a copy of the source tree with
# dpkg-buildpackage, check it with lintian, then install it with apt into a container that boots a
# real systemd (tests/system/sdbox with SDBOX_ROOT=overlay: a copy-on-write overlay of this machine's
# root, so that dpkg's maintainer scripts run against its dpkg database under the container's
# systemd), use it with real clients, upgrade it to a rebuilt package (version +test1) while a real
# TLS client holds a handshake open and another waits in the socket's queue, then remove and purge it.
#
#   test-deb.sh SOURCEDIR BUILDDIR
set -uo pipefail

SRC=$(readlink -f "${1:?usage: test-deb.sh SOURCEDIR BUILDDIR}")
BUILD=$(readlink -f "${2:?usage: test-deb.sh SOURCEDIR BUILDDIR}")
SDBOX=$SRC/tests/system/sdbox
WORK=$BUILD/tests/deb
export SDBOX_NAME=tlswatch-deb-$$
export SDBOX_STATE=$WORK/sdbox
export SDBOX_ROOT=overlay
export SDBOX_MAX_LIFETIME=${SDBOX_MAX_LIFETIME:-400}
PORT=8443
DB=/var/lib/tlswatch/tlswatch.db

SCRATCH=$WORK
. "$SRC/tests/system/lib.sh"
apt_in_box() { timeout 300 "$SDBOX" run env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 "$@"; }
sql() { box sqlite3 "$DB" "$1"; }

missing=""
for p in dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian systemd-nspawn:systemd-container \
        curl:curl sqlite3:sqlite3; do
        command -v "${p%%:*}" >/dev/null || missing="$missing ${p#*:}"
done
if [ "$(id -u)" != 0 ] || [ -n "$missing" ]; then
        echo "1..0 # SKIP needs root and the Debian packages${missing:- (not root)} (scripts/setup-debian.sh test)"
        exit 0
fi
if dpkg-query -W -f='${db:Status-Abbrev}' tlswatch 2>/dev/null | grep -q '^.i'; then
        echo "1..0 # SKIP tlswatch is installed on this machine: the container would only upgrade it"
        exit 0
fi

cleanup() { timeout 90 "$SDBOX" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
# meson test's timeout sends SIGTERM to our process group and SIGKILL 0.5 s later: stop the
# container from a session of its own so that the SIGKILL cannot cut the poweroff short.
trap 'trap - EXIT; setsid timeout 90 "$SDBOX" stop >/dev/null 2>&1 </dev/null & exit 130' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK/src" "$SDBOX_STATE/payload"

# --- build in a copy of the tree: the package build writes debian/tlswatch, obj-*/ and ../*.deb ---
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$SRC" ls-files -z --cached --others --exclude-standard |
                (cd "$SRC" && tar --null -T - --ignore-failed-read -cf -) | tar -xf - -C "$WORK/src"
else
        tar -C "$SRC" --exclude=./.git --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$WORK/src"
fi
[ -x "$WORK/src/debian/rules" ] || bail "no debian/rules in the copy of $SRC"

version=$(dpkg-parsechangelog -l "$WORK/src/debian/changelog" -S Version)
project_version=$(meson introspect --projectinfo "$BUILD" | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[ "$version" = "$project_version" ]
ok $? "debian/changelog's version is meson.build's ($version, $project_version)"
arch=$(dpkg --print-architecture)
deb1=tlswatch_${version}_$arch.deb
deb2=tlswatch_${version}+test1_$arch.deb

# The unit tests run in CI's own build: nocheck leaves them out of the package build.
export DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)"
SECONDS=0
check "dpkg-buildpackage -b -us -uc builds $deb1" \
        sh -c 'cd "$1/src" && dpkg-buildpackage -b -us -uc >../build1.log 2>&1 || { tail -40 ../build1.log; exit 1; }' \
        sh "$WORK" || bail "the package does not build (log: $WORK/build1.log)"
diag "first build: ${SECONDS}s"

lintian --fail-on error,warning "$WORK/tlswatch_${version}_$arch.changes" >"$WORK/lintian.out" 2>&1
r=$?
grep -q '^[EW]: ' "$WORK/lintian.out" && r=1
ok $r "lintian reports no errors or warnings"
grep -v 'running with root privileges' "$WORK/lintian.out" | sed 's/^/# lintian: /'

dpkg-deb -c "$WORK/$deb1" | awk '{ print $6 }' | sed 's|^\./|/|' >"$WORK/contents"
# the units: /lib/systemd/system with Debian 12's debhelper, /usr/lib/systemd/system with Debian 13's
unitdir=$(sed -n 's|^\(/.*\)/tlswatchd\.socket$|\1|p' "$WORK/contents")
case "$unitdir" in /lib/systemd/system | /usr/lib/systemd/system) ;; *) unitdir=/lib/systemd/system ;; esac
miss=""
for f in /usr/sbin/tlswatchd /usr/bin/tlsreport "$unitdir/tlswatchd.socket" "$unitdir/tlswatchd.service" \
        /usr/lib/systemd/catalog/tlswatch.catalog /usr/share/man/man8/tlswatchd.8.gz \
        /usr/share/man/man1/tlsreport.1.gz /usr/share/bash-completion/completions/tlsreport \
        /usr/share/doc/tlswatch/copyright; do
        grep -qxF "$f" "$WORK/contents" || miss="$miss $f"
done
[ -z "$miss" ]
ok $? "the package holds the programs, units, catalog, man pages and completion in Debian's places${miss:+ (missing:$miss)}"
depends=$(dpkg-deb -f "$WORK/$deb1" Depends)
diag "Depends: $depends"
grep -q 'libmbedtls[0-9]* (>= 3\.6' <<<"$depends" && grep -q libsqlite3 <<<"$depends" && grep -q libsystemd0 <<<"$depends"
ok $? "the runtime dependencies come from the shared libraries (Mbed TLS >= 3.6, SQLite, libsystemd)"

# --- the upgrade's package: the same tree with a +test1 changelog entry, built again without clean ---
{
        printf 'tlswatch (%s+test1) unstable; urgency=medium\n\n  * Rebuilt for the upgrade test.\n\n' "$version"
        printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$WORK/src/debian/changelog" -S Maintainer)" "$(date -R)"
        cat "$WORK/src/debian/changelog"
} >"$WORK/changelog" && mv "$WORK/changelog" "$WORK/src/debian/changelog"
# -nc keeps the compiled tree; dh's log of the overrides goes so that they run again.
rm -f "$WORK"/src/debian/*.debhelper.log
SECONDS=0
check "dpkg-buildpackage -b -us -uc -nc builds $deb2" \
        sh -c 'cd "$1/src" && dpkg-buildpackage -b -us -uc -nc >../build2.log 2>&1 || { tail -40 ../build2.log; exit 1; }' \
        sh "$WORK" || bail "the second package does not build (log: $WORK/build2.log)"
diag "second build: ${SECONDS}s"
cp "$WORK/$deb1" "$WORK/$deb2" "$SDBOX_STATE/payload/"

# --- install into a container with a real systemd ---
SECONDS=0
timeout 90 "$SDBOX" start || bail "the container did not boot"
diag "container booted in ${SECONDS}s"
# Docker-style machines have a policy-rc.d that forbids starting services; a server has none.
box sh -c 'if [ -e /usr/sbin/policy-rc.d ]; then rm /usr/sbin/policy-rc.d; echo removed; fi' |
        grep -q removed && diag "removed this machine's /usr/sbin/policy-rc.d inside the container"
# The container's root is this machine's: what tlswatch left here (a state directory, units installed
# with meson under /usr/local) would be taken for the package's. Hide it (copy-on-write, here only).
hidden=$(box sh -c 'for f in /var/lib/tlswatch /var/lib/private/tlswatch /usr/local/lib/systemd/system/tlswatchd.*; do
        if [ -e "$f" ] || [ -L "$f" ]; then rm -rf "$f" && echo "$f"; fi; done')
[ -z "$hidden" ] || diag "hid this machine's $(tr '\n' ' ' <<<"$hidden")inside the container"
# man-db's trigger rebuilds the index of every man page on each dpkg run: seconds that test nothing.
box rm -f /var/lib/man-db/auto-update

SECONDS=0
check "apt-get install ./$deb1" apt_in_box install "/src/$deb1"
diag "install: ${SECONDS}s"
[ "$(box dpkg-query -W -f='${db:Status-Abbrev}${Version}' tlswatch)" = "ii $version" ]
ok $? "dpkg lists tlswatch $version as installed"
box systemctl status --no-pager tlswatchd.socket >"$WORK/status.txt" 2>&1
r=$?
grep -q 'Active: active (listening)' "$WORK/status.txt" || r=1
ok $r "systemctl status tlswatchd.socket: active (listening), started by the package"
sed 's/^/# /' "$WORK/status.txt" | head -8
[ "$(box systemctl is-enabled tlswatchd.socket)" = enabled ]
ok $? "tlswatchd.socket is enabled"
! box systemctl is-active --quiet tlswatchd.service
ok $? "tlswatchd.service waits for the first connection"
box journalctl --list-catalog --no-pager >"$WORK/catalog.txt" 2>&1
grep -q ' tlswatch: ' "$WORK/catalog.txt"
ok $? "the journal catalog holds tlswatch's entries (systemd's trigger ran journalctl --update-catalog)"

# An administrator's drop-in, which must survive the upgrade. It gives handshakes 60 s instead of 10,
# so that the slow client below still holds its handshake open when the upgrade restarts the service,
# however long dpkg takes to get there on a loaded machine (with 10 s the daemon may time it out first:
# recorded, but as timeout).
box sh -c 'mkdir -p /etc/systemd/system/tlswatchd.service.d &&
        printf "[Service]\nExecStart=\nExecStart=/usr/sbin/tlswatchd --handshake-timeout=60\n" \
                >/etc/systemd/system/tlswatchd.service.d/handshake-timeout.conf && systemctl daemon-reload'

# --- real clients ---
conns=0
port_reject=$(net curl -s --max-time 10 -o /dev/null -w '%{local_port}' "https://127.0.0.1:$PORT/")
[ $? != 0 ] && [ -n "$port_reject" ]
ok $? "curl without -k rejects the self-signed certificate (from port $port_reject)"
conns=$((conns + 1))
check "curl -k gets the page" net curl -sfk --max-time 10 -o /dev/null "https://127.0.0.1:$PORT/"
conns=$((conns + 1))
rows_are() { # rows_are N: wait up to 10 s until the database holds N rows
        local i
        for ((i = 0; i < 100; i++)); do
                [ "$(sql 'SELECT count(*) FROM attempts' 2>/dev/null)" = "$1" ] && return 0
                sleep 0.1
        done
        return 1
}
rows_are $conns
ok $? "the database holds a row for each ($conns)"
box tlsreport attempts -o json >"$WORK/attempts.json" 2>&1
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [r for r in rows if str(r.get("peer_port")) == sys.argv[2]]
sys.exit(not (len(mine) == 1 and mine[0]["outcome"] != "ok"))' "$WORK/attempts.json" "$port_reject"
ok $? "tlsreport attempts shows curl's rejected attempt (port $port_reject)"
box tlsreport >"$WORK/report.txt" 2>&1
r=$?
grep -q '127\.0\.0\.1 .* cert_rejected_then_ok' "$WORK/report.txt" || r=1
ok $r "tlsreport lists the client's retry sequence (cert_rejected_then_ok)"
sed 's/^/# /' "$WORK/report.txt" | head -6

# --- upgrade while a real client holds a handshake open ---
# The upgrade in the two steps apt-get install makes of it: dpkg --unpack puts the new files in place
# (nothing stops the service), dpkg --configure runs the postinst, which restarts the service. The
# slow client comes in between, so that its handshake is open when the restart comes.
check "dpkg --unpack $deb2" timeout 300 "$SDBOX" run dpkg --unpack "/src/$deb2"
[ "$(box dpkg-query -W -f='${db:Status-Abbrev}${Version}' tlswatch)" = "iU $version+test1" ]
ok $? "dpkg lists tlswatch $version+test1 as unpacked"
box systemctl is-active --quiet tlswatchd.service
ok $? "the service still runs"
# accepted: connections the daemon took (the kernel gives their server side an inode at accept());
# queued: connections waiting in the listening socket's queue (established, no inode yet).
tcp_server() { net awk -v port="$(printf '%04X' $PORT)" -v inode="$1" \
        'NR > 1 && $2 ~ (":" port "$") && $4 == "01" && (inode ? $10 != "0" : $10 == "0")' /proc/net/tcp | wc -l; }
rm -f "$WORK/go"
net python3 "$SRC/tests/system/slow-tls-client.py" $PORT "$WORK/go" >"$WORK/slow.out" 2>&1 &
slow_pid=$!
conns=$((conns + 1))
for ((i = 0; i < 100; i++)); do
        grep -q held "$WORK/slow.out" && [ "$(tcp_server 1)" -ge 1 ] && break
        sleep 0.1
done
port_slow=$(awk '/^port / { print $2 }' "$WORK/slow.out")
grep -q held "$WORK/slow.out" && [ "$(tcp_server 1)" -ge 1 ]
ok $? "a slow client (port $port_slow) holds its handshake open in the daemon"
pid_before=$(box systemctl show -P MainPID tlswatchd.service)

SECONDS=0
timeout 300 "$SDBOX" run dpkg --configure tlswatch >"$WORK/upgrade.out" 2>&1 &
configure_pid=$!
# the package's postinst restarts the service: the old daemon drains, waiting for the slow handshake
state=""
for ((i = 0; i < 600; i++)); do
        state=$(box systemctl show -P ActiveState tlswatchd.service)
        [ "$state" = deactivating ] && break
        kill -0 $configure_pid 2>/dev/null || break
        sleep 0.1
done
[ "$state" = deactivating ]
ok $? "during the upgrade the service stops and drains (ActiveState $state after ${SECONDS}s)"
# a new client meanwhile: the socket stays open and queues it for the next instance
net curl -sk --max-time 60 -o /dev/null -w '%{local_port} %{http_code}' "https://127.0.0.1:$PORT/" \
        >"$WORK/queued.out" 2>&1 &
queued_pid=$!
conns=$((conns + 1))
for ((i = 0; i < 50; i++)); do
        [ "$(tcp_server 0)" -ge 1 ] && break
        sleep 0.1
done
[ "$(tcp_server 0)" -ge 1 ]
ok $? "a client connecting during the restart waits in the socket's queue"
touch "$WORK/go"
wait $slow_pid
r=$?
grep -q '^done .* 200 ' "$WORK/slow.out" || r=1
ok $r "the slow client finishes its handshake with the draining daemon and gets the page"
sed 's/^/# slow client: /' "$WORK/slow.out"
wait $configure_pid
r=$?
ok $r "dpkg --configure tlswatch (${SECONDS}s)"
[ $r = 0 ] || sed 's/^/# /' "$WORK/upgrade.out" | tail -20
wait $queued_pid
r=$?
read -r port_queued code_queued <"$WORK/queued.out"
[ $r = 0 ] && [ "${code_queued:-}" = 200 ]
ok $? "the queued client is served by the new daemon (port ${port_queued:-?}, HTTP ${code_queued:-?})"
[ "$(box dpkg-query -W -f='${db:Status-Abbrev}${Version}' tlswatch)" = "ii $version+test1" ]
ok $? "dpkg lists tlswatch $version+test1 as installed"
pid_after=$(box systemctl show -P MainPID tlswatchd.service)
[ -n "$pid_after" ] && [ "$pid_after" != 0 ] && [ "$pid_after" != "$pid_before" ]
ok $? "the service was restarted (MainPID $pid_before -> $pid_after)"
box systemctl is-active --quiet tlswatchd.socket
ok $? "the socket is still active"
box grep -q -- --handshake-timeout=60 "/proc/$pid_after/cmdline"
ok $? "the new daemon runs with the administrator's drop-in"
rows_are $conns
ok $? "nothing lost: the database holds a row for each of the $conns connections"
[ "$(sql "SELECT outcome FROM attempts WHERE peer_port = ${port_slow:-0}")" = ok ]
ok $? "the slow client's attempt is recorded as ok"
[ "$(sql "SELECT outcome FROM attempts WHERE peer_port = ${port_queued:-0}")" = ok ]
ok $? "the queued client's attempt is recorded as ok"
diag "rows: $(sql "SELECT peer_port || ':' || outcome FROM attempts ORDER BY id" | tr '\n' ' ')"

# --- remove keeps the data, purge removes it ---
check "apt-get remove tlswatch" apt_in_box remove tlswatch
[ "$(box systemctl is-active tlswatchd.socket tlswatchd.service | sort -u)" = inactive ]
ok $? "the socket and the service are stopped"
! box test -e /usr/sbin/tlswatchd
ok $? "the programs are gone"
[ "$(box dpkg-query -W -f='${db:Status-Abbrev}' tlswatch)" = "rc " ]
ok $? "dpkg keeps the package's configuration (state rc)"
[ "$(sql 'SELECT count(*) FROM attempts')" = "$conns" ]
ok $? "the database is kept ($DB, $conns rows)"
! box journalctl --list-catalog --no-pager 2>/dev/null | grep -q ' tlswatch: '
ok $? "the catalog no longer holds tlswatch's entries"
check "apt-get purge tlswatch" apt_in_box purge tlswatch
! box dpkg-query -W -f='${db:Status-Abbrev}' tlswatch 2>/dev/null | grep -q .
ok $? "dpkg no longer knows tlswatch"
left=$(box sh -c 'ls -d /var/lib/tlswatch /var/lib/private/tlswatch /etc/systemd/system/*/tlswatchd.* \
        /var/lib/systemd/deb-systemd-helper-enabled/*tlswatchd* 2>/dev/null')
[ -z "$left" ]
ok $? "purge removed the state directory and the enablement links${left:+ (left: $(tr '\n' ' ' <<<"$left"))}"

SECONDS=0
timeout 90 "$SDBOX" stop
diag "poweroff took ${SECONDS}s"
trap - EXIT
echo "1..$n"
[ $failed = 0 ]

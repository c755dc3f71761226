#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The HTML timelines in real headless Chromium (TAP; issue 14 point 3):
#   - controls: the detectors detect (an image under the report's CSP is reported as a violation; one
#     without it is seen as a network request), so "no violation, no request" below means something
#   - real clients against a real tlswatchd on loopback: curl without -k (alert 48, twice), curl -k,
#     openssl s_client, Chromium without the certificate trusted (alert 46), then Chromium trusting it
#     loads GET /: the self page's timeline has one mark per attempt of the visitor's sequence, the same
#     as the database, and its screenshot shows them
#   - tlsreport -o html of that database: no console message, no CSP violation, no request but the file;
#     each family's marks are its attempts in the database by outcome; the full-page screenshot shows
#     each outcome's colour in its family's timeline box (check-html.py decodes the PNG)
#   - tlsreport -o html of 10^4 generated attempts (bench/gen-attempts): time bins whose counts add up to
#     each family's attempts, the same checks, and the viewport screenshot for the README
#     ($BUILD/tests/html-report-work/report-generated.png; doc/report-html.png is a copy)
#
#   test-html-report.sh SOURCEDIR BUILDDIR
set -uo pipefail

SRC=$(readlink -f "${1:?usage: test-html-report.sh SOURCEDIR BUILDDIR}")
BUILD=$(readlink -f "${2:?usage: test-html-report.sh SOURCEDIR BUILDDIR}")
CACHE=${TLSWATCH_TEST_CACHE:-/var/cache/tlswatch-test}
W=$BUILD/tests/html-report-work
CHECK=$SRC/tests/browser/check-html.py
PAGE=$SRC/tests/browser/html-page.js

. "$SRC/tests/browser/lib.sh"

require chromium node npm curl openssl sqlite3
require_built "$BUILD" daemon/tlswatchd tools/tlsreport bench/gen-attempts
tlsreport=$BUILD/tools/tlsreport

browser_test_start
playwright_setup

# page NAME URL [html-page.js options...]: $W/NAME.json and $W/NAME.png
page() {
        local name=$1 url=$2
        shift 2
        run_group timeout -k 5 120 node "$PAGE" --url "$url" --screenshot "$W/$name.png" "$@" \
                >"$W/$name.json" 2>"$W/$name.err"
        local r=$?
        ok $r "Chromium loaded $url ($name)"
        [ $r = 0 ] || tail -5 "$W/$name.err" | sed 's/^/# /' | tap
}

# --- controls: what the checks below look for is seen when it happens ---
csp="<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
printf '<!DOCTYPE html><html><head>%s</head><body><img src="http://127.0.0.1:9/x.png"></body></html>\n' \
        "$csp" >"$W/control-csp.html"
printf '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>\n' >"$W/control-net.html"
page control-csp "file://$W/control-csp.html" --full 0
page control-net "file://$W/control-net.html" --full 0
tap < <(python3 "$CHECK" controls "$W/control-csp.json" "$W/control-net.json")

# --- real clients against the real daemon, then the visitor's page ---
DB=$W/clients.db
setsid "$BUILD/daemon/tlswatchd" --journal none --listen "127.0.0.1:$PORT" --state-directory "$W/state" \
        --database "$DB" >>"$W/daemon.log" 2>&1 </dev/null &
daemon_pid=$!
for ((i = 0; i < 100; i++)); do
        ss -Hltn "sport = :$PORT" | grep -q . && break
        sleep 0.1
done
ss -Hltn "sport = :$PORT" | grep -q .
ok $? "tlswatchd listens on 127.0.0.1:$PORT" || exit 1

for i in 1 2; do timeout 20 curl -s -o /dev/null "$URL"; done # no -k: unknown_ca
timeout 20 curl -sk -o /dev/null "$URL"
ok $? "curl -k"
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -quiet -connect "127.0.0.1:$PORT" >/dev/null 2>&1
ok $? "openssl s_client"
prof=$(mktemp -d "$W/profile.XXXXXX")
run_group timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$prof" --dump-dom "$URL" >/dev/null 2>>"$W/chromium.err"
cert=$(grep -l 'BEGIN CERTIFICATE' "$W/state"/* 2>/dev/null | head -1)
spki=$(openssl x509 -in "$cert" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64)
page self "$URL" --spki "$spki" --width 1024 --height 900

kill -TERM "$daemon_pid"
for ((i = 0; i < 200; i++)); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
done
wait "$daemon_pid" 2>/dev/null
daemon_pid=""

# the page's own connection: the first attempt that carried a request and was served GET / by the
# trusting Chromium (the only client that sent a User-Agent with "Chrome")
read -r self_id ja4 < <(sqlite3 -separator ' ' "$DB" "SELECT id, ja4_stable FROM attempts WHERE http_requests > 0 \
        AND user_agent LIKE '%Chrome%' ORDER BY id LIMIT 1")
echo "# the page's attempt: id $self_id, stable JA4 $ja4"
tap < <(python3 "$CHECK" self "$DB" "$W/self.json" "$W/self.png" "$ja4" "${self_id:-0}")

"$tlsreport" --database "$DB" -o html --no-pager >"$W/clients.html"
ok $? "tlsreport -o html of the clients' database ($(stat -c %s "$W/clients.html") bytes)"
page clients "file://$W/clients.html"
tap < <(python3 "$CHECK" report "$DB" "$W/clients.json" "$W/clients.png")
# any verb writes the same report
"$tlsreport" --database "$DB" -o html --no-pager summary | cmp -s - "$W/clients.html"
ok $? "tlsreport -o html summary writes the same page"

# --- many attempts: time bins ---
GEN=$W/generated.db
"$BUILD/bench/gen-attempts" "$GEN" 10000 >/dev/null
"$tlsreport" --database "$GEN" -o html --no-pager >"$W/generated.html"
ok $? "tlsreport -o html of 10^4 generated attempts ($(stat -c %s "$W/generated.html") bytes)"
page generated "file://$W/generated.html"
tap < <(python3 "$CHECK" report "$GEN" "$W/generated.json" "$W/generated.png" --binned)
# the README's picture: the top of that page
page report-generated "file://$W/generated.html" --full 0 --width 1060 --height 1000

echo "1..$n"
[ $failed = 0 ]

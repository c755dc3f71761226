#!/bin/bash
# SPDX-License-Identifier: MIT
# tlsreport's speed and memory on a generated one-day database (issue 5), against the sqlite3 baseline:
#   bench/bench-report.sh BUILDDIR [DB [ATTEMPTS]]
# Generates DB (default /tmp/tlsreport-bench.db, 1000000 attempts over today) with BUILDDIR's
# gen-attempts unless it exists, then runs, 3 rounds interleaved:
#   tlsreport --since today -o json    (sequences with a failure, as JSON)
#   tlsreport --since today summary
#   sqlite3 DB 'SELECT * FROM attempts'
# each with stdout to /dev/null, and prints the median wall time and the peak RSS of each.
# The machine may be shared: compare the ratios of one run, not absolute times of different runs.
set -euo pipefail

builddir=${1:?usage: bench-report.sh BUILDDIR [DB [ATTEMPTS]]}
db=${2:-/tmp/tlsreport-bench.db}
attempts=${3:-1000000}
tlsreport=$builddir/tools/tlsreport
gen=$builddir/bench/gen-attempts
[ -x "$gen" ] || gen=$builddir/tests/report-gen-attempts
command -v sqlite3 >/dev/null || { echo "sqlite3 (the CLI) is needed for the baseline" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

if [ ! -e "$db" ]; then
        echo "generating $attempts attempts into $db ..."
        "$gen" "$db" "$attempts"
fi
echo "rows: $(sqlite3 "$db" 'SELECT count(*) FROM attempts'), load: $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # NAME CMD...: appends "seconds kilobytes" to $tmp/NAME
        local name=$1
        shift
        /usr/bin/time -f '%e %M' -o "$tmp/$name.1" "$@" >/dev/null
        cat "$tmp/$name.1" >>"$tmp/$name"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for round in 1 2 3; do
        measure sequences-json "$tlsreport" --database "$db" --since today -o json --no-pager
        measure summary "$tlsreport" --database "$db" --since today summary --no-pager
        measure sqlite3-select-all sqlite3 "$db" 'SELECT * FROM attempts'
done

printf '%-20s %12s %14s   %s\n' what "median s" "max RSS KiB" "rounds (s)"
for name in sequences-json summary sqlite3-select-all; do
        median=$(sort -n -k1,1 "$tmp/$name" | sed -n 2p | cut -d' ' -f1)
        rss=$(sort -n -k2,2 "$tmp/$name" | tail -1 | cut -d' ' -f2)
        printf '%-20s %12s %14s   %s\n' "$name" "$median" "$rss" "$(cut -d' ' -f1 "$tmp/$name" | tr '\n' ' ')"
done

#!/bin/bash
# SPDX-License-Identifier: MIT
# tlsreport's CPU time, wall time and peak RSS against the sqlite3 baseline, in interleaved rounds (issue 5
# point 8, issue 7 point 4):
#   bench/bench-report-cpu.sh BUILDDIR DB [ATTEMPTS [ROUNDS [OTHER_TLSREPORT]]]
# Generates DB (ATTEMPTS over today, default 1000000) with BUILDDIR's gen-attempts unless it exists. Each
# round runs, stdout to /dev/null:
#   tlsreport --since today -o json      (json)
#   tlsreport --since today summary      (summary)
#   COLUMNS=120 tlsreport --since today  (table: the sequences table sized to 120 columns)
#   sqlite3 DB 'SELECT * FROM attempts'  (sqlite3)
# and, when OTHER_TLSREPORT is given (e.g. an older build), the same three commands with it (old-json,
# old-summary, old-table). Prints per command the median [min-max] of CPU seconds (user+sys), wall seconds, the
# largest peak RSS, and the median of the per-round ratio CPU / sqlite3's CPU. The machine may be shared and
# noisy: compare ratios of one run. ROUNDS defaults to 5.
set -euo pipefail

builddir=${1:?usage: bench-report-cpu.sh BUILDDIR DB [ATTEMPTS [ROUNDS [OTHER_TLSREPORT]]]}
db=${2:?usage: bench-report-cpu.sh BUILDDIR DB [ATTEMPTS [ROUNDS [OTHER_TLSREPORT]]]}
attempts=${3:-1000000}
rounds=${4:-5}
other=${5:-}
tlsreport=$builddir/tools/tlsreport
gen=$builddir/bench/gen-attempts
[ -x "$gen" ] || gen=$builddir/tests/report-gen-attempts
command -v sqlite3 >/dev/null || { echo "sqlite3 (the CLI) is needed for the baseline" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

want_v=$(find "$(dirname "$0")/../schema" -name '[0-9]*.sql' | wc -l)
if [ -e "$db" ] && [ "$(sqlite3 "$db" 'PRAGMA user_version')" != "$want_v" ]; then
        echo "warning: $db has schema version $(sqlite3 "$db" 'PRAGMA user_version'), this tree $want_v:" \
                "its figures are not this build's (remove it to generate it anew)" >&2
fi
if [ ! -e "$db" ]; then
        echo "generating $attempts attempts into $db ..."
        "$gen" "$db" "$attempts"
fi
echo "rows: $(sqlite3 "$db" 'SELECT count(*) FROM attempts'), size: $(du -m "$db" | cut -f1) MB, load: $(cut -d' ' -f1-3 /proc/loadavg)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

measure() { # NAME CMD...: appends "cpu wall rss" to $tmp/NAME
        local name=$1
        shift
        /usr/bin/time -f '%U %S %e %M' -o "$tmp/t" "$@" >/dev/null
        awk '{ printf "%.2f %.2f %d\n", $1 + $2, $3, $4 }' "$tmp/t" >>"$tmp/$name"
}

names=(json summary table sqlite3)
[ -n "$other" ] && names+=(old-json old-summary old-table)
for ((round = 1; round <= rounds; round++)); do
        measure json "$tlsreport" --database "$db" --since today -o json --no-pager
        measure summary "$tlsreport" --database "$db" --since today summary --no-pager
        measure table env COLUMNS=120 "$tlsreport" --database "$db" --since today --no-pager
        measure sqlite3 sqlite3 "$db" 'SELECT * FROM attempts'
        if [ -n "$other" ]; then
                measure old-json "$other" --database "$db" --since today -o json --no-pager
                measure old-summary "$other" --database "$db" --since today summary --no-pager
                measure old-table env COLUMNS=120 "$other" --database "$db" --since today --no-pager
        fi
done

stat() { # FILE COLUMN: median [min-max]
        sort -n -k"$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END {
                m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.2f [%.2f-%.2f]", m, v[1], v[NR] }'
}

printf '%-12s %-20s %-20s %12s %14s\n' what "CPU s" "wall s" "max RSS KiB" "CPU/sqlite3"
for name in "${names[@]}"; do
        ratio=$(paste -d' ' "$tmp/$name" "$tmp/sqlite3" | awk '{ print ($4 > 0 ? $1 / $4 : 0) }' | sort -n |
                awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        printf '%-12s %-20s %-20s %12s %14s\n' "$name" "$(stat "$tmp/$name" 1)" "$(stat "$tmp/$name" 2)" \
                "$(sort -n -k3,3 "$tmp/$name" | tail -1 | cut -d' ' -f3)" "$ratio"
done

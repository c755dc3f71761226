#!/bin/bash
# SPDX-License-Identifier: MIT
# The HTML report's size and time against `tlsreport -o json` of the same database (issue 14 point 3):
#   bench/html-report.sh BUILDDIR [WORKDIR [SIZES [ROUNDS]]]
# For each size in SIZES (default "1000 10000 100000"; add 1000000 if you have the time), generates that
# many attempts over one day with BUILDDIR's gen-attempts into WORKDIR (default /tmp/tlswatch-bench-html,
# kept: delete it to regenerate), then runs in ROUNDS interleaved rounds (default 3), stdout to a file:
#   tlsreport -o json   (the baseline: every sequence, streamed)
#   tlsreport -o html   (the page)
# Prints per size the medians of CPU seconds (user+sys), wall seconds and peak RSS of both, the ratio
# html/json of the CPU medians, the output sizes, and the page's size per attempt. The page's size must
# stay bounded (aggregation: it grows with the number of families and diagnoses, not of attempts); its
# time must grow about linearly, like the baseline's.
set -euo pipefail

builddir=${1:?usage: html-report.sh BUILDDIR [WORKDIR [SIZES [ROUNDS]]]}
work=${2:-/tmp/tlswatch-bench-html}
sizes=${3:-1000 10000 100000}
rounds=${4:-3}
tlsreport=$builddir/tools/tlsreport
gen=$builddir/bench/gen-attempts
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
mkdir -p "$work"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

measure() { # NAME OUT CMD...: appends "cpu wall rss_kb" to $tmp/NAME
        local name=$1 out=$2
        shift 2
        /usr/bin/time -f '%U %S %e %M' -o "$tmp/t" "$@" >"$out"
        awk '{ printf "%.3f %.3f %d\n", $1 + $2, $3, $4 }' "$tmp/t" >>"$tmp/$name"
}
median() { # FILE COLUMN
        sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds per size, medians"
printf '%9s  %8s %8s %8s  %8s %8s %8s  %6s  %10s %10s  %8s\n' attempts json_cpu json_s json_MB \
        html_cpu html_s html_MB cpu_x json_bytes html_bytes html_B/att
for n in $sizes; do
        db=$work/$n.db
        [ -e "$db" ] || "$gen" "$db" "$n" >/dev/null
        rm -f "$tmp"/json-$n "$tmp"/html-$n
        for ((r = 0; r < rounds; r++)); do
                measure "json-$n" "$tmp/out.json" "$tlsreport" --database "$db" -o json --no-pager
                measure "html-$n" "$tmp/out.html" "$tlsreport" --database "$db" -o html --no-pager
        done
        jc=$(median "$tmp/json-$n" 1) jw=$(median "$tmp/json-$n" 2) jm=$(median "$tmp/json-$n" 3)
        hc=$(median "$tmp/html-$n" 1) hw=$(median "$tmp/html-$n" 2) hm=$(median "$tmp/html-$n" 3)
        js=$(stat -c %s "$tmp/out.json") hs=$(stat -c %s "$tmp/out.html")
        awk -v n="$n" -v jc="$jc" -v jw="$jw" -v jm="$jm" -v hc="$hc" -v hw="$hw" -v hm="$hm" \
                -v js="$js" -v hs="$hs" 'BEGIN {
                printf "%9d  %8.3f %8.3f %8.1f  %8.3f %8.3f %8.1f  %6.2f  %10d %10d  %8.1f\n",
                        n, jc, jw, jm / 1024, hc, hw, hm / 1024, (jc > 0 ? hc / jc : 0), js, hs, hs / n }'
done

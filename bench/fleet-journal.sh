#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The fleet at scale (issue 15): journal files of N tlswatchd hosts x M attempts each, as a collector's
# systemd-journal-remote keeps them, and the time journalctl takes to read them all; then tlsreport -D on
# the same files (the hook below), as a ratio to journalctl in the same run.
#
#   bench/fleet-journal.sh [-n HOSTS] [-m ATTEMPTS] [-o DIR] [-B BUILDDIR] [-j JOBS] [-s SEED] [--keep]
#
#   -n HOSTS      hosts (default 100), named host0001...
#   -m ATTEMPTS   attempts per host (default 100000)
#   -o DIR        where to put them (default /tmp/tlswatch-fleet-HOSTSxATTEMPTS); the journal files go to
#                 DIR/remote/remote-hostNNNN.journal (and its rotated files)
#   -B BUILDDIR   the meson build directory with bench/gen-journal-export and tools/tlsreport (default:
#                 $BUILDDIR, else ./build)
#   -j JOBS       hosts generated in parallel (default: the number of CPUs)
#   -s SEED       the generator's seed (default 1)
#   --keep        reuse DIR/remote if it was made with the same HOSTS, ATTEMPTS and SEED, and keep it at the
#                 end (without it DIR/remote is made afresh and removed at the end; the script removes only
#                 what it makes in DIR: remote/, bytes/, logs/, params, time.out)
#
# How the files are made: bench/gen-journal-export writes each host's entries (what tlswatchd --journal all
# sends and journald adds, Journal Export Format, binary-safe) and systemd-journal-remote turns each host's
# stream into that host's journal file, as --split-mode=host does on a collector for each uploading host
# (journal-remote refuses --split-mode=host for a stream on stdin: "For active sources, only
# --split-mode=none is allowed", so the split is done here, one journal-remote per host). Needs the
# Debian package systemd-journal-remote, and GNU time (package time) for peak memory.
#
# Measured (2026-12-06, this shared 2-CPU machine, load 4-20): 100 x 10^5 made in 3209 s (niced), 14664 MB
# of export stream (1537 B/attempt), 15034 MB of journal files in 400 files (1576 B/attempt). journalctl
# -o export: 1 host (10^5 entries, 4 files) 3.6 s, peak RSS 193 MB; 10 hosts (10^6, 40 files) 133.8 s,
# 313 MB; 100 hosts (10^7, 400 files) about 4000 entries/s (798 MB of export in its first 120 s), i.e.
# about 40 minutes for the whole set: journalctl's merge of the files costs more per entry the more
# files there are. The full 100-host run is therefore long; -n 10 or -m 10000 are practical.
#
# Prints one line per step: the size of the export streams and of the journal files, the time to make
# them, then `journalctl -D DIR/remote -o export > /dev/null` (twice: cold-ish, then with the files in the
# page cache), wall seconds and peak RSS, and whatever the hook measures.
set -euo pipefail

HOSTS=100 ATTEMPTS=100000 DIR="" BUILD=${BUILDDIR:-build} JOBS=$(nproc) SEED=1 KEEP=0
while [ $# -gt 0 ]; do
        case $1 in
        -n) HOSTS=$2; shift 2 ;;
        -m) ATTEMPTS=$2; shift 2 ;;
        -o) DIR=$2; shift 2 ;;
        -B) BUILD=$2; shift 2 ;;
        -j) JOBS=$2; shift 2 ;;
        -s) SEED=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '3,30s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "fleet-journal.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
        esac
done
for v in "$HOSTS" "$ATTEMPTS" "$JOBS" "$((SEED + 1))"; do
        [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || { echo "fleet-journal.sh: bad number $v" >&2; exit 2; }
done
DIR=${DIR:-/tmp/tlswatch-fleet-${HOSTS}x$ATTEMPTS}
GEN=$(readlink -f "$BUILD/bench/gen-journal-export" 2>/dev/null) || true
TLSREPORT=$(readlink -f "$BUILD/tools/tlsreport" 2>/dev/null) || true
REMOTE=/lib/systemd/systemd-journal-remote
[ -x "$GEN" ] || { echo "fleet-journal.sh: no $BUILD/bench/gen-journal-export (build first, or -B)" >&2; exit 1; }
[ -x "$REMOTE" ] || { echo "fleet-journal.sh: no $REMOTE (apt-get install systemd-journal-remote)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "fleet-journal.sh: no /usr/bin/time (apt-get install time)" >&2; exit 1; }

PARAMS="hosts=$HOSTS attempts=$ATTEMPTS seed=$SEED"
# only what this script makes in DIR is removed, never DIR's other contents
clean_dir() {
        rm -rf "${DIR:?}/remote" "$DIR/bytes" "$DIR/logs" "$DIR/params" "$DIR/time.out"
        rmdir "$DIR" 2>/dev/null || true
}
cleanup() { [ "$KEEP" = 1 ] || clean_dir; }
trap cleanup EXIT

# timed LABEL CMD...: runs CMD with its output to /dev/null, prints wall seconds and peak RSS; sets
# LAST_S and LAST_RSS_MB
timed() {
        local label=$1
        shift
        /usr/bin/time -f '%e %M' -o "$DIR/time.out" "$@" >/dev/null
        read -r LAST_S rss_kb <"$DIR/time.out"
        LAST_RSS_MB=$((rss_kb / 1024))
        printf '%-44s %8.2f s  peak RSS %6d MB\n' "$label:" "$LAST_S" "$LAST_RSS_MB"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

if [ "$KEEP" = 1 ] && [ "$(cat "$DIR/params" 2>/dev/null)" = "$PARAMS" ]; then
        echo "reusing $DIR/remote ($PARAMS)"
else
        clean_dir
        mkdir -p "$DIR/remote" "$DIR/bytes" "$DIR/logs"
        START=$(($(date +%s) - 86400))
        echo "making $HOSTS hosts x $ATTEMPTS attempts in $DIR/remote, $JOBS at a time"
        SECONDS=0
        t0=$(date +%s.%N)
        export GEN REMOTE DIR HOSTS ATTEMPTS SEED START
        # shellcheck disable=SC2016
        seq 1 "$HOSTS" | xargs -P "$JOBS" -I{} bash -c '
                set -o pipefail
                h=$(printf "host%04d" {})
                "$GEN" --hosts "$HOSTS" --host {} --attempts "$ATTEMPTS" --seed "$SEED" --start "$START" |
                        tee >(wc -c >"$DIR/bytes/$h") |
                        "$REMOTE" --split-mode=none -o "$DIR/remote/remote-$h.journal" - 2>"$DIR/logs/$h" ||
                        { echo "host {} failed:"; cat "$DIR/logs/$h"; exit 255; } >&2'
        t1=$(date +%s.%N)
        echo "$PARAMS" >"$DIR/params"
        stream=$(cat "$DIR"/bytes/host* | awk '{ s += $1 } END { printf "%.0f\n", s }')
        printf '%-44s %8.2f s\n' "generated and written" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
        printf '%-44s %8.1f MB (%d bytes per attempt)\n' "export streams" "$(awk -v s="$stream" 'BEGIN { print s / 1048576 }')" \
                "$((stream / (HOSTS * ATTEMPTS)))"
fi
files=$(find "$DIR/remote" -name '*.journal' | wc -l)
bytes=$(du -sb "$DIR/remote" | cut -f1)
printf '%-44s %8.1f MB in %d files (%d bytes per attempt)\n' "journal files" "$(awk -v s="$bytes" 'BEGIN { print s / 1048576 }')" \
        "$files" "$((bytes / (HOSTS * ATTEMPTS)))"

timed "journalctl -D -o export (first)" journalctl -D "$DIR/remote" -o export
timed "journalctl -D -o export" journalctl -D "$DIR/remote" -o export
JOURNALCTL_S=$LAST_S JOURNALCTL_RSS_MB=$LAST_RSS_MB
entries=$(journalctl -D "$DIR/remote" --header | awk '/^Entry objects:/ { s += $3 } END { printf "%.0f\n", s }')
echo "entries: $entries (want $((HOSTS * ATTEMPTS)))"

# --- HOOK wt-j2: tlsreport -D ---------------------------------------------------------------------
# tlsreport over the same files: summary (one pass over every attempt: the grouping and the fleet view)
# and sequences -o json (two passes: the client labels, then the sequences), each as a ratio to
# journalctl -o export; peak RSS is what the journal's mmapped windows and the held attempts take.
# Measured 2026-12-06 (2 cores, load 10-18 from other builds: compare CPU seconds, user+sys, rather than
# wall): 10 x 10^4: summary 0.57, clients 0.46, sequences -o json 0.50 of journalctl's CPU; 100 x 10^3:
# 0.57, 0.59, 0.60; 10 x 10^5 (40 files): summary 1.21 (wall 0.90), clients 1.08 (wall 0.75). Peak RSS
# within 3% of journalctl's (both the mmapped files); the heap (RssAnon) 0.8 MB, 5 MB at 10 x 10^5 (it
# follows the attempt rate x the 60 s settle window: 2 hosts x 10^4 in 1 day 448 KB, x 10^5 in 10 days
# 488 KB).
timed "tlsreport -D summary" "$TLSREPORT" --no-pager -D "$DIR/remote" summary
echo "tlsreport summary / journalctl: $(ratio "$LAST_S" "$JOURNALCTL_S") (target <= 1.5)"
timed "tlsreport -D sequences -o json" "$TLSREPORT" --no-pager -D "$DIR/remote" -o json sequences
echo "tlsreport sequences / journalctl: $(ratio "$LAST_S" "$JOURNALCTL_S") (target <= 1.5)"
timed "tlsreport -D clients" "$TLSREPORT" --no-pager -D "$DIR/remote" clients
echo "tlsreport clients / journalctl: $(ratio "$LAST_S" "$JOURNALCTL_S") (target <= 1.5)"
# --- end of HOOK -----------------------------------------------------------------------------------
[ "$entries" = $((HOSTS * ATTEMPTS)) ]

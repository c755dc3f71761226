#!/bin/bash
# SPDX-License-Identifier: MIT
# Soak run: a release tlswatchd of its own on 127.0.0.1 (its own state directory and database,
# --handshake-timeout 5) under a steady mix of real clients (~25 connections/s: curl and wget and
# Python requests successes, curl/openssl/Python ssl rejections with alert 48, stalled connections and
# partial ClientHellos held until the handshake timeout, plain HTTP on the TLS port, bursts of 50-200
# connections every 15 s) for DURATION seconds.
#
#   bench/soak.sh [-o OUTDIR] [-p PLOT.png] [-s SCALE] [DURATION] [BUILDDIR] [-- TLSWATCHD-OPTIONS...]
#   bench/soak.sh -r OUTDIR [BUILDDIR]      (only the figures and checks of an earlier run, from its files)
#
# DURATION: seconds of load (default 1800). BUILDDIR: default build-bench; build it in release mode:
#   meson setup build-bench -Dbuildtype=release && ninja -C build-bench
# -o: where the samples, the clients' logs, the daemon's log and database go (default: a new
#     directory under /tmp, printed at the end). -p: also plot RSS, fds, open connections and the
#     store's write queue over time (needs python3-matplotlib). -s: multiply every client's rate.
#
# Every 10 s it samples the daemon's RSS, open fds, open connections and write-queue depth (from the
# daemon's sd_notify STATUS= line, received on a NOTIFY_SOCKET of its own), the rows in the database
# and the connections the clients made into OUTDIR/samples.csv. Each client kind has its own source
# address (127.0.0.1-13, loopback needs no set-up) and logs its source port and what it saw into
# OUTDIR/clients/KIND.log. At the end it stops the daemon and prints RSS/fds/queue figures and their
# drift (last 10 min vs first 10 min), connections vs rows per kind (matched by source port where the
# client tells it; each row's outcome checked against what its client saw) and tlsreport's counts per
# kind vs the database's and the clients' own. Exit 1 on any mismatch, on fds not back to their idle
# count, or (runs of 20 min or more) on RSS still growing by more than 5 % over the last 10 min.
# Needs: python3, python3-requests, curl, wget, openssl; -p also python3-matplotlib
# (scripts/setup-debian.sh test). PYTHON=... picks the interpreter.
# It runs niced: the clients and the daemon share the machine with whatever else runs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out='' plot='' reanalyze='' scale=1 duration=1800 builddir='' extra=()
while [ $# -gt 0 ]; do
        case $1 in
        -o) out=$2; shift 2 ;;
        -p) plot=$2; shift 2 ;;
        -s) scale=$2; shift 2 ;;
        -r) reanalyze=$2; shift 2 ;;
        -h | --help) sed -n '3,29p' "$0"; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        -*) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
                if [[ $1 =~ ^[0-9]+$ ]] && [ -z "$builddir" ]; then duration=$1; else builddir=$1; fi
                shift
                ;;
        esac
done
builddir=${builddir:-build-bench}
tlswatchd=$builddir/daemon/tlswatchd
tlsreport=$builddir/tools/tlsreport
if [ ! -x "$tlswatchd" ] || [ ! -x "$tlsreport" ]; then
        echo "soak.sh: no $tlswatchd or $tlsreport: build first (see --help)" >&2
        exit 2
fi
if ! meson introspect "$builddir" --buildoptions 2>/dev/null | grep -q '"name": "buildtype", "value": "release"'; then
        echo "soak.sh: warning: $builddir does not look like a release build" >&2
fi
args=("$duration" --tlswatchd "$tlswatchd" --tlsreport "$tlsreport" --scale "$scale")
[ -n "$out" ] && args+=(--out "$out")
[ -n "$plot" ] && args+=(--plot "$plot")
[ -n "$reanalyze" ] && args+=(--reanalyze "$reanalyze")
[ ${#extra[@]} -gt 0 ] && args+=(-- "${extra[@]}")
python=${PYTHON:-python3}
# The plot needs matplotlib: Debian's python3-matplotlib is /usr/bin/python3's, maybe not the python3 in PATH.
if [ -n "$plot" ] && ! "$python" -c 'import matplotlib' 2>/dev/null && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
        python=/usr/bin/python3
fi
exec nice -n 10 "$python" "$here/soak.py" "${args[@]}"

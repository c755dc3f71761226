#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tlsreport -f's cost (issue 14): its CPU while nothing happens, against a 1 s polling loop (the sqlite3 CLI
asking for new rows each second) measured over the same seconds; then under a steady load of real
handshakes (bench/loadgen: full handshake + GET /, at RATE per second) its CPU against the daemon's, and its
lag: the time from an attempt's ended_us to its line on tlsreport's stdout (the reader here notes when the
line arrives).

    bench/follow.py BUILDDIR [IDLE_SECONDS [LOAD_SECONDS [RATE]]]     (defaults: 30 30 300)

The daemon runs with --journal none on 127.0.0.1. The daemon records a connection when it ends and commits
at least every 200 ms (store.h): most of the lag is that commit interval, which is printed beside it."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

TICK = os.sysconf('SC_CLK_TCK')


def cpu(pid):
    """user + system CPU seconds of a running process."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wakeups(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('voluntary_ctxt_switches'):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit('the daemon did not listen')


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float('nan')


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    idle_s = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    load_s = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    rate = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    tlswatchd, tlsreport = f'{build}/daemon/tlswatchd', f'{build}/tools/tlsreport'
    loadgen = f'{build}/bench/loadgen'
    for p in (tlswatchd, tlsreport, loadgen):
        if not os.access(p, os.X_OK):
            sys.exit(f'{p} is not built')
    if not shutil.which('sqlite3'):
        sys.exit('sqlite3 (the CLI) is needed for the polling baseline')

    state = tempfile.mkdtemp(prefix='tlswatch-bench-follow-')
    db = os.path.join(state, 'tlswatch.db')
    port = free_port()
    procs = []
    try:
        d = subprocess.Popen([tlswatchd, '--state-directory', state, '--listen', f'127.0.0.1:{port}',
                              '--journal', 'none'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(d)
        wait_port(port)
        time.sleep(0.5)
        f = subprocess.Popen([tlsreport, '-f', '--database', db, '-o', 'json'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        procs.append(f)
        lines = []

        def reader():
            for raw in iter(f.stdout.readline, b''):
                lines.append((time.time(), raw))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(1.0)  # its start: the backlog read

        # idle: tlsreport -f and the polling loop over the same seconds
        poll_loop = ('last=0; while sleep 1; do n=$(sqlite3 -readonly "$0" '
                     '"SELECT COALESCE(MAX(id), 0) FROM attempts"); '
                     'if [ "$n" != "$last" ]; then sqlite3 -readonly "$0" '
                     '"SELECT * FROM attempts WHERE id > $last" >/dev/null; last=$n; fi; done')
        c0, w0 = cpu(f.pid), wakeups(f.pid)
        b = subprocess.Popen(['timeout', str(idle_s), 'bash', '-c', poll_loop, db])
        _, _, ru = os.wait4(b.pid, 0)
        b.returncode = 0
        c1, w1 = cpu(f.pid), wakeups(f.pid)
        base = ru.ru_utime + ru.ru_stime
        print(f'idle {idle_s:.0f} s: tlsreport -f CPU {c1 - c0:.3f} s, {w1 - w0} wakeups; '
              f'1 s polling loop (sqlite3 CLI) CPU {base:.3f} s; '
              f'ratio {((c1 - c0) / base) if base > 0 else float("nan"):.3f}')

        # load: loadgen at RATE handshakes/s, each a full handshake + GET /
        n0 = len(lines)
        t_start = time.time()
        c0, dc0 = cpu(f.pid), cpu(d.pid)
        lg = subprocess.run([loadgen, '--connect', f'127.0.0.1:{port}', '--clients', '4', '--seconds',
                             str(load_s), '--rate', str(rate), '--request', '/'],
                            capture_output=True, text=True)
        time.sleep(1.0)  # the last commit and its lines
        c1, dc1 = cpu(f.pid), cpu(d.pid)
        t_end = time.time()
        got = lines[n0:]
        lag, n_att = [], 0
        for when, raw in got:
            o = json.loads(raw)
            if o.get('type') != 'attempt' or not o.get('ended_us'):
                continue
            n_att += 1
            if o['started_us'] / 1e6 >= t_start:
                lag.append(when - o['ended_us'] / 1e6)
        print(f'load: loadgen {rate}/s for {load_s:.0f} s: {n_att} attempt lines '
              f'({n_att / (t_end - t_start):.0f}/s); loadgen: {lg.stdout.strip().splitlines()[-1:]}')
        fc, dc = c1 - c0, dc1 - dc0
        print(f'load: tlsreport -f CPU {fc:.2f} s, tlswatchd CPU {dc:.2f} s: ratio {fc / dc if dc else 0:.3f}; '
              f'per attempt line {1e6 * fc / max(n_att, 1):.0f} us')
        print(f'load: lag ended_us -> line (ms): median {1e3 * pct(lag, 50):.0f}, p95 {1e3 * pct(lag, 95):.0f}, '
              f'max {1e3 * max(lag or [float("nan")]):.0f} (the daemon commits at least every 200 ms)')
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""The sd_notify protocol as systemd would see it, through our own NOTIFY_SOCKET: READY=1 once serving,
STATUS= with live counters, WATCHDOG=1 when WATCHDOG_USEC is set, RELOADING=1 then READY=1 on SIGHUP,
STOPPING=1 on SIGTERM."""
import os
import re
import signal
import socket
import tempfile
import time

from twlib import Daemon, curl, done, eq, ok

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'notify')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    msgs = []

    def collect(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msgs.append(sock.recv(4096).decode())
            except socket.timeout:
                pass

    def wait_for(pred, seconds=10):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if any(pred(m) for m in msgs):
                return True
            collect(0.2)
        return False

    env = {'NOTIFY_SOCKET': path, 'WATCHDOG_USEC': '1000000'}
    d = Daemon('--journal', 'none', v6=False, env=env)
    # WATCHDOG_PID must be the daemon's pid, which we only know after the start: sd-event also accepts
    # WATCHDOG_USEC without WATCHDOG_PID.
    with d:
        ok(wait_for(lambda m: 'READY=1' in m), 'READY=1 after start')
        ready = next(m for m in msgs if 'READY=1' in m)
        ok('STATUS=' in ready, 'READY=1 comes with a STATUS=', ready)
        ok(wait_for(lambda m: 'WATCHDOG=1' in m, 3), 'WATCHDOG=1 with WATCHDOG_USEC set')
        for _ in range(3):
            curl('-k', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
        curl('-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
        msgs.clear()
        def counts(m):
            x = re.search(r'(\d+) ok, (\d+) failed', m)
            # 3 ok; 1 failed, plus the start-up probe (connect and close) if it came after READY=1
            return x is not None and int(x.group(1)) == 3 and int(x.group(2)) in (1, 2)
        ok(wait_for(counts, 6), 'STATUS= counts the attempts (3 ok, 1 failed)', msgs[-3:])
        status = [m for m in msgs if 'STATUS=' in m][-1]
        ok('database' in status, 'STATUS= includes the database writer state', status)
        msgs.clear()
        d.proc.send_signal(signal.SIGHUP)
        ok(wait_for(lambda m: 'RELOADING=1' in m), 'SIGHUP: RELOADING=1')
        ok(wait_for(lambda m: 'READY=1' in m), 'SIGHUP: then READY=1')
        reloading = [m for m in msgs if 'RELOADING=1' in m][0]
        ok('MONOTONIC_USEC=' in reloading, 'RELOADING=1 carries MONOTONIC_USEC', reloading)
        msgs.clear()
        d.proc.send_signal(signal.SIGTERM)
        ok(wait_for(lambda m: 'STOPPING=1' in m), 'SIGTERM: STOPPING=1')
        eq(d.proc.wait(15), 0, 'exit 0')
done()

#!/usr/bin/env python3
"""The watchdog covers the workers, not only the main loop: one worker thread is really stopped (ptrace
stops that one thread, the others run on), and through our own NOTIFY_SOCKET, as systemd would, we see the
WATCHDOG=1 pings stop while the daemon logs an error naming the stalled worker; the other worker still
serves; once the thread runs again, the pings come back."""
import ctypes
import os
import socket
import tempfile
import time

from twlib import Daemon, done, ok, tls_get, wait_for

PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def thread_id(pid, name):
    for t in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{t}/comm') as f:
            if f.read().strip() == name:
                return int(t)
    return None


def stop_thread(tid):
    """Stops one thread (not its process): PTRACE_SEIZE, then PTRACE_INTERRUPT, and wait for the stop."""
    if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0 or libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
        return os.strerror(ctypes.get_errno())
    os.waitpid(tid, WALL)
    return None


with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'notify')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)

    def pings(seconds):
        """The WATCHDOG=1 messages received within the next `seconds`."""
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                n += sock.recv(4096).decode().count('WATCHDOG=1')
            except socket.timeout:
                pass
        return n

    # WatchdogSec=2s: the daemon pings every 2/3 s and calls a worker stalled after 1 s
    env = {'NOTIFY_SOCKET': path, 'WATCHDOG_USEC': '2000000'}
    with Daemon('--journal', 'none', '--threads', '2', v6=False, env=env) as d:
        ok(wait_for(lambda: thread_id(d.proc.pid, 'tlsw-worker1') is not None), 'worker 1 runs')
        ok(pings(2.5) >= 2, 'WATCHDOG=1 pings while every worker runs')
        ok('has not turned' not in d.output(), 'no worker is said to be stalled while they all run', d.output())

        tid = thread_id(d.proc.pid, 'tlsw-worker1')
        err = stop_thread(tid)
        ok(err is None, f'worker 1 (thread {tid}) stopped with ptrace', err)
        try:
            ok(wait_for(lambda: 'Worker 1 (thread tlsw-worker1) has not turned its event loop' in d.output(), 5),
               'the daemon logs an error naming the stalled worker', d.output()[-800:])
            ok('systemd restarts the service' in d.output(), 'and says that it stops pinging the watchdog')
            pings(0.3)  # a ping that was on its way
            ok(pings(2.5) == 0, 'no WATCHDOG=1 while a worker is stalled (systemd would restart the service)')
            st = tls_get(d.port, '/api/self')[0]
            ok(st == 200, 'the other worker still serves')
        finally:
            libc.ptrace(PTRACE_DETACH, tid, None, None)
        ok(pings(2.5) >= 2, 'WATCHDOG=1 pings again once the worker runs again')
        ok('Every worker turns its event loop again' in d.output(), 'and the daemon says so', d.output()[-800:])
done()

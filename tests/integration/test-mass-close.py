#!/usr/bin/env python3
"""Closing many held handshakes at once costs tlswatchd CPU in proportion to their number, not to its
square. Watched level-triggered, every connection whose client had closed stayed readable until tlswatchd
got to it, and sd-event polls every ready fd again before each single dispatch: N clients closing together
cost N x N polls in the kernel (8,000 took 5-20 s of CPU). Here N = 1,000 and then N = 5,000 clients,
each from its own source address in 127.3.0.0/16, send the first 60 bytes of a ClientHello, are held, then
all close at once; tlswatchd's CPU time (utime + stime) per closed connection must not grow by more than
2.5x from the small burst to the large one (quadratic: 5x), and it must close them all."""
import os
import resource
import socket
import ssl
import subprocess
import time

from twlib import Daemon, diag, done, insecure_context, ok

SMALL, LARGE = 1000, 5000

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < LARGE + 200:
    print(f'1..0 # SKIP RLIMIT_NOFILE hard limit {hard} < {LARGE + 200}')
    raise SystemExit(0)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # tlswatchd inherits it

bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
hello = insecure_context().wrap_bio(bio_in, bio_out, server_hostname='localhost')
try:
    hello.do_handshake()
except ssl.SSLWantReadError:
    pass
partial = bio_out.read()[:60]
tick = os.sysconf('SC_CLK_TCK')


def cpu_s(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def sockets(pid):
    n = 0
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            n += os.readlink(f'/proc/{pid}/fd/{fd}').startswith('socket:')
        except OSError:
            pass
    return n


def wait_sockets(pid, pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred(sockets(pid)):
            return True
        time.sleep(0.05)
    return False


def burst(d, n):
    """Opens n held handshakes, closes them at once; returns tlswatchd's CPU seconds for the close."""
    pid = d.proc.pid
    base = sockets(pid)
    held = []
    for i in range(n):
        s = socket.socket()
        s.bind((f'127.3.{i // 250}.{1 + i % 250}', 0))
        s.connect(('127.0.0.1', d.port))
        s.send(partial)
        held.append(s)
    ok(wait_sockets(pid, lambda k: k >= base + n, 60), f'{n}: tlswatchd holds them all')
    time.sleep(0.5)
    c0 = cpu_s(pid)
    for s in held:
        s.close()
    closed = wait_sockets(pid, lambda k: k <= base, 120)
    time.sleep(0.3)
    cpu = cpu_s(pid) - c0
    ok(closed, f'{n}: tlswatchd closed them all')
    diag(f'{n} connections: {cpu:.2f} s CPU, {cpu / n * 1e6:.0f} us each')
    return cpu


with Daemon('--no-record', '--handshake-timeout', '600', '--max-connections', str(LARGE + 100),
            '--max-connections-per-client', '0', v6=False) as d:
    d.wait_ready()
    time.sleep(2.5)  # the probe's lingering close
    small = burst(d, SMALL)
    large = burst(d, LARGE)
    per_small, per_large = max(small, 2 / tick) / SMALL, large / LARGE
    ok(per_large <= 2.5 * per_small,
       f'CPU per connection, {LARGE} vs {SMALL} closing at once: {per_large / per_small:.1f}x (at most 2.5x)')

# A handshake open for over a second waits behind newer connections (so that a burst of old ones does not
# delay new visitors), but it must not starve: 16 `openssl s_time` loops keep the one worker busy with new
# handshakes, and a client that connects, waits 1.5 s, then sends its ClientHello (the handshake timeout is
# 5 s; the load lasts 7 s, so a starved handshake would time out under it) must still get its page, not a
# timeout row (with a 3 s timeout it got its page 3.1-3.5 s after connecting under load: too close). The slow client connects from 127.0.0.2: s_time's many
# connections from 127.0.0.1 reuse its source port once it has closed, and their rows must not be taken for its.
with Daemon('--journal', 'none', '--threads', '1', '--handshake-timeout', '5', v6=False) as d:
    d.wait_ready()
    load = [subprocess.Popen(['openssl', 's_time', '-connect', f'127.0.0.1:{d.port}', '-new', '-time', '7'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(16)]
    time.sleep(1)
    slow = []
    try:
        for _ in range(2):
            raw = socket.create_connection(('127.0.0.1', d.port), source_address=('127.0.0.2', 0))
            port = raw.getsockname()[1]
            time.sleep(1.5)
            t0 = time.monotonic()
            try:
                with insecure_context().wrap_socket(raw, server_hostname='localhost') as t:
                    t.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
                    got = t.recv(12)
            except (OSError, ssl.SSLError) as e:
                got = repr(e).encode()
            slow.append((port, got, time.monotonic() - t0))
    finally:
        for p in load:
            p.wait()
    for port, got, secs in slow:
        ok(got.startswith(b'HTTP/1.1 200'), f'a slow client under load gets its page ({secs:.2f} s)', got)
        rows = d.rows("peer_addr = '127.0.0.2' AND peer_port = ?", (port,), count=1)
        ok([r['outcome'] for r in rows] == ['ok'], 'and its row says ok, not timeout', rows)
done()

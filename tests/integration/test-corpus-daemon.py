#!/usr/bin/env python3
"""The external ClientHello corpus (tests/fixtures/clienthello) sent to the running
daemon as raw bytes over TCP, once in one write and once in small writes (separate TCP segments); each
connection's stored row must carry the published JA3/JA4 values."""
import csv
import os
import socket
import sys
import time

from twlib import Daemon, done, eq, ok

corpus = sys.argv[1]
ok(os.path.isfile(os.path.join(corpus, 'vectors.tsv')), f'corpus found at {corpus}')
with open(os.path.join(corpus, 'vectors.tsv')) as f:
    vectors = list(csv.DictReader(f, delimiter='\t'))
ok(len(vectors) >= 90, f'{len(vectors)} vectors')
FIELDS = ('ja3', 'ja3_full', 'ja4', 'ja4_r', 'ja4_o', 'ja4_ro')


def now_us():
    return time.time_ns() // 1000


def send(port, data, chunk):
    """Returns our port and the time span of the connection: a port can be reused by a later connection
    (a connection we reset leaves no TIME_WAIT), so a row is matched by both."""
    t0 = now_us()
    s = socket.create_connection(('127.0.0.1', port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if chunk:
        for i in range(0, len(data), chunk):
            s.sendall(data[i:i + chunk])
            time.sleep(0.001)
    else:
        s.sendall(data)
    local_port = s.getsockname()[1]
    s.settimeout(2)
    try:
        s.recv(65536)  # the server's answer (flight or alert), then we hang up
    except OSError:
        pass
    s.close()
    return local_port, t0, now_us()


with Daemon('--journal', 'none', v6=False) as d:
    sent = []
    for v in vectors:
        with open(os.path.join(corpus, v['name'] + '.hex')) as f:
            data = bytes.fromhex(f.read().strip())
        for chunk in (None, 7):
            sent.append((v, chunk, send(d.port, data, chunk)))
    d.settle()
    rows = d.rows()
    mismatches = []
    matched = set()
    for v, chunk, (port, t0, t1) in sent:
        found = [r for r in rows if r['peer_port'] == port and t0 <= r['started_us'] <= t1]
        how = 'one write' if chunk is None else f'{chunk}-byte writes'
        if len(found) != 1:
            mismatches.append(f'{v["name"]} ({how}): {len(found)} rows')
            continue
        r = found[0]
        matched.add(r['id'])
        for k in FIELDS:
            if r[k] != v[k]:
                mismatches.append(f'{v["name"]} ({how}): {k} = {r[k]!r}, published {v[k]!r}')
        if r['state_reached'] == 'connected':
            mismatches.append(f'{v["name"]} ({how}): state_reached connected, the hello was not seen')
    eq(mismatches, [], f'{len(sent)} connections: every stored row has the published fingerprints')
    eq(len(matched), len(sent), 'one row per connection')
done()

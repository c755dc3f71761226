#!/usr/bin/env python3
"""tlswatchd --backend-protocol http: whose idleness ends a forwarded request, and what tlsreport makes of
it. With --backend-client-idle-timeout 1 and --backend-idle-timeout 3, in front of httpbackend.py, at the same
time: a client that waits 2 s for a slow answer is not idle (it gets its answer, the row is clean); an
answer slower than the backend's limit is a 504 and the backend's fault (backend_error); a client that stalls
its upload, or stops reading a large answer, is cut after its own limit and recorded as its fault
(bad_request), not as a clean connection; a client idle between requests is a clean end. Then the backend
stopped: a request gets a 502 (backend_error), but a connection opened meanwhile (a browser's preconnect)
whose request comes once the backend is back is served and clean, and one that asks nothing records
nothing against the backend. A backend that closes an idle kept-alive connection with a 408 (RFC 9110
15.5.9, as some servers do) is dropped quietly: the client's next request is served on a new one, nothing
is recorded; bytes after an answer that are not a 408 (a Content-Length too short) are still the
backend's fault."""
import json
import socket
import ssl
import subprocess
import threading
import time

from httpbackend import HttpBackend
from twlib import TLSREPORT, Daemon, diag, done, eq, insecure_context, ok


def read_all(s, timeout):
    s.settimeout(timeout)
    out = b''
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (OSError, ssl.SSLError):
        return out


results = {}


def client(name, request, read_timeout, rcvbuf=None, sleep_before_read=0.0):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(20)
    raw.connect(('127.0.0.1', d.port))
    s = insecure_context().wrap_socket(raw, server_hostname='localhost')
    port = s.getsockname()[1]
    s.sendall(request)
    time.sleep(sleep_before_read)
    results[name] = (port, read_all(s, read_timeout))
    s.close()


def tls_connect(port):
    raw = socket.create_connection(('127.0.0.1', port), timeout=20)
    return insecure_context().wrap_socket(raw, server_hostname='localhost')


def get(path, ua):
    return f'GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {ua}\r\n\r\n'.encode()


b = HttpBackend()
with Daemon('--backend', b.addr, '--backend-protocol', 'http', '--journal', 'none',
            '--backend-client-idle-timeout', '1', '--backend-idle-timeout', '3', '--idle-timeout', '2') as d:
    d.settle()
    runs = [
        ('waits', get('/slow/2', 'waits'), 6),
        ('too slow', get('/slow/5', 'too-slow'), 8),
        ('stalled upload', b'POST /upload HTTP/1.1\r\nHost: localhost\r\nUser-Agent: stalls\r\n'
                           b'Content-Length: 100000\r\n\r\n' + b'a' * 1000, 6),
        ('kept alive', get('/hello', 'kept-alive'), 5),
    ]
    threads = [threading.Thread(target=client, args=r) for r in runs]
    # a reader that takes nothing: 32 MB fill every buffer on the way, then it reads after 3 s
    threads.append(threading.Thread(target=client, args=('no reader', get('/bytes/33554432', 'no-reader'), 1),
                                    kwargs={'rcvbuf': 4096, 'sleep_before_read': 3}))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    rows = {}
    for name, (port, _) in results.items():
        got = d.rows('peer_port = ?', (port,), count=1)
        rows[name] = got[-1] if got else {}

    answer = results['waits'][1]
    ok(answer.startswith(b'HTTP/1.1 200'),
       'a client waiting 2 s for a slow answer gets it (it is not idle: the backend is)', answer[:200])
    eq(rows['waits'].get('backend_error'), None, 'waits: nothing noted')
    ok(results['too slow'][1].startswith(b'HTTP/1.1 504'), 'an answer slower than --backend-idle-timeout: 504',
       results['too slow'][1][:200])
    eq(rows['too slow'].get('backend_error'), 'the backend sent nothing for 3 s', 'too slow: the backend noted')
    eq(rows['stalled upload'].get('backend_error'), "the client sent nothing of a request's body for 1 s",
       'a stalled upload: noted as the client stalling')
    eq(rows['no reader'].get('backend_error'), 'the client read nothing of its answer for 1 s',
       'a client that reads nothing: noted')
    ok(results['kept alive'][1].startswith(b'HTTP/1.1 200'), 'kept alive: answered')
    eq((rows['kept alive'].get('backend_error'), rows['kept alive'].get('close_kind')), (None, 'idle_timeout'),
       'kept alive then idle: a clean end by our idle limit')

    seqs = [json.loads(line) for line in subprocess.run(
        [TLSREPORT, '--database', d.db, '--since', 'today', '--no-pager', '--all', 'sequences', '-o', 'json'],
        stdout=subprocess.PIPE, check=True).stdout.splitlines()]
    by_id = {i: q for q in seqs for i in q['attempt_ids']}
    patterns = {name: by_id.get(row.get('id'), {}).get('pattern') for name, row in rows.items()}
    eq(patterns, {'waits': 'clean', 'too slow': 'backend_error', 'stalled upload': 'bad_request',
                  'no reader': 'bad_request', 'kept alive': 'clean'}, 'tlsreport: whose fault, each')
    diag(json.dumps(patterns))

    # ---- the backend stopped, then back: only a request that got the 502 says so ----
    b.close()
    early = tls_connect(d.port)  # tlswatchd connects to the backend as the handshake completes: refused
    idle = tls_connect(d.port)
    time.sleep(0.3)
    down = tls_connect(d.port)
    ports = {'early': early.getsockname()[1], 'idle': idle.getsockname()[1], 'down': down.getsockname()[1]}
    down.sendall(get('/hello', 'while-down'))
    answer = read_all(down, 5)
    ok(answer.startswith(b'HTTP/1.1 502'), 'backend stopped: 502', answer[:100])
    idle.close()
    b2 = HttpBackend(port=b.port)
    early.sendall(get('/hello', 'preconnected'))
    answer = read_all(early, 3)
    ok(answer.startswith(b'HTTP/1.1 200'),
       'a connection opened while it was down, its request once it is back: served', answer[:100])
    early.close()
    rows = {n: (d.rows('peer_port = ?', (p,), count=1) or [{}])[-1] for n, p in ports.items()}
    eq(rows['down'].get('backend_error'), f'connect to {b.addr}: Connection refused', 'the 502: noted')
    eq(rows['early'].get('backend_error'), None, 'the preconnected one, served: nothing noted')
    eq(rows['idle'].get('backend_error'), None, 'one that asked nothing: nothing noted')
    b2.close()


def idle_408_backend():
    """Answers each request; after '/then408' (and after '/extra', at once: bytes beyond its Content-Length),
    sends a 408 on the idle connection 0.3 s later and closes it."""
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(16)

    def serve(c):
        with c:
            buf = b''
            while True:
                while b'\r\n\r\n' not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b'\r\n\r\n')
                target = head.split(b' ')[1]
                if target == b'/extra':
                    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef')
                    continue
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n')
                if target == b'/then408':
                    time.sleep(0.3)
                    c.sendall(b'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
                    return

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return srv


srv = idle_408_backend()
with Daemon('--backend', '127.0.0.1:%d' % srv.getsockname()[1], '--backend-protocol', 'http', '--journal', 'none') as d:
    d.settle()
    s = tls_connect(d.port)
    port = s.getsockname()[1]
    s.sendall(get('/then408', 'idle-408'))
    s.settimeout(5)
    first = s.recv(65536)
    time.sleep(0.8)  # the backend's 408 came and it closed
    s.sendall(get('/hello', 'idle-408'))
    second = s.recv(65536)
    s.close()
    ok(first.endswith(b'hello\n') and second.startswith(b'HTTP/1.1 200') and second.endswith(b'hello\n'),
       "a backend's 408 on an idle kept-alive connection: the client's next request is served", (first, second))
    eq(d.rows('peer_port = ?', (port,), count=1)[-1].get('backend_error'), None, 'and nothing is recorded')
    s = tls_connect(d.port)
    port = s.getsockname()[1]
    s.sendall(get('/extra', 'extra'))
    read_all(s, 3)
    eq(d.rows('peer_port = ?', (port,), count=1)[-1].get('backend_error'),
       'the backend sent bytes that answer no request', 'bytes beyond an answer, not a 408: noted')
srv.close()
done()

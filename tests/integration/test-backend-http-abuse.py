#!/usr/bin/env python3
"""tlswatchd --backend-protocol http (issue 18) as a hostile client and a demanding admin find it. In front
of a real Python WSGI application (the standard library's wsgiref, which turns each field into a CGI
variable, '-' and '_' alike, and joins duplicates with commas): the client's TLS_Client_JA4 or
X_Forwarded_For, spelt with underscores, must not reach the application as HTTP_TLS_CLIENT_JA4 or
HTTP_X_FORWARDED_FOR. In front of httpbackend.py: a forged TLS-* or X-Forwarded-For field in a chunked
body's trailer section is refused (400) and recorded; an absolute-form target for /.well-known/tlswatch/
is answered by tlswatchd, not forwarded; Upgrade: h2c (h2c smuggling) is refused. With the backend down: tlsreport attempts says why under the
attempt, in words. A backend closing a kept-alive connection just as the next request comes: a GET goes again on a new
connection, a POST does not. A request head sent a byte at a time (slowloris) gets --idle-timeout in all."""
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from httpbackend import HttpBackend
from twlib import TLSREPORT, Daemon, curl, diag, done, eq, insecure_context, now_us, ok


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def app(environ, start_response):
    """Answers with the HTTP_* variables it was given (what a WSGI application sees of the fields)."""
    body = json.dumps({k: v for k, v in environ.items() if k.startswith('HTTP_')}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def tls_connect(port):
    raw = socket.create_connection(('127.0.0.1', port), timeout=20)
    return insecure_context().wrap_socket(raw, server_hostname='localhost')


def exchange(port, data):
    """Sends data, reads until the close; returns (answer, local port)."""
    s = tls_connect(port)
    lport = s.getsockname()[1]
    s.sendall(data)
    out = b''
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out, lport


# ---- a WSGI application: the '_' spellings of our fields ----
wsgi = make_server('127.0.0.1', 0, app, handler_class=QuietHandler)
threading.Thread(target=wsgi.serve_forever, daemon=True).start()
with Daemon('--backend', f'127.0.0.1:{wsgi.server_port}', '--backend-protocol', 'http', '--journal', 'none') as d:
    d.settle()
    since = now_us()
    r = curl('-k', '-sS', '-w', '\n%{local_port}', '-H', 'TLS_Client_JA4: forged', '-H', 'tls_client_ja4_stable: forged',
             '-H', 'X_Forwarded_For: 6.6.6.6', '-H', 'X_Real_IP: 6.6.6.6', '-H', 'TLS_Prior_Failures: 0',
             '-H', 'X-Forwarded_Proto: http', f'https://127.0.0.1:{d.port}/app')
    body, _, lport = r.stdout.decode().rpartition('\n')
    env = json.loads(body or '{}')
    row = d.row_of(int(lport or 0), since)
    diag(f'the application saw: {env}')
    ok(all('forged' not in v and '6.6.6.6' not in v for v in env.values()), 'no forged value reached the application')
    eq((env.get('HTTP_TLS_CLIENT_JA4'), env.get('HTTP_TLS_CLIENT_JA4_STABLE')), (row.get('ja4'), row.get('ja4_stable')),
       'HTTP_TLS_CLIENT_JA4 and _STABLE: ours alone, as recorded')
    eq((env.get('HTTP_X_FORWARDED_FOR'), env.get('HTTP_X_FORWARDED_PROTO'), env.get('HTTP_X_REAL_IP')),
       ('127.0.0.1', 'https', None), 'HTTP_X_FORWARDED_FOR: the client\'s address alone; X_Real_IP removed')
    eq(env.get('HTTP_TLS_PRIOR_FAILURES'), '0', 'HTTP_TLS_PRIOR_FAILURES: ours alone')
wsgi.shutdown()
wsgi.server_close()

# ---- trailers, absolute-form, the backend down: httpbackend.py ----
b = HttpBackend()
with Daemon('--backend', b.addr, '--backend-protocol', 'http', '--journal', 'none') as d:
    d.settle()
    for name in ('TLS-Client-JA4', 'x_forwarded_for', 'Forwarded'):
        b.clear_raw()
        since = now_us()
        answer, lport = exchange(d.port, (f'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                                          f'3\r\nabc\r\n0\r\n{name}: 6.6.6.6\r\n\r\n').encode())
        ok(answer.startswith(b'HTTP/1.1 400 ') and b'Connection: close' in answer,
           f'a {name} trailer: refused with 400', answer[:300])
        ok(b'6.6.6.6' not in b.raw, f'a {name} trailer: not a byte of it at the backend', b.raw[-200:])
        be = d.row_of(lport, since).get('backend_error') or ''
        ok(be.startswith('request refused (400): a TLS-*, X-Forwarded-*'), f'a {name} trailer: recorded ({be})')
    answer, _ = exchange(d.port, b'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                                 b'Connection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n')
    ok(answer.startswith(b'HTTP/1.1 200 '), 'another trailer field: forwarded', answer[:300])

    before = len(b.targets())
    answer, _ = exchange(d.port, f'GET https://localhost:{d.port}/.well-known/tlswatch/api/self HTTP/1.1\r\n'
                                 f'Host: localhost\r\nConnection: close\r\n\r\n'.encode())
    body = answer.partition(b'\r\n\r\n')[2]
    ok(answer.startswith(b'HTTP/1.1 200 ') and b'"connection"' in body,
       'absolute-form https://.../.well-known/tlswatch/api/self: the self page\'s JSON', answer[:300])
    eq(b.targets()[before:], [], 'it did not reach the backend')

    # h2c smuggling: a backend that switched to HTTP/2 would read the client's frames, forged fields and all
    since = now_us()
    answer, lport = exchange(d.port, b'GET /h2c HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n'
                                     b'Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n'
                                     b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    ok(answer.startswith(b'HTTP/1.1 400 '), 'Upgrade: h2c: refused with 400', answer[:300])
    ok('/h2c' not in b.targets(), 'it did not reach the backend')
    eq(d.row_of(lport, since).get('backend_error'), 'request refused (400): Upgrade: h2c (HTTP/2 over cleartext, never over TLS)',
       'recorded')

    b.close()
    since = now_us()
    r = curl('-k', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{local_port}', f'https://127.0.0.1:{d.port}/x')
    code, lport = (r.stdout.decode().split() + ['', '0'])[:2]
    eq(code, '502', 'the backend down: 502')
    d.row_of(int(lport), since)
    rep = subprocess.run([TLSREPORT, '--database', d.db, '--no-pager', '--color=never', 'attempts'],
                         capture_output=True, timeout=30, env=dict(os.environ, COLUMNS='120'))
    out = rep.stdout.decode()
    diag(out)
    lines = out.splitlines()
    at = next((i for i, line in enumerate(lines) if f':{lport} ' in line), None)
    ok(at is not None and at + 1 < len(lines) and
       lines[at + 1].strip() == f'forwarding: connect to {b.addr}: Connection refused',
       'tlsreport attempts: why it was not served, under the attempt')
    ok(d.proc.poll() is None, 'tlswatchd kept running')

# ---- a backend that closes a kept-alive connection just as the next request comes (its keep-alive timeout
# racing the request): an idempotent request without a body goes again on a new connection, once ----
class OneShotBackend:
    """Answers the first request of each connection; closes it, unanswered, when a second one comes."""

    def __init__(self):
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.addr = f'127.0.0.1:{self.sock.getsockname()[1]}'
        self.conns, self.heads = 0, []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf, n = b'', 0
        with c:
            while True:
                while b'\r\n\r\n' not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b'\r\n\r\n')
                self.heads.append(head.split(b'\r\n')[0].decode())
                n += 1
                if n == 2:
                    return  # closed without a byte of answer
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n')


def read_answer(s):
    out = b''
    while b'\r\n\r\n' not in out or len(out.partition(b'\r\n\r\n')[2]) < int(
            dict(line.split(': ', 1) for line in out.partition(b'\r\n\r\n')[0].decode().split('\r\n')[1:]
                 if ': ' in line).get('Content-Length', '0')):
        d = s.recv(65536)
        if not d:
            break
        out += d
    return out


ob = OneShotBackend()
with Daemon('--backend', ob.addr, '--backend-protocol', 'http', '--journal', 'none') as d:
    d.settle()
    since = now_us()
    s = tls_connect(d.port)
    lport = s.getsockname()[1]
    answers = []
    for req in (b'GET /1 HTTP/1.1\r\nHost: x\r\n\r\n', b'GET /2 HTTP/1.1\r\nHost: x\r\n\r\n',
                b'POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'):
        s.sendall(req)
        answers.append(read_answer(s)[:12])
    s.close()
    eq(answers[:2], [b'HTTP/1.1 200', b'HTTP/1.1 200'],
       'GET on a kept-alive connection the backend closes unanswered: sent again on a new one, answered')
    eq(ob.heads[:4], ['GET /1 HTTP/1.1', 'GET /2 HTTP/1.1', 'GET /2 HTTP/1.1', 'POST /3 HTTP/1.1'],
       'the backend saw GET /2 twice (on two connections), POST /3 once')
    eq(answers[2], b'HTTP/1.1 502', 'a POST in the same case is not sent again: 502')
    eq(d.row_of(lport, since).get('backend_error'), 'the backend closed the connection before its answer', 'recorded')

# ---- a request head sent a byte at a time: --idle-timeout for the whole head, as for the self page ----
b = HttpBackend()
with Daemon('--backend', b.addr, '--backend-protocol', 'http', '--journal', 'none', '--idle-timeout', '2') as d:
    d.settle()
    since = now_us()
    s = tls_connect(d.port)
    lport = s.getsockname()[1]
    s.sendall(b'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
    first = s.recv(65536)
    s.setblocking(False)
    t0, closed = time.monotonic(), False
    for c in b'GET /slowloris HTTP/1.1\r\nHost: x\r\nX-Pad: ' + b'a' * 100:
        try:
            s.send(bytes([c]))
            closed = s.recv(100) == b''
        except ssl.SSLWantReadError:
            pass
        except OSError:
            closed = True
        if closed or time.monotonic() - t0 > 8:
            break
        time.sleep(0.2)
    secs = time.monotonic() - t0
    s.close()
    ok(first.startswith(b'HTTP/1.1 200 ') and closed and 1.5 < secs < 7,
       f'a head a byte every 0.2 s: closed after {secs:.1f} s (--idle-timeout 2)', first[:100])
    row = d.row_of(lport, since)
    eq((row.get('close_kind'), row.get('backend_error')), ('idle_timeout', 'the client sent no complete request head in 2 s'),
       'recorded: idle_timeout, and why')
    ok('/slowloris' not in b.targets(), 'nothing of it reached the backend')
b.close()

done()

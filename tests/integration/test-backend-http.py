#!/usr/bin/env python3
"""tlswatchd --backend-protocol http (issue 18) in front of a plain HTTP/1.1 backend of our own
(httpbackend.py), which logs every byte and request it received and echoes the header fields it saw. Real
clients (curl, Python's ssl): the headers tlswatchd adds against the attempt's row, the client's spoofed
copies removed; curl --http2 falls back to HTTP/1.1; keep-alive; chunked and close-delimited answers; HEAD;
100 MB each way with checksums (the upload with Expect: 100-continue; 16 MB chunked); a WebSocket echo after
Upgrade; the request-smuggling classics sent raw over TLS, each refused with 400, recorded, and never
reaching the backend; /.well-known/tlswatch/ answered locally; the backend too slow (504), stopped (502)
and started again; a slow reader on either side (tlswatchd's RSS stays flat)."""
import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from httpbackend import HttpBackend
from proxybackend import pattern
from twlib import TLSREPORT, TLSWATCHD, Daemon, curl, diag, done, eq, insecure_context, now_us, ok, run

MB = 1 << 20


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return -1


def tls_connect(port):
    raw = socket.create_connection(('127.0.0.1', port), timeout=20)
    return insecure_context().wrap_socket(raw, server_hostname='localhost')


def read_until_close(s):
    out = b''
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLError, OSError):
            return out
        if not chunk:
            return out
        out += chunk


def fields(answer):
    """The header fields the backend saw, from its /headers answer."""
    body = answer.partition(b'\r\n\r\n')[2] if answer.startswith(b'HTTP/') else answer
    try:
        return json.loads(body)['headers']
    except (ValueError, KeyError):
        return []


# usage: h2 cannot be offered with the http protocol
r = run([TLSWATCHD, '--no-record', '--listen', '127.0.0.1:1', '--backend', '127.0.0.1:80', '--backend-protocol',
         'http', '--backend-alpn', 'h2,http/1.1'], timeout=10)
ok(r.returncode != 0 and b'--backend-protocol http speaks HTTP/1.1' in r.stderr, 'http with --backend-alpn h2: refused',
   r.stderr)

b = HttpBackend()
with Daemon('--backend', b.addr, '--backend-protocol', 'http', '--journal', 'none') as d:
    d.settle()
    url = f'https://localhost:{d.port}'
    res = ['--resolve', f'localhost:{d.port}:127.0.0.1']

    # ---- the headers, against the row; the client's copies removed ----
    for _ in range(2):  # twice rejected (curl checks the certificate): 2 failures before the next attempt
        r = curl('-sS', '-o', '/dev/null', *res, f'{url}/hello')
        ok(r.returncode != 0, 'curl without -k fails', r.stderr)
    since = now_us()
    r = curl('-k', '-sS', *res, '-w', '\n%{local_port}', '-H', 'X-Forwarded-For: 6.6.6.6',
             '-H', 'TLS-Client-JA4: forged', '-H', 'tls-attempt-id: 999', '-H', 'TLS-Prior-Failures: 0',
             '-H', 'Forwarded: for=6.6.6.6', '-H', 'X-Real-IP: 6.6.6.6', '-H', 'X-Forwarded-Proto: http',
             '-A', 'tlswatch-test/1', f'{url}/headers')
    body, _, lport = r.stdout.decode().rpartition('\n')
    seen = fields(body.encode())
    row = d.row_of(int(lport or 0), since)
    diag(f'the backend saw: {seen}')
    names = [k.lower() for k, _ in seen]
    for n in ('forwarded', 'x-real-ip'):
        ok(n not in names, f'the client\'s {n} removed')
    got = {k: v for k, v in seen}
    eq([k for k in names if k.startswith('tls-') or k.startswith('x-forwarded-')],
       ['x-forwarded-for', 'x-forwarded-proto', 'tls-client-ja4', 'tls-client-ja4-stable', 'tls-attempt-id',
        'tls-prior-failures'], 'each of ours once, the client\'s copies removed')
    eq((got.get('X-Forwarded-For'), got.get('X-Forwarded-Proto')), ('127.0.0.1', 'https'),
       'X-Forwarded-For: the client\'s address; X-Forwarded-Proto: https')
    eq((got.get('TLS-Client-JA4'), got.get('TLS-Client-JA4-Stable')), (row.get('ja4'), row.get('ja4_stable')),
       'TLS-Client-JA4 and -Stable: as recorded')
    eq(got.get('TLS-Attempt-Id'), str(row.get('id')), 'TLS-Attempt-Id: the attempt\'s row id')
    eq(got.get('TLS-Prior-Failures'), '2', 'TLS-Prior-Failures: the 2 rejections before it')
    eq((row.get('outcome'), row.get('alpn'), row.get('http_requests'), row.get('user_agent'),
        row.get('backend_error')), ('ok', 'http/1.1', 1, 'tlswatch-test/1', None),
       'the row: ok, http/1.1, 1 request, its User-Agent, forwarded')

    # ---- curl --http2 falls back to HTTP/1.1; keep-alive; chunked, close-delimited; HEAD ----
    r = curl('-k', '-sS', '--http2', '-w', '%{http_version} %{num_connects}\n', f'{url}/hello', f'{url}/hello',
             *res)
    eq(r.stdout.decode(), 'hello from the backend\n1.1 1\nhello from the backend\n1.1 0\n',
       'curl --http2: HTTP/1.1 (only http/1.1 offered), two requests on one connection')
    r = curl('-k', '-sS', *res, f'{url}/chunked/300000', f'{url}/bytes/5', f'{url}/close/200000')
    ok(r.stdout == pattern(300000) + pattern(5) + pattern(200000), 'chunked, sized and close-delimited answers',
       r.stderr)
    r = curl('-k', '-sS', '-I', *res, f'{url}/bytes/1000', f'{url}/hello')
    ok(r.stdout.count(b'HTTP/1.1 200') == 2 and b'Content-Length: 1000' in r.stdout, 'HEAD: heads only, kept alive',
       r.stdout)

    # ---- /.well-known/tlswatch/ is ours ----
    before = len(b.targets())
    r = curl('-k', '-sS', *res, f'{url}/.well-known/tlswatch/')
    ok(b'<html' in r.stdout.lower(), 'GET /.well-known/tlswatch/: the self page', r.stdout[:200])
    r = curl('-k', '-sS', *res, f'{url}/.well-known/tlswatch/api/self')
    ok(json.loads(r.stdout or b'{}').get('connection', {}).get('outcome') == 'ok', '.../api/self: its JSON',
       r.stdout[:200])
    eq(b.targets()[before:], [], 'neither reached the backend')

    # ---- 100 MB each way, with checksums ----
    blob = os.urandom(MB) * 100
    with tempfile.NamedTemporaryFile() as up:
        up.write(blob)
        up.flush()
        t0 = time.monotonic()
        r = curl('-k', '-sS', *res, '--data-binary', f'@{up.name}', '-v', f'{url}/upload', timeout=60)
        secs = time.monotonic() - t0
        eq(r.stdout.decode(), hashlib.sha256(blob).hexdigest(), f'100 MB POST: same SHA-256 ({100 / secs:.0f} MB/s)')
        ok(b'100 Continue' in r.stderr, 'curl\'s Expect: 100-continue got the backend\'s 100 Continue')
    with tempfile.NamedTemporaryFile() as up:  # chunked: 16 MB is enough to cross every buffer many times
        up.write(blob[:16 * MB])
        up.flush()
        r = curl('-k', '-sS', *res, '-H', 'Transfer-Encoding: chunked', '--data-binary', f'@{up.name}',
                 f'{url}/upload', timeout=60)
        eq(r.stdout.decode(), hashlib.sha256(blob[:16 * MB]).hexdigest(), '16 MB chunked POST: same SHA-256')
    t0 = time.monotonic()
    r = curl('-k', '-sS', *res, f'{url}/bytes/{100 * MB}', timeout=60)
    secs = time.monotonic() - t0
    want = pattern(100 * MB)
    first = next((i for i in range(0, len(want), 4096) if r.stdout[i:i + 4096] != want[i:i + 4096]), None)
    ok(hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(want).hexdigest(),
       f'100 MB download: same SHA-256 ({100 / secs:.0f} MB/s)',
       f'{len(r.stdout)} bytes, first difference near {first}: {r.stderr[-300:]}')

    # ---- a WebSocket echo after Upgrade ----
    s = tls_connect(d.port)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
              f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
    head = b''
    while b'\r\n\r\n' not in head:
        head += s.recv(1)
    ok(head.startswith(b'HTTP/1.1 101'), 'Upgrade: websocket: 101 from the backend', head)
    msg, mask = b'hello through tlswatchd' * 20, os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | 126]) + len(msg).to_bytes(2, 'big') + mask +
              bytes(x ^ mask[i % 4] for i, x in enumerate(msg)))
    echo = b''
    while len(echo) < 4 + len(msg):
        echo += s.recv(65536)
    eq(echo[4:], msg, 'a WebSocket message echoed through the byte tunnel')
    s.close()

    # ---- the smuggling classics, raw over TLS: 400, recorded, never at the backend ----
    sm = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
    classics = {
        'CL.TE': f'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {5 + len(sm)}\r\nTransfer-Encoding: chunked\r\n\r\n'
                 f'0\r\n\r\n{sm}',
        'TE.CL': f'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n'
                 f'{len(sm) + 2:x}\r\n{sm}\r\n0\r\n\r\n',
        'duplicated Content-Length': f'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n'
                                     f'Content-Length: {len(sm)}\r\n\r\n{sm}',
        'malformed Content-Length': f'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +{len(sm)}\r\n\r\n{sm}',
        'Content-Length list': f'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {len(sm)}, 0\r\n\r\n{sm}',
        'obs-fold': f'POST /a HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nContent-Length: {len(sm)}\r\n\r\n{sm}',
        'bare LF': f'POST /a HTTP/1.1\nHost: x\nContent-Length: {len(sm)}\n\n{sm}',
        'space before colon': f'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{sm}',
        # not a framing the backend could disagree on but one we do not know: 501 (RFC 9112 6.1)
        'TE obfuscated': f'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{sm}',
    }
    time.sleep(0.5)
    b.clear_raw()
    refused_ids = []
    for name, payload in classics.items():
        want = 501 if name == 'TE obfuscated' else 400
        since = now_us()
        s = tls_connect(d.port)
        lport = s.getsockname()[1]
        s.sendall(payload.encode())
        answer = read_until_close(s)
        s.close()
        status = answer[:12].decode(errors='replace')
        ok(status == f'HTTP/1.1 {want}' and b'Connection: close' in answer,
           f'{name}: refused with {want} and closed', answer[:300])
        row = d.row_of(lport, since)
        be = row.get('backend_error') or ''
        ok(be.startswith(f'request refused ({want}): '), f'{name}: recorded ({be})')
        refused_ids.append(row.get('id'))
    raw = b.raw
    ok(b'smuggled' not in raw and '/smuggled' not in b.targets(), 'no smuggled byte reached the backend', raw[:300])
    eq(raw[:300], b'', 'nothing of the refused requests reached the backend')

    # ---- slow readers: tlswatchd's memory stays flat while TCP holds the other side back ----
    # (measured from after the handshake: what a connection costs is not the question, and under ASan,
    # whose quarantine keeps what is freed, its handshake alone adds some 1 MB of RSS)
    s = tls_connect(d.port)
    rss0 = rss_kib(d.proc.pid)
    s.sendall(f'GET /bytes/{300 * MB} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
    time.sleep(2)  # reads nothing
    rss1 = rss_kib(d.proc.pid)
    s.close()
    ok(rss1 - rss0 < 1024, f'a client that reads nothing of 300 MB: RSS {rss0} -> {rss1} KiB')
    s = tls_connect(d.port)
    rss0 = rss_kib(d.proc.pid)
    s.sendall(f'POST /slow/30 HTTP/1.1\r\nHost: x\r\nContent-Length: {64 * MB}\r\n\r\n'.encode())
    sent = [0]

    def pour():
        try:
            chunk = b'u' * 65536
            while sent[0] < 64 * MB:
                s.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass
    t = threading.Thread(target=pour, daemon=True)
    t.start()
    time.sleep(1.5)  # the backend reads nothing of the body
    rss1 = rss_kib(d.proc.pid)
    ok(rss1 - rss0 < 1024 and sent[0] < 32 * MB,
       f'a backend that reads nothing of a 64 MB upload: RSS {rss0} -> {rss1} KiB, {sent[0] // MB} MB sent')
    # shut down before closing: the pouring thread's sendall() fails now; a close under it would free the
    # descriptor's number for the next socket, which its late writes would then hit
    s.shutdown(socket.SHUT_RDWR)
    t.join(10)
    s.close()

    # ---- the backend stopped, then started again on its port ----
    b.close()
    since = now_us()
    r = curl('-k', '-sS', *res, '-w', '\n%{http_code} %{local_port}', f'{url}/hello')
    body, _, tail = r.stdout.decode().rpartition('\n')
    code, lport = (tail.split() + ['', '0'])[:2]
    eq(code, '502', 'backend down: 502')
    down = d.row_of(int(lport), since)
    eq(down.get('backend_error'), f'connect to {b.addr}: Connection refused', 'the row says why')

    # ---- tlsreport tells a clean handshake whose connection was not served from a clean one ----
    seqs = [json.loads(line) for line in subprocess.run(
        [TLSREPORT, '--database', d.db, '--since', 'yesterday', '--no-pager', 'sequences', '-o', 'json'],
        stdout=subprocess.PIPE, check=True).stdout.splitlines()]
    by_id = {i: q for q in seqs for i in q['attempt_ids']}
    q = by_id.get(down.get('id'), {})
    eq(q.get('pattern'), 'backend_error', 'the 502 is listed without --all, as backend_error')
    ok(f'forwarding to the backend failed (connect to {b.addr}: Connection refused)' in q.get('diagnosis', '')
       and '--backend' in q.get('diagnosis', ''), 'its diagnosis quotes the error and names --backend', q)
    eq(sorted({by_id.get(i, {}).get('pattern') for i in refused_ids}, key=str), ['bad_request'],
       'each refused smuggling attempt is listed as bad_request')
    eq([q['pattern'] for q in seqs if q['pattern'] == 'clean'], [], 'no clean sequence is listed without --all')
    summary = json.loads(subprocess.run(
        [TLSREPORT, '--database', d.db, '--since', 'yesterday', '--no-pager', 'summary', '-o', 'json'],
        stdout=subprocess.PIPE, check=True).stdout)
    eq(summary.get('forwarding_errors'), len(d.rows('backend_error IS NOT NULL')),
       'summary: forwarding_errors counts the rows with a backend_error')
    eq((summary.get('patterns', {}).get('backend_error'), summary.get('patterns', {}).get('bad_request')),
       (len(d.rows("backend_error IS NOT NULL AND backend_error NOT LIKE 'request refused (%' AND "
                   "backend_error NOT LIKE 'the client %'")),
        len(d.rows("backend_error LIKE 'request refused (%' OR backend_error LIKE 'the client %'"))),
       'summary: one sequence per such connection, by whose fault')
    b2 = HttpBackend(port=b.port)
    r = curl('-k', '-sS', *res, f'{url}/hello')
    eq(r.stdout, b'hello from the backend\n', 'the backend back on its port: served again')
    ok(d.proc.poll() is None, 'tlswatchd kept running')

# the backend too slow: 504 after --backend-idle-timeout (a daemon of its own: under a short limit, a busy
# machine's pauses would cut the 100 MB transfers above)
with Daemon('--backend', b2.addr, '--backend-protocol', 'http', '--journal', 'none',
            '--backend-idle-timeout', '2') as d:
    d.settle()
    t0, since = time.monotonic(), now_us()
    r = curl('-k', '-sS', '-w', '\n%{http_code} %{local_port}', f'https://127.0.0.1:{d.port}/slow/4')
    secs = time.monotonic() - t0
    body, _, tail = r.stdout.decode().rpartition('\n')
    code, lport = (tail.split() + ['', '0'])[:2]
    ok(code == '504' and 1.5 < secs < 3.5, f'a backend silent for 2 s: 504 after {secs:.1f} s', r.stdout)
    eq(d.row_of(int(lport), since).get('backend_error'), 'the backend sent nothing for 2 s', 'recorded')
b2.close()

done()

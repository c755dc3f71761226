#!/usr/bin/env python3
"""tlswatchd --backend (issue 18): after the handshake each connection is forwarded to a backend, preceded
by a PROXY protocol v2 header that our own backend (proxybackend.py) checks byte by byte: the client's
addresses and ports, the SSL TLV (version, cipher), SNI as authority, ALPN, tlswatch's TLVs (JA4, stable
JA4, the failures before this attempt in the client's sequence, as tlsreport counts them), against the
attempt's row. Real clients (curl, Python's ssl): keep-alive, IPv6, TLS 1.2, a unix socket backend, 100 MB
each way with checksums, half-closes both ways, the backend down, timing out and restarted, a slow reader
on either side (tlswatchd's RSS stays flat while TCP holds the other side back), and usage errors."""
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from proxybackend import Backend, pattern
from twlib import (TLSREPORT, TLSWATCHD, Daemon, curl, diag, done, eq, insecure_context, now_us, ok, run,
                   wait_for)

MB = 1 << 20


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return -1


def header_of(b, port):
    hs = [h for h in b.headers if h['src_port'] == port]
    return hs[-1] if hs else None


def tls_connect(port, host='127.0.0.1', sni='localhost', version=None):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(20)
    raw.connect((host, port))
    # ragged EOFs raise: a FIN without close_notify must show
    return insecure_context(version).wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)


def read_all(s):
    out = b''
    while True:
        try:
            chunk = s.recv(65536)
        except ssl.SSLEOFError:  # FIN without close_notify
            return out, False
        if not chunk:
            return out, True
        out += chunk


# ---- usage errors: clear messages, no start ----
for args, want in [(['--backend', 'localhost'], 'Invalid --backend "localhost"'),
                   (['--backend', 'no-such-host.invalid:80'], 'Cannot resolve --backend "no-such-host.invalid:80"'),
                   (['--backend', '127.0.0.256:80'], 'Invalid --backend'),
                   (['--backend', '[::1]8080'], 'Invalid --backend'),
                   (['--backend', '::1:8080'], 'Invalid --backend'),
                   (['--backend', '127.0.0.1:0'], 'Invalid --backend'),
                   (['--backend', '127.0.0.1:65536'], 'Invalid --backend'),
                   (['--backend', 'unix:relative.sock'], 'Invalid --backend'),
                   (['--backend', '127.0.0.1:80', '--backend-protocol', 'spdy'],
                    '--backend-protocol takes proxy-v2 or http, not "spdy"'),
                   (['--backend', '127.0.0.1:80', '--backend-alpn', 'h3'], '--backend-alpn takes'),
                   (['--backend', '127.0.0.1:80', '--backend-alpn', 'h2,h2'], '--backend-alpn takes'),
                   (['--backend-alpn', 'h2'], '--backend-alpn needs --backend'),
                   (['--backend', '127.0.0.1:80', '--backend-connect-timeout', '0'],
                    '--backend-connect-timeout takes seconds')]:
    try:
        r = run([TLSWATCHD, '--no-record', '--listen', '127.0.0.1:1'] + args, timeout=10)
        err = r.stderr.decode()
        ok(r.returncode != 0 and want in err and 'Serving' not in err, f'usage error: {" ".join(args)}', err)
    except subprocess.TimeoutExpired:
        ok(False, f'usage error: {" ".join(args)}', 'the daemon started')

b = Backend()
with Daemon('--backend', b.addr, '--journal', 'none', '--backend-idle-timeout', '4') as d:
    d.settle()

    # ---- the header, TLV by TLV, against the attempt's row ----
    # twice rejected (curl checks the certificate), then accepted: 2 failures before this attempt
    for _ in range(2):
        r = curl('-o', '/dev/null', '--resolve', f'localhost:{d.port}:127.0.0.1', f'https://localhost:{d.port}/')
        ok(r.returncode != 0, 'curl without -k fails', r.stderr)
    since = now_us()
    r = curl('-k', '-w', '\n%{local_port}', '--resolve', f'localhost:{d.port}:127.0.0.1',
             f'https://localhost:{d.port}/header')
    body, _, lport = r.stdout.decode().rpartition('\n')
    h = json.loads(body) if r.returncode == 0 and body else {}
    row = d.row_of(int(lport or 0), since)
    diag(f'header: {h}')
    eq(h.get('family'), 4, 'PROXY header: TCP over IPv4')
    eq((h.get('src'), h.get('src_port')), ('127.0.0.1', int(lport or 0)), 'source: the client address and port')
    eq((h.get('dst'), h.get('dst_port')), ('127.0.0.1', d.port), 'destination: our address and port')
    eq(h.get('authority'), 'localhost', 'PP2_TYPE_AUTHORITY: the SNI')
    eq(h.get('alpn'), 'http/1.1', 'PP2_TYPE_ALPN: the negotiated protocol')
    eq((h.get('ssl_client'), h.get('ssl_verify')), (1, 0), 'PP2_TYPE_SSL: client 0x01 (PP2_CLIENT_SSL), verify 0')
    eq(h.get('ssl_other'), None, 'PP2_TYPE_SSL: no other sub-TLV')
    eq((h.get('ssl_version'), h.get('ssl_cipher')), (row.get('version'), row.get('cipher')),
       'PP2_SUBTYPE_SSL_VERSION and _CIPHER: as recorded')
    eq(h.get('ssl_version'), 'TLSv1.3', 'curl negotiated TLS 1.3')
    eq((h.get('ja4'), h.get('ja4_stable')), (row.get('ja4'), row.get('ja4_stable')), '0xE0, 0xE1: JA4, stable JA4')
    ok(h.get('ja4', '').startswith('t13d'), 'the JA4 is a TLS 1.3 one with SNI', h.get('ja4'))
    eq(h.get('prior_failures'), 2, '0xE3: the 2 failures before it in its sequence')
    eq(h.get('tlv_types'), [0x01, 0x02, 0x20, 0xE0, 0xE1, 0xE2, 0xE3], 'the TLVs, in order')
    eq(h.get('attempt_id'), row.get('id'), '0xE2: the attempt\'s row id')
    eq((row.get('outcome'), row.get('backend_error'), row.get('close_kind'), row.get('closed_us')),
       ('ok', None, None, None), 'the row: ok, forwarded, recorded before the connection ends')
    seqs = run([TLSREPORT, '--database', d.db, '--since', 'yesterday', '--no-pager', 'sequences', '-o', 'json'])
    seqs = [json.loads(x) for x in seqs.stdout.decode().splitlines() if x.strip()]
    ok(any(s['outcome'] == 'ok' and s['failures'] == 2 and s['ja4'] == h.get('ja4_stable') for s in seqs),
       'tlsreport counts the same 2 failures in that sequence', seqs)
    eq(b.faults, [], 'no header broke the specification')

    # an IPv6 client, TLS 1.2, no SNI
    since = now_us()
    s = tls_connect(d.port, host='::1', sni=None, version='1.2')
    s.sendall(b'GET /header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    data, clean = read_all(s)
    h6 = json.loads(data.partition(b'\r\n\r\n')[2] or b'{}')
    port6 = s.getsockname()[1]
    s.close()
    row = d.row_of(port6, since)
    eq((h6.get('family'), h6.get('src'), h6.get('src_port'), h6.get('dst')), (6, '::1', port6, '::1'),
       'IPv6 client: TCP over IPv6 with its address')
    eq((h6.get('ssl_version'), h6.get('ssl_cipher')), ('TLSv1.2', row.get('cipher')), 'TLS 1.2: version, cipher')
    ok('authority' not in h6 and 0x02 not in h6.get('tlv_types', []), 'no SNI: no authority TLV', h6)
    ok(clean, 'the backend closed: the client got close_notify')

    # keep-alive: two requests on one connection, one row
    r = curl('-k', '-w', '%{num_connects}\n', f'https://127.0.0.1:{d.port}/hello', f'https://127.0.0.1:{d.port}/hello')
    eq(r.stdout.decode().count('hello from the backend'), 2, 'two requests on one connection')

    # ---- a WebSocket upgrade: the bytes after it pass both ways ----
    s = tls_connect(d.port)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
              f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
    head = b''
    while b'\r\n\r\n' not in head:
        head += s.recv(1)
    want_accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest())
    ok(head.startswith(b'HTTP/1.1 101') and b'Sec-WebSocket-Accept: ' + want_accept in head,
       'WebSocket: 101 Switching Protocols from the backend', head)
    for payload in (b'hello', os.urandom(300000)):
        mask = os.urandom(4)
        n = len(payload)
        frame = bytes([0x82, 0x80 | (n if n < 126 else 127)]) + (n.to_bytes(8, 'big') if n >= 126 else b'')
        s.sendall(frame + mask + bytes(x ^ mask[i % 4] for i, x in enumerate(payload)))
        got = b''
        want = 2 + (8 if n >= 126 else 0) + n
        while len(got) < want:
            got += s.recv(65536)
        eq(got[2 + (8 if n >= 126 else 0):], payload, f'WebSocket: a {n}-byte message echoed')
    s.close()

    # ---- 100 MB each way, with checksums ----
    t0 = time.monotonic()
    r = curl('-k', f'https://127.0.0.1:{d.port}/bytes/{100 * MB}', timeout=60)
    secs = time.monotonic() - t0
    ok(r.returncode == 0 and len(r.stdout) == 100 * MB and
       hashlib.sha256(r.stdout).digest() == hashlib.sha256(pattern(100 * MB)).digest(),
       f'100 MB download, same SHA-256 ({100 / secs:.0f} MB/s)', r.stderr)
    with tempfile.NamedTemporaryFile() as up:
        blob = os.urandom(MB) * 100
        up.write(blob)
        up.flush()
        t0 = time.monotonic()
        r = curl('-k', '--data-binary', f'@{up.name}', f'https://127.0.0.1:{d.port}/upload', timeout=60)
        secs = time.monotonic() - t0
        eq(r.stdout.decode(), hashlib.sha256(blob).hexdigest(), f'100 MB upload, same SHA-256 ({100 / secs:.0f} MB/s)')

    # ---- half-closes ----
    s = tls_connect(d.port)
    s.sendall(b'GET /drain HTTP/1.1\r\nHost: x\r\n\r\n' + b'x' * 100000)
    # FIN (on the socket under the TLS one): the backend sees its end, and answers after it
    socket.socket(fileno=os.dup(s.fileno())).shutdown(socket.SHUT_WR)
    data, clean = read_all(s)
    s.close()
    eq(data, b'drained 100000\n', 'the client closes its side: the backend reads all, then answers')
    ok(clean, 'then the client gets close_notify')
    s = tls_connect(d.port)
    s.sendall(b'GET /echo-close HTTP/1.1\r\nHost: x\r\n\r\n')
    data, clean = read_all(s)
    ok(data.endswith(b'hello from the backend\n') and clean, 'the backend closes: the client gets all, then close_notify')
    s.close()

    # the backend resets the connection mid-answer: the client sees a truncated stream, not a clean end
    s = tls_connect(d.port)
    s.sendall(b'GET /reset HTTP/1.1\r\nHost: x\r\n\r\n')
    data, clean = read_all(s)
    s.close()
    ok(len(data.partition(b'\r\n\r\n')[2]) == 100000 and not clean,
       'the backend resets mid-answer: the client gets what came, then EOF without close_notify',
       f'{len(data)} bytes, clean={clean}')

    # ---- a slow reader on either side: memory stays flat, TCP holds the other side back ----
    pid = d.proc.pid
    # (measured once the connection is forwarded and its row written: what a connection costs is not the
    # question, and under ASan, whose quarantine keeps what is freed, its handshake and its row alone add
    # up to 1 MB of RSS)
    since = now_us()
    s = tls_connect(d.port)
    d.row_of(s.getsockname()[1], since)
    before = rss_kib(pid)
    s.sendall(f'GET /bytes/{300 * MB} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
    sent0 = b.bytes_sent
    # the client reads nothing: the backend sends until the socket buffers on both sides are full (how much
    # they hold is the kernel's autotuning: 2.9 to 8.1 MB seen), then nothing moves. Waited for as such:
    # waiting for a fixed amount that never came went past --backend-idle-timeout (4 s), which then cut it.
    stalled = -1
    for _ in range(50):
        if b.bytes_sent - sent0 == stalled and stalled > MB:
            break
        stalled = b.bytes_sent - sent0
        time.sleep(0.2)
    time.sleep(0.5)
    stalled, grown = b.bytes_sent - sent0, rss_kib(pid) - before
    time.sleep(1.0)
    ok(b.bytes_sent - sent0 - stalled < 2 * MB, f'slow client: the backend is held back ({stalled / MB:.1f} MB sent of 300)')
    ok(grown < 2048, f'slow client: tlswatchd grew by {grown} KiB')
    sha, n = hashlib.sha256(), 0
    want_len = None
    buf = b''
    while want_len is None or n < want_len:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        if want_len is None:
            buf += chunk
            if b'\r\n\r\n' in buf:
                head, _, chunk = buf.partition(b'\r\n\r\n')
                want_len = int(head.split(b'Content-Length: ')[1].split(b'\r\n')[0])
            else:
                continue
        sha.update(chunk)
        n += len(chunk)
    s.close()
    ok(n == 300 * MB and sha.digest() == hashlib.sha256(pattern(300 * MB)).digest(),
       'then it reads all 300 MB, checksum intact')

    b.slow_seconds = 3
    since = now_us()
    s = tls_connect(d.port)
    d.row_of(s.getsockname()[1], since)
    before = rss_kib(pid)
    blob = os.urandom(MB) * 64
    progress = [0]

    def upload():
        s.sendall(f'POST /slow-upload HTTP/1.1\r\nHost: x\r\nContent-Length: {len(blob)}\r\n\r\n'.encode())
        for i in range(0, len(blob), MB):
            s.sendall(blob[i:i + MB])
            progress[0] += MB

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(1.5)  # the backend reads nothing for 3 s
    stalled, grown = progress[0], rss_kib(pid) - before
    ok(stalled < 32 * MB, f'slow backend: the client is held back ({stalled // MB} MB of 64 sent)')
    ok(grown < 2048, f'slow backend: tlswatchd grew by {grown} KiB')
    t.join(30)
    data = s.recv(65536)
    data += s.recv(65536) if not data.endswith(b'\n') and b'\r\n\r\n' in data and len(data.partition(b'\r\n\r\n')[2]) < 64 else b''
    eq(data.partition(b'\r\n\r\n')[2].decode(), hashlib.sha256(blob).hexdigest(), 'then the backend gets all 64 MB intact')
    s.close()

    # ---- the backend answers an upload it refuses, then resets, while the client still sends: the client
    # gets the answer (tlswatchd stopped meanwhile, so that the answer, the reset and more of the upload all
    # wait for it at once: it tries to send first, and must still pass on what the backend said)
    s = tls_connect(d.port)
    s.sendall(b'POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n' + b'u' * 100000)
    ok(b.refuse_seen.wait(10), 'the backend has the refused request')
    os.kill(d.proc.pid, signal.SIGSTOP)
    b.refuse_go.set()
    b.refuse_done.wait(10)
    s.sendall(b'u' * 100000)
    time.sleep(0.3)
    os.kill(d.proc.pid, signal.SIGCONT)
    s.settimeout(10)
    data, clean = read_all(s)
    s.close()
    ok(data.startswith(b'HTTP/1.1 413') and data.endswith(b'too large') and not clean,
       'refused upload: the client gets the backend\'s answer, then EOF without close_notify (its reset)', data)

    # ---- idle limit: nothing either way for --backend-idle-timeout (4 s) closes both sides ----
    s = tls_connect(d.port)
    t0 = time.monotonic()
    s.settimeout(10)
    data, clean = read_all(s)
    secs = time.monotonic() - t0
    ok(3.5 < secs < 7 and data == b'', f'an idle forwarded connection is closed after {secs:.1f} s')
    s.close()

    # ---- the backend down, then back on the same port ----
    port = int(b.addr.rpartition(':')[2])
    b.close()
    since = now_us()
    r = curl('-k', '-w', '%{local_port}', f'https://127.0.0.1:{d.port}/hello')
    ok(r.returncode != 0 and 'hello' not in r.stdout.decode(), 'backend down: the client gets no answer', r.stderr)
    diag(f'curl says: {r.stderr.decode().strip()}')
    ok(b'Empty reply' in r.stderr, 'a clean close (curl: empty reply), not a TLS error')
    row = d.row_of(int(r.stdout.decode() or 0), since)
    eq(row.get('outcome'), 'ok', 'the row keeps its handshake facts')
    eq(row.get('backend_error'), f'connect to 127.0.0.1:{port}: Connection refused', 'and says why: backend_error')
    ok(row.get('close_kind') == 'server' and row.get('closed_us'), 'closed by us', row)
    b2 = Backend(port=port)
    r = curl('-k', f'https://127.0.0.1:{d.port}/hello')
    eq(r.stdout, b'hello from the backend\n', 'the backend back on its port: served again')
    ok(d.proc.poll() is None, 'tlswatchd kept running')
    b2.close()

with tempfile.TemporaryDirectory() as tmp:
    # an IPv6 backend
    b6 = Backend(ipv6=True)
    with Daemon('--backend', b6.addr, '--no-record') as d:
        r = curl('-k', f'https://127.0.0.1:{d.port}/hello')
        eq(r.stdout, b'hello from the backend\n', f'--backend {b6.addr}: served')
    b6.close()

    # a unix socket backend
    ub = Backend(unix_path=os.path.join(tmp, 'app.sock'))
    with Daemon('--backend', ub.addr, '--no-record') as d:
        r = curl('-k', '-w', '\n%{local_port}', f'https://127.0.0.1:{d.port}/header')
        body, _, lport = r.stdout.decode().rpartition('\n')
        h = json.loads(body) if r.returncode == 0 else {}
        eq((h.get('src'), h.get('src_port')), ('127.0.0.1', int(lport or 0)), 'unix:/path backend: the header')
        eq(h.get('attempt_id'), None, '--no-record: no attempt id')
        # SIGTERM with a forwarded connection open: it is closed within the drain's 2 s
        s = tls_connect(d.port)
        s.sendall(b'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
        s.recv(65536)
        t0 = time.monotonic()
        rc = d.stop()
        secs = time.monotonic() - t0
        ok(rc == 0 and secs < 8, f'SIGTERM with a forwarded connection open: exit {rc} after {secs:.1f} s')
        s.close()
    ub.close()

    # SIGTERM with a forwarded connection where bytes keep moving, under an idle limit shorter than the
    # drain's 2 s: the drain still ends it (the idle timer's re-arming must not outlive the drain)
    db = Backend()
    with Daemon('--backend', db.addr, '--no-record', '--backend-idle-timeout', '1') as d:
        s = tls_connect(d.port)
        s.sendall(b'GET /drip HTTP/1.1\r\nHost: x\r\n\r\n')
        s.recv(65536)
        time.sleep(0.5)
        t0 = time.monotonic()
        rc = d.stop(timeout=20)
        secs = time.monotonic() - t0
        ok(rc == 0 and secs < 8, f'SIGTERM with a live forwarded connection: exit {rc} after {secs:.1f} s')
        s.close()

    # the client's idle limit, apart from the backend's: a client that only reads what the backend drips
    # is not idle; one that neither sends nor gets anything is closed after --backend-client-idle-timeout
    with Daemon('--backend', db.addr, '--no-record', '--backend-client-idle-timeout', '2') as d:
        s = tls_connect(d.port)
        s.sendall(b'GET /drip HTTP/1.1\r\nHost: x\r\n\r\n')
        got, t0 = b'', time.monotonic()
        s.settimeout(1)
        while time.monotonic() - t0 < 3.5:
            got += s.recv(65536)
        ok(got.startswith(b'HTTP/1.1 200') and got.count(b'.') >= 10,
           'a client that only reads a dripping answer stays connected past its idle limit', got[-40:])
        s.close()
        s = tls_connect(d.port)
        t0 = time.monotonic()
        s.settimeout(10)
        data, clean = read_all(s)
        secs = time.monotonic() - t0
        ok(1.5 < secs < 4.5 and data == b'' and clean,
           f'a client that sends nothing is closed after --backend-client-idle-timeout 2: {secs:.1f} s')
        s.close()
    db.close()

    # a unix listening socket from systemd: its clients have no IP address, the header says AF_UNSPEC
    # (it was refused, and every connection with it)
    sock = os.path.join(tmp, 'tls.sock')
    ub = Backend()
    p = subprocess.Popen(['systemd-socket-activate', '-l', sock, TLSWATCHD, '--state-directory',
                          os.path.join(tmp, 'ux'), '--backend', ub.addr, '--journal', 'none'],
                         stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(sock), 5)
    r = curl('-k', '--unix-socket', sock, 'https://localhost/header')
    h = json.loads(r.stdout or b'{}') if r.returncode == 0 else {}
    eq((h.get('family'), 'src' in h, h.get('authority'), h.get('ssl_version')), (0, False, 'localhost', 'TLSv1.3'),
       'a unix listening socket: an AF_UNSPEC header without addresses, with the TLVs')
    eq(ub.faults, [], 'its header follows the specification')
    p.terminate()
    p.wait(10)
    ub.close()

    # connecting times out: a listener whose accept queue is full drops the SYN
    full = socket.socket()
    full.bind(('127.0.0.1', 0))
    full.listen(0)
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(full.getsockname())
        fillers.append(f)
    time.sleep(0.2)
    addr = f'127.0.0.1:{full.getsockname()[1]}'
    with Daemon('--backend', addr, '--backend-connect-timeout', '1', '--journal', 'none') as d:
        d.settle()
        t0, since = time.monotonic(), now_us()
        r = curl('-k', '-w', '%{local_port}', f'https://127.0.0.1:{d.port}/hello')
        secs = time.monotonic() - t0
        ok(r.returncode != 0 and 0.8 < secs < 4, f'connect timeout: closed after {secs:.1f} s', r.stderr)
        row = d.row_of(int(r.stdout.decode() or 0), since)
        eq(row.get('backend_error'), f'connect to {addr}: timed out', 'backend_error: timed out')
    # tlswatchd stopped while it waits for the backend to accept: our stop, no fault of the backend's
    with Daemon('--backend', addr, '--backend-connect-timeout', '60', '--journal', 'none') as d:
        d.settle()
        since = now_us()
        s = insecure_context().wrap_socket(socket.create_connection(('127.0.0.1', d.port), timeout=10),
                                           server_hostname='localhost')
        lport = s.getsockname()[1]
        time.sleep(0.5)  # the handshake is done: tlswatchd is connecting to the full backend
        t0 = time.monotonic()
        d.stop()
        secs = time.monotonic() - t0
        s.close()
        row = d.row_of(lport, since)
        eq((row.get('outcome'), row.get('backend_error'), row.get('close_kind')), ('ok', None, 'shutdown'),
           f'stopped while connecting to the backend ({secs:.1f} s): no backend_error, close_kind shutdown')
    full.close()
    for f in fillers:
        f.close()

done()

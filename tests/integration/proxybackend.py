"""A backend for tlswatchd --backend in the tests: it reads and checks the PROXY protocol v2 header
(HAProxy's specification, section 2.2) byte by byte, keeps what it said, then speaks a small HTTP/1.1:
GET /header (the parsed header as JSON), GET /bytes/N (N deterministic bytes), POST /upload (answers the
body's SHA-256; /slow-upload likewise after slow_seconds without reading), GET /echo-close (answers,
then closes), /reset (100 kB of a 1 MB answer, then RST), /drain (reads until the client's end, answers how many bytes, closes), /ws (a WebSocket
upgrade, then every message echoed). A header that breaks the specification makes it
record the fault and close."""
import base64
import hashlib
import ipaddress
import json
import socket
import struct
import threading
import time

SIG = b'\r\n\r\n\x00\r\nQUIT\n'
TLV_NAMES = {0x01: 'alpn', 0x02: 'authority', 0xE0: 'ja4', 0xE1: 'ja4_stable'}


def _recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f'EOF after {len(buf)} of {n} bytes')
        buf += chunk
    return buf


def parse_tlvs(data, where):
    out = []
    i = 0
    while i < len(data):
        if len(data) - i < 3:
            raise ValueError(f'{where}: truncated TLV header at {i}')
        t, n = data[i], int.from_bytes(data[i + 1:i + 3], 'big')
        if i + 3 + n > len(data):
            raise ValueError(f'{where}: TLV 0x{t:02x} of {n} bytes overruns')
        out.append((t, data[i + 3:i + 3 + n]))
        i += 3 + n
    return out


def read_header(sock):
    """Reads one PROXY v2 header from sock; returns a dict of what it says, raises ValueError."""
    head = _recv_exact(sock, 16)
    if head[:12] != SIG:
        raise ValueError(f'bad signature {head[:12]!r}')
    if head[12] != 0x21:
        raise ValueError(f'version/command 0x{head[12]:02x}, want 0x21 (v2, PROXY)')
    fam = head[13]
    rest = _recv_exact(sock, int.from_bytes(head[14:16], 'big'))
    if fam == 0x11:
        alen, ver = 4, 4
    elif fam == 0x21:
        alen, ver = 16, 6
    elif fam == 0x00:  # UNSPEC: no addresses (tlswatchd behind a unix listening socket)
        alen, ver = None, 0
    else:
        raise ValueError(f'family 0x{fam:02x}, want TCP over IPv4 or IPv6, or UNSPEC')
    if alen is None:
        h, tlvs = {'family': ver, 'tlv_types': []}, rest
    elif len(rest) < 2 * alen + 4:
        raise ValueError('addresses truncated')
    else:
        h = {'family': ver,
             'src': str(ipaddress.ip_address(rest[:alen])),
             'dst': str(ipaddress.ip_address(rest[alen:2 * alen])),
             'src_port': int.from_bytes(rest[2 * alen:2 * alen + 2], 'big'),
             'dst_port': int.from_bytes(rest[2 * alen + 2:2 * alen + 4], 'big'),
             'tlv_types': []}
        tlvs = rest[2 * alen + 4:]
    for t, v in parse_tlvs(tlvs, 'header'):
        h['tlv_types'].append(t)
        if t in TLV_NAMES:
            h[TLV_NAMES[t]] = v.decode('latin-1')
        elif t == 0x20:
            if len(v) < 5:
                raise ValueError('PP2_TYPE_SSL shorter than client + verify')
            h['ssl_client'] = v[0]
            h['ssl_verify'] = int.from_bytes(v[1:5], 'big')
            for st, sv in parse_tlvs(v[5:], 'PP2_TYPE_SSL'):
                if st == 0x21:
                    h['ssl_version'] = sv.decode()
                elif st == 0x23:
                    h['ssl_cipher'] = sv.decode()
                else:
                    h.setdefault('ssl_other', []).append(st)
        elif t == 0xE2:
            if len(v) != 8:
                raise ValueError(f'attempt id TLV of {len(v)} bytes')
            h['attempt_id'] = int.from_bytes(v, 'big')
        elif t == 0xE3:
            if len(v) != 4:
                raise ValueError(f'prior failures TLV of {len(v)} bytes')
            h['prior_failures'] = int.from_bytes(v, 'big')
    return h


def pattern(n):
    """n deterministic bytes (what /bytes/N sends; the tests compute the same)."""
    block = hashlib.sha256(b'tlswatch').digest() * 2048  # 64 KiB
    full, part = divmod(n, len(block))
    return block * full + block[:part]


class Backend:
    """Listens on 127.0.0.1 (or a unix socket); one thread per connection. headers: what each
    connection's PROXY header said, in order; faults: what broke the specification."""

    def __init__(self, unix_path=None, port=0, ipv6=False):
        self.headers, self.faults, self.conns = [], [], 0
        self.slow_seconds = 3
        self.bytes_sent = 0  # by /bytes/N, all connections
        # /refuse: seen when its request came, answers (then resets) once go is set, done after
        self.refuse_seen, self.refuse_go, self.refuse_done = threading.Event(), threading.Event(), threading.Event()
        self.lock = threading.Lock()
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.addr = f'unix:{unix_path}'
        elif ipv6:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            self.sock.bind(('::1', port))
            self.addr = f'[::1]:{self.sock.getsockname()[1]}'
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(('127.0.0.1', port))
            self.addr = f'127.0.0.1:{self.sock.getsockname()[1]}'
        self.sock.listen(128)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            try:
                h = read_header(c)
            except (ValueError, EOFError, OSError) as e:
                with self.lock:
                    self.faults.append(str(e))
                return
            with self.lock:
                self.headers.append(h)
            try:
                self._http(c, h)
            except (OSError, EOFError):
                pass

    def _websocket(self, c, f, key):
        """RFC 6455: the 101 answer, then every message echoed back until a close frame."""
        accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest())
        c.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                  b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
        while True:
            b0, b1 = f.read(2)
            n = b1 & 0x7f
            if n == 126:
                n = int.from_bytes(f.read(2), 'big')
            elif n == 127:
                n = int.from_bytes(f.read(8), 'big')
            mask = f.read(4) if b1 & 0x80 else b'\0\0\0\0'
            data = bytes(x ^ mask[i % 4] for i, x in enumerate(f.read(n)))
            hdr = bytes([b0]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, 'big') if n < 65536
                                 else bytes([127]) + n.to_bytes(8, 'big'))
            c.sendall(hdr + data)
            if b0 & 0x0f == 8:
                return

    def _http(self, c, h):
        f = c.makefile('rb')
        while True:
            line = f.readline(65536)
            if not line:
                return
            method, target, _ = line.decode('latin-1').split(' ', 2)
            length, close, ws_key = 0, False, None
            while True:
                hl = f.readline(65536).decode('latin-1')
                if hl in ('\r\n', '\n', ''):
                    break
                k, _, v = hl.partition(':')
                if k.strip().lower() == 'content-length':
                    length = int(v)
                if k.strip().lower() == 'connection' and v.strip().lower() == 'close':
                    close = True
                if k.strip().lower() == 'sec-websocket-key':
                    ws_key = v.strip()
            if target == '/ws' and ws_key:
                self._websocket(c, f, ws_key)
                return
            if target == '/drain':  # everything until the client's end, then how much, then close
                n = len(f.read())
                c.sendall(f'drained {n}\n'.encode())
                return
            if target == '/reset':  # 100 kB of a 1 MB answer, then a reset
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n' + b'r' * 100000)
                time.sleep(0.2)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                return
            if target == '/refuse':  # an upload refused before its body is read: 413, then a reset
                self.refuse_seen.set()
                self.refuse_go.wait(10)
                c.sendall(b'HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large')
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                c.close()
                self.refuse_done.set()
                return
            if target == '/drip':  # a byte every 0.2 s for 30 s: a live connection, never idle
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 150\r\n\r\n')
                for _ in range(150):
                    c.sendall(b'.')
                    time.sleep(0.2)
                continue
            if target == '/slow-upload':  # reads nothing for a while: the upload waits in buffers
                time.sleep(self.slow_seconds)
            if method == 'POST':
                sha, left = hashlib.sha256(), length
                while left:
                    chunk = f.read(min(left, 1 << 20))
                    if not chunk:
                        return
                    sha.update(chunk)
                    left -= len(chunk)
                body = sha.hexdigest().encode()
            elif target == '/header':
                body = json.dumps(h).encode()
            elif target.startswith('/bytes/'):
                body = None
                n = int(target[7:])
            else:
                body = b'hello from the backend\n'
            if body is None:
                c.sendall(f'HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n'.encode())
                block = pattern(1 << 16)
                while n:
                    k = min(n, len(block))
                    c.sendall(block[:k])
                    n -= k
                    with self.lock:
                        self.bytes_sent += k
            else:
                c.sendall(f'HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n'
                          f'Content-Type: text/plain\r\n\r\n'.encode() + body)
            if close or target == '/echo-close':
                return

"""A plain HTTP/1.1 backend for tlswatchd --backend-protocol http in the tests. It keeps every byte it
received (raw: what a smuggled request would look like if it got through) and every request it parsed
(method, target, header fields in order), and answers:
  GET /headers       the request's method, target and header fields as JSON (what tlswatchd forwarded)
  GET /hello         a short text
  GET /bytes/N       N deterministic bytes (proxybackend.pattern) with Content-Length
  GET /chunked/N     the same bytes, chunked (odd chunk sizes)
  GET /close/N       the same bytes, delimited by the end of the connection (no Content-Length)
  GET /slow/S        answers after S seconds
  GET /ws            with Upgrade: websocket, a 101 then every message echoed (RFC 6455)
  POST, PUT          the body's SHA-256 (Content-Length or chunked); with Expect: 100-continue a 100 first
A HEAD gets the GET's head without its body."""
import base64
import hashlib
import json
import socket
import threading
import time

from proxybackend import pattern


RAW_MAX = 4 << 20  # bytes of the raw log kept (the start of each test's traffic is what matters)


class Reader:
    """Buffered reads from a socket; every byte received goes to the backend's raw log (up to RAW_MAX)."""

    def __init__(self, sock, backend):
        self.sock, self.backend, self.buf = sock, backend, bytearray()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError
        with self.backend.lock:
            if self.backend.raw_len < RAW_MAX:
                self.backend.raw_chunks.append(chunk)
            self.backend.raw_len += len(chunk)
        self.buf += chunk

    def readline(self):
        while True:
            i = self.buf.find(b'\n')
            if i >= 0:
                break
            self._fill()
        line = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        return line

    def read(self, n):
        if not self.buf:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:len(data)]
        return data

    def read_exact(self, n):
        out = b''
        while len(out) < n:
            out += self.read(n - len(out))
        return out


class HttpBackend:
    def __init__(self, port=0):
        self.raw_chunks, self.raw_len, self.requests, self.conns = [], 0, [], 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', port))
        self.port = self.sock.getsockname()[1]
        self.addr = f'127.0.0.1:{self.port}'
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

    @property
    def raw(self):
        with self.lock:
            return b''.join(self.raw_chunks)

    def clear_raw(self):
        with self.lock:
            self.raw_chunks, self.raw_len = [], 0

    def targets(self):
        with self.lock:
            return [r['target'] for r in self.requests]

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
                self._http(c, Reader(c, self))
            except (OSError, EOFError, ValueError):
                pass

    def _websocket(self, c, f, key):
        accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest())
        c.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                  b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
        while True:
            b0, b1 = f.read_exact(2)
            n = b1 & 0x7f
            if n == 126:
                n = int.from_bytes(f.read_exact(2), 'big')
            elif n == 127:
                n = int.from_bytes(f.read_exact(8), 'big')
            mask = f.read_exact(4) if b1 & 0x80 else b'\0\0\0\0'
            data = bytes(x ^ mask[i % 4] for i, x in enumerate(f.read_exact(n)))
            hdr = bytes([b0]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, 'big') if n < 65536
                                 else bytes([127]) + n.to_bytes(8, 'big'))
            c.sendall(hdr + data)
            if b0 & 0x0f == 8:
                return

    def _body(self, f, fields):
        """The request body's SHA-256, or None without a body."""
        te = fields.get('transfer-encoding', '').lower()
        sha = hashlib.sha256()
        if te == 'chunked':
            while True:
                size = int(f.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while f.readline() not in (b'\r\n', b'\n'):
                        pass
                    return sha.hexdigest()
                left = size
                while left:
                    chunk = f.read(left)
                    sha.update(chunk)
                    left -= len(chunk)
                f.readline()
        left = int(fields.get('content-length', '0'))
        if not left:
            return None
        while left:
            chunk = f.read(min(left, 1 << 20))
            sha.update(chunk)
            left -= len(chunk)
        return sha.hexdigest()

    def _http(self, c, f):
        while True:
            line = f.readline()
            method, target, _ = line.decode('latin-1').split(' ', 2)
            headers = []
            while True:
                hl = f.readline().decode('latin-1')
                if hl in ('\r\n', '\n'):
                    break
                k, _, v = hl.partition(':')
                headers.append([k.strip(), v.strip()])
            fields = {k.lower(): v for k, v in headers}
            with self.lock:
                self.requests.append({'method': method, 'target': target, 'headers': headers})
            close = 'close' in fields.get('connection', '').lower()
            if target == '/ws' and 'sec-websocket-key' in fields:
                self._websocket(c, f, fields['sec-websocket-key'])
                return
            if fields.get('expect', '').lower() == '100-continue':
                c.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')
            if target.startswith('/slow/'):  # answers (and reads the body) after S seconds
                time.sleep(float(target[6:]))
            digest = self._body(f, fields)
            head_only = method == 'HEAD'
            if digest is not None or method in ('POST', 'PUT'):
                body = (digest or hashlib.sha256(b'').hexdigest()).encode()
            elif target == '/headers':
                body = json.dumps({'method': method, 'target': target, 'headers': headers}).encode()
            elif target.startswith('/slow/'):
                body = b'slow answer\n'
            elif target.startswith('/bytes/') or target.startswith('/chunked/') or target.startswith('/close/'):
                n = int(target.rsplit('/', 1)[1])
                kind = target.split('/')[1]
                if kind == 'bytes':
                    c.sendall(f'HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n'.encode())
                    if not head_only:
                        block, left = pattern(1 << 16), n
                        while left:
                            k = min(left, len(block))
                            c.sendall(block[:k])
                            left -= k
                elif kind == 'chunked':
                    c.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
                    data, pos, size = pattern(n), 0, 1
                    while pos < n and not head_only:
                        k = min(size, n - pos)
                        c.sendall(f'{k:x}\r\n'.encode() + data[pos:pos + k] + b'\r\n')
                        pos, size = pos + k, size * 3 + 1
                    if not head_only:
                        c.sendall(b'0\r\n\r\n')
                else:
                    c.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n' + (b'' if head_only else pattern(n)))
                    return
                if close:
                    return
                continue
            else:
                body = b'hello from the backend\n'
            c.sendall(f'HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n'.encode()
                      + (b'' if head_only else body))
            if close:
                return

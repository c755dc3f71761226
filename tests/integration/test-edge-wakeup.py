#!/usr/bin/env python3
"""tlswatchd watches its connections edge-triggered (EPOLLET): epoll tells it once that a socket became
readable, so it must read until the socket is empty before it waits again, or whatever is left waits for
the client's next byte (a lost wake-up: the answer comes only at the idle timeout, or never). Each case
puts several things in the socket at once, in one TCP write (or the ClientHello in pieces), with Python's ssl over a memory BIO: pipelined
requests in one TLS record and in several, one request split over many TLS records, the client's Finished
and its request together (TLS 1.2 and 1.3), a body after the request (the lingering close reads it). Every answer must come well before the idle timeout (set to 30 s)."""
import socket
import ssl
import time

from twlib import Daemon, done, eq, insecure_context, ok, parse_http

LIMIT_S = 5.0  # a lost wake-up waits for the 30 s idle timeout


class Client:
    """A TLS client over a memory BIO: what it writes goes out only on flush(), in one sendall()."""

    def __init__(self, port, version=None):
        self.raw = socket.create_connection(('127.0.0.1', port), timeout=LIMIT_S)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = insecure_context(version).wrap_bio(self.inc, self.out, server_hostname='localhost')
        self.received = b''

    def flush(self):
        data = self.out.read()
        if data:
            self.raw.sendall(data)

    def feed(self):
        d = self.raw.recv(65536)
        if not d:
            self.inc.write_eof()
            return False
        self.inc.write(d)
        return True

    def handshake(self, hold_last_flight=False, hello_pieces=0):
        """With hold_last_flight, the client's last flight (its Finished) stays in the BIO: the caller's
        next write goes out with it in one TCP write. With hello_pieces, the ClientHello goes out in that
        many TCP writes, 20 ms apart (its header alone first)."""
        first = True
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if first and hello_pieces:
                    data = self.out.read()
                    n = hello_pieces - 1
                    cuts = [0, 3] + [3 + (len(data) - 3) * i // n for i in range(1, n + 1)]
                    for a, b in zip(cuts, cuts[1:]):
                        self.raw.sendall(data[a:b])
                        time.sleep(0.02)
                first = False
                self.flush()
                self.feed()
        if not hold_last_flight:
            self.flush()

    def write(self, data):
        self.tls.write(data)  # one TLS record per call (up to 16 KB)

    def read_all(self):
        """Reads until the server closes; returns (bytes, seconds)."""
        t = time.monotonic()
        while True:
            try:
                d = self.tls.read(65536)
                if not d:
                    break
                self.received += d
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            try:
                if not self.feed():
                    continue
            except socket.timeout:
                break
        self.raw.close()
        return self.received, time.monotonic() - t


def answers(data):
    return data.count(b'HTTP/1.1 200 OK')


with Daemon('--no-record', '--idle-timeout', '30') as d:
    req = b'GET /api/self HTTP/1.1\r\nHost: x\r\n\r\n'
    last = b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

    # the ClientHello in 8 TCP writes (the server waits for its whole first record before it sets up TLS)
    c = Client(d.port)
    c.handshake(hello_pieces=8)
    c.write(last)
    c.flush()
    data, secs = c.read_all()
    eq(answers(data), 1, 'a ClientHello in 8 TCP writes, 20 ms apart: handshake and answer')
    ok(secs < LIMIT_S, f'... without waiting ({secs:.2f} s)')

    # three pipelined requests in one record, one TCP write
    c = Client(d.port)
    c.handshake()
    c.write(req + req + last)
    c.flush()
    data, secs = c.read_all()
    eq(answers(data), 3, 'three pipelined requests in one record: three answers')
    ok(secs < LIMIT_S, f'... without waiting ({secs:.2f} s)')

    # three requests in three records, one TCP write
    c = Client(d.port)
    c.handshake()
    for r in (req, req, last):
        c.write(r)
    c.flush()
    data, secs = c.read_all()
    eq(answers(data), 3, 'three requests in three records, one TCP write: three answers')
    ok(secs < LIMIT_S, f'... without waiting ({secs:.2f} s)')

    # one request split over many records, one TCP write
    c = Client(d.port)
    c.handshake()
    for i in range(0, len(last), 3):
        c.write(last[i:i + 3])
    c.flush()
    data, secs = c.read_all()
    eq(answers(data), 1, f'one request over {len(range(0, len(last), 3))} records in one TCP write: answered')
    ok(secs < LIMIT_S, f'... without waiting ({secs:.2f} s)')

    # the client's Finished and its requests in one TCP write
    for version in ('1.2', '1.3'):
        c = Client(d.port, version)
        c.handshake(hold_last_flight=True)
        c.write(req)
        c.write(last)
        c.flush()
        data, secs = c.read_all()
        eq(answers(data), 2, f'TLS {version}: the Finished and two requests in one TCP write: two answers')
        ok(secs < LIMIT_S, f'... without waiting ({secs:.2f} s)')

    # a request with a body (a GET's body is not read as a request: the server answers and closes), in
    # the same TCP write: the lingering close reads the body, then the client's end
    c = Client(d.port)
    c.handshake()
    body = b'x' * (48 * 1024)
    c.write(b'GET /api/self HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % len(body))
    for i in range(0, len(body), 16384):
        c.write(body[i:i + 16384])
    c.flush()
    data, secs = c.read_all()
    eq(parse_http(data)[0] if data else None, 200, 'a request with a 48 KB body in one TCP write: answered')
    ok(secs < LIMIT_S, f'... and closed without waiting ({secs:.2f} s)')

done()

#!/usr/bin/env python3
"""What a client that sends its HTTP headers a byte at a time costs tlswatchd (the slowloris shape of
abuse, within the 8 KiB header limit): the daemon's CPU time (utime + stime from /proc) per connection for
a request of about 8 KiB of headers sent one byte per TLS record, against the same request sent in one
write, measured in the same run. Each connection does a TLS 1.3 handshake, sends the request, reads the
page and closes, as a browser would.

    bench/http-dribble.py [--tlswatchd PATH] [--connections N] [--header-bytes B]
"""
import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def request(header_bytes):
    pad = 'x' * 100
    lines = ['GET / HTTP/1.1', 'Host: localhost', 'User-Agent: dribble-bench/1']
    n = 0
    while len('\r\n'.join(lines)) + 130 < header_bytes:
        lines.append(f'X-Pad-{n}: {pad}')
        n += 1
    lines += ['Connection: close', '', '']
    return '\r\n'.join(lines).encode()


def one(port, req, dribble):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port)) as raw, ctx.wrap_socket(raw) as s:
        if dribble:
            for i in range(len(req)):
                s.sendall(req[i:i + 1])  # one TLS record per byte
        else:
            s.sendall(req)
        got = b''
        while chunk := s.recv(65536):
            got += chunk
        if not got.startswith(b'HTTP/1.1 200'):
            sys.exit(f'unexpected answer: {got[:80]!r}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tlswatchd', default=os.path.join(os.path.dirname(__file__), '..', 'build', 'daemon',
                                                         'tlswatchd'))
    ap.add_argument('--connections', type=int, default=20)
    ap.add_argument('--header-bytes', type=int, default=8000)
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix='tlswatch-dribble-')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    d = subprocess.Popen([args.tlswatchd, '--state-directory', state, '--listen', f'127.0.0.1:{port}',
                          '--journal', 'none', '--handshake-timeout', '60', '--idle-timeout', '60'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(('127.0.0.1', port)).close()
                break
            except OSError:
                time.sleep(0.05)
        req = request(args.header_bytes)
        one(port, req, False)  # warm-up: the certificate is loaded, the database open
        cost = {}
        for dribble in (False, True):
            time.sleep(0.5)  # the store's commit of the warm-up/previous phase
            before = cpu_seconds(d.pid)
            for _ in range(args.connections):
                one(port, req, dribble)
            time.sleep(0.5)
            cost[dribble] = (cpu_seconds(d.pid) - before - 0.0) / args.connections
        print(f'request of {len(req)} bytes, {args.connections} connections each way')
        print(f'  daemon CPU per connection, request in one write:      {cost[False] * 1000:8.2f} ms')
        print(f'  daemon CPU per connection, one byte per TLS record:   {cost[True] * 1000:8.2f} ms')
        print(f'  ratio (byte at a time / one write):                   {cost[True] / max(cost[False], 1e-9):8.1f}')
    finally:
        d.terminate()
        d.wait()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == '__main__':
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real TLS client (Python's ssl, that is OpenSSL) that holds its handshake open.

    slow-tls-client.py PORT GOFILE

It connects to 127.0.0.1:PORT, prints "port N" (its own port), sends the first 20 bytes of its
ClientHello and prints "held"; once GOFILE exists (at most 60 s later) it sends the rest, finishes
the handshake, asks for GET / and prints "done VERSION STATUS-LINE". Exits 1 on any failure."""
import os
import socket
import ssl
import sys
import time

port, gofile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the daemon's generated certificate is self-signed
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="upgrade.tlswatch.test")
sock = socket.create_connection(("127.0.0.1", port), 5)
sock.settimeout(30)
print("port", sock.getsockname()[1], flush=True)

try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()
sock.sendall(hello[:20])
print("held", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(gofile):
    if time.monotonic() > deadline:
        sys.exit("slow-tls-client: no go after 60 s")
    time.sleep(0.05)
sock.sendall(hello[20:])


def pump():
    data = sock.recv(65536)
    if not data:
        raise EOFError("the server closed the connection")
    incoming.write(data)


while True:
    try:
        tls.do_handshake()
        done = True
    except ssl.SSLWantReadError:
        done = False
    pending = outgoing.read()
    if pending:
        sock.sendall(pending)
    if done:
        break
    pump()

tls.write(b"GET / HTTP/1.1\r\nHost: upgrade.tlswatch.test\r\nConnection: close\r\n\r\n")
sock.sendall(outgoing.read())
response = b""
while b"\r\n" not in response:
    try:
        response += tls.read(65536)
    except ssl.SSLWantReadError:
        pump()
print("done", tls.version(), response.split(b"\r\n")[0].decode(), flush=True)
sock.close()

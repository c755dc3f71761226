#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Live ClientHellos from real clients, fingerprinted by tlswatch and by tshark.

A tiny TCP listener on 127.0.0.1 reads each client's first TLS bytes until the ClientHello is complete
and closes. tshark records the same traffic on lo. For every connection, our JA3 and JA3 string
(fingerprint-dump) must equal tshark's tls.handshake.ja3 / ja3_full. Clients: curl, openssl s_client,
gnutls-cli, Python's ssl module, headless Chromium.

Usage: live-fingerprints.py PATH-TO-fingerprint-dump     (TAP output; needs root for tshark on lo)
Every process started here runs in its own process group and is killed at exit, also on failure."""
import atexit
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from twlib import diag, done, ok, spawn, wait_for  # noqa: E402 (TAP helpers; spawned process groups are killed at exit)

_tmp = tempfile.mkdtemp(prefix="tlswatch-live-fp-")
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)


def run_client(args, timeout):
    p = spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def hello_complete(data):
    """Whether data (client bytes) holds a whole ClientHello: reassemble handshake records."""
    payload = b""
    i = 0
    while i + 5 <= len(data):
        if data[i] != 22:
            return True  # not a handshake record: nothing more to wait for
        n = int.from_bytes(data[i + 3:i + 5], "big")
        payload += data[i + 5:i + 5 + n]
        i += 5 + n
        if len(payload) >= 4 and len(payload) >= 4 + int.from_bytes(payload[1:4], "big"):
            return True
    return False


class Listener:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hellos = {}  # client port -> bytes
        self.active = 0  # connections accepted and not yet read to the end
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, addr = self.sock.accept()
            except socket.timeout:
                continue
            with self.lock:
                self.active += 1
            threading.Thread(target=self.serve, args=(conn, addr[1]), daemon=True).start()

    def serve(self, conn, port):
        data = b""
        conn.settimeout(3)
        try:
            while not hello_complete(data) and len(data) < 70000:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        conn.close()
        with self.lock:
            if data:
                self.hellos[port] = data
            self.active -= 1

    def ports(self):
        with self.lock:
            return set(self.hellos)

    def idle(self):
        with self.lock:
            return self.active == 0


def python_client(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost"):
                pass
    except (OSError, ssl.SSLError):
        pass


def tshark_hellos(pcap):
    """tshark's JA3 and JA3 string of each ClientHello in the capture, by client port."""
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "tls.handshake.type==1", "-T", "fields",
                          "-e", "tcp.srcport", "-e", "tls.handshake.ja3", "-e", "tls.handshake.ja3_full"],
                         capture_output=True, text=True, timeout=30).stdout
    theirs = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 3 and f[0].isdigit():
            theirs.setdefault(int(f[0]), (f[1], f[2]))
    return theirs


def fingerprint_dump(tool, data):
    path = os.path.join(_tmp, "hello.bin")
    with open(path, "wb") as f:
        f.write(data)
    out = subprocess.run([tool, path], capture_output=True, text=True, timeout=10).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main():
    if len(sys.argv) != 2:
        print("Bail out! usage: live-fingerprints.py PATH-TO-fingerprint-dump")
        return 1
    tool = sys.argv[1]
    for prog in ("tshark", "curl", "openssl", "gnutls-cli", "chromium"):
        if not shutil.which(prog):
            print(f"Bail out! {prog} not found")
            return 1

    listener = Listener()
    port = listener.port
    pcap = os.path.join(_tmp, "live.pcap")
    terr = open(os.path.join(_tmp, "tshark.err"), "w+")
    tshark = spawn(["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", pcap, "-q"],
                   stdout=subprocess.DEVNULL, stderr=terr)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        terr.seek(0)
        if "Capturing on" in terr.read():
            break
        if tshark.poll() is not None:
            break
        time.sleep(0.1)
    terr.seek(0)
    if not ok("Capturing on" in terr.read() and tshark.poll() is None, "tshark captures on lo"):
        terr.seek(0)
        diag(terr.read())
        return 1

    # "Capturing on" can come before the capture filter is in place (seen under load in CI: the first
    # client's hello was missing from the capture). Send hellos that count for nothing until tshark
    # has one of them on file.
    canary = listener.ports()
    def tshark_ready():
        python_client(port)
        return bool(tshark_hellos(pcap))
    if not ok(wait_for(tshark_ready, 20, 0.3), "tshark writes what it captures"):
        return 1
    wait_for(listener.idle, 5)
    canary = listener.ports() - canary
    diag(f"{len(canary)} connection(s) before tshark's first write; not checked")

    url = f"https://127.0.0.1:{port}/"
    prof = tempfile.mkdtemp(dir=_tmp)
    clients = [
        ("curl", lambda: run_client(["curl", "-sk", "--max-time", "5", url], 10)),
        ("openssl s_client", lambda: run_client(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-alpn", "h2,http/1.1"], 10)),
        ("gnutls-cli", lambda: run_client(["gnutls-cli", "--insecure", "-p", str(port), "127.0.0.1"], 10)),
        ("python ssl", lambda: python_client(port)),
        ("chromium", lambda: run_client(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={prof}", "--dump-dom", url], 25)),
    ]
    conns = {}  # client port -> client name
    for name, run in clients:
        before = listener.ports()
        run()
        # the client has exited: wait until every connection it made has been read to its end
        wait_for(lambda: listener.idle() and listener.ports() - before, 5)
        new = listener.ports() - before
        ok(len(new) > 0, f"{name}: sent a ClientHello ({len(new)} connection(s))")
        for p in new:
            conns[p] = name

    # tshark writes what it captured as it goes: stop it once the file holds every connection's hello
    wait_for(lambda: set(conns) <= set(tshark_hellos(pcap)), 15, 0.3)
    tshark.send_signal(signal.SIGINT)
    try:
        tshark.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(tshark.pid, signal.SIGKILL)
        tshark.wait()
    listener.stop = True

    theirs = tshark_hellos(pcap)

    chromium_ja4 = set()
    for p, name in sorted(conns.items()):
        ours = fingerprint_dump(tool, listener.hellos[p])
        if not ok(ours.get("capture") == "complete" and "ja3" in ours, f"{name} (port {p}): fingerprinted",
                  repr(ours)):
            continue
        if not ok(p in theirs, f"{name} (port {p}): tshark saw the ClientHello"):
            continue
        ok(ours["ja3"] == theirs[p][0], f"{name} (port {p}): JA3 equals tshark's ({ours['ja3']})",
           f"ours   {ours['ja3']}\ntshark {theirs[p][0]}")
        ok(ours["ja3_full"] == theirs[p][1], f"{name} (port {p}): JA3 string equals tshark's",
           f"ours   {ours['ja3_full']}\ntshark {theirs[p][1]}")
        diag(f"{name}: ja4={ours['ja4']} offered={ours['offered_versions']} alpn={ours['alpn_offered']}")
        if name == "chromium":
            chromium_ja4.add(ours["ja4"])
    if len([n for n in conns.values() if n == "chromium"]) > 1:
        ok(len(chromium_ja4) == 1, "chromium: one JA4 over all its connections (GREASE removed)",
           repr(chromium_ja4))
    return 0


if __name__ == "__main__":
    main()
    done()

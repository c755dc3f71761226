#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A TEST STAND-IN for tlswatchd, used by the system and browser tests only until the real daemon
builds. It speaks the same contracts as far as Python's ssl module can see them: socket activation
(LISTEN_FDS) or --listen, Type=notify (READY/STATUS/RELOADING/STOPPING), a generated self-signed
certificate in the state directory, one row per TCP connection in the SQLite table `attempts`
(the project's schema), one structured journal entry per failed attempt, SIGHUP reloads the
certificate, SIGTERM drains. It computes no fingerprints (ja3/ja4 stay NULL) and cannot see the
state of a TLS 1.3 handshake precisely; it is not the product."""

import argparse
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time

MSG_OK = "1c5e1c7a0b7f4e0a9d6a2f1f0c3b5a01"
MSG_FAIL = "1c5e1c7a0b7f4e0a9d6a2f1f0c3b5a02"
ALERTS = {"CERTIFICATE_UNKNOWN": 46, "BAD_CERTIFICATE": 42, "UNKNOWN_CA": 48, "HANDSHAKE_FAILURE": 40,
          "DECRYPT_ERROR": 51, "PROTOCOL_VERSION": 70, "USER_CANCELLED": 90, "INTERNAL_ERROR": 80}


def notify(msg):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), path)


def journal_send(fields):
    data = b""
    for k, v in fields.items():
        v = str(v).encode()
        if b"\n" in v:
            data += k.encode() + b"\n" + len(v).to_bytes(8, "little") + v + b"\n"
        else:
            data += k.encode() + b"=" + v + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(data, "/run/systemd/journal/socket")
    except OSError:
        pass


class Server:
    def __init__(self, args):
        self.args = args
        self.state = args.state_directory or os.environ.get("STATE_DIRECTORY", "/var/lib/tlswatch")
        os.makedirs(self.state, exist_ok=True)
        self.cert = os.path.join(self.state, "cert.pem")
        self.key = os.path.join(self.state, "key.pem")
        self.lock = threading.Lock()
        self.db = sqlite3.connect(args.database or os.path.join(self.state, "tlswatch.db"),
                                  check_same_thread=False)
        if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:
            with open(args.schema) as f:
                self.db.executescript(f.read())
            self.db.execute("PRAGMA user_version = 1")
            self.db.commit()
        self.counts = {"attempts": 0, "failed": 0}
        self.open_conns = {}
        self.stopping = False
        self.cut = False
        self.load_cert()

    def load_cert(self):
        if not os.path.exists(self.cert):
            old = os.umask(0o077)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30", "-subj",
                            "/CN=%s" % socket.gethostname(), "-addext",
                            "subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1" % socket.gethostname()],
                           check=True, capture_output=True)
            os.umask(old)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.args.tls_max == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        self.ctx = ctx

    def status(self):
        notify("STATUS=%d attempts, %d failed, %d open" % (self.counts["attempts"], self.counts["failed"],
                                                          len(self.open_conns)))

    def record(self, a):
        cols = list(a.keys())
        with self.lock:
            self.db.execute("INSERT INTO attempts (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
                            [a[c] for c in cols])
            self.db.commit()
            self.counts["attempts"] += 1
            if a["outcome"] != "ok":
                self.counts["failed"] += 1
        if a["outcome"] != "ok" or self.args.journal == "all":
            f = {"MESSAGE": "%s:%d: %s (%s)" % (a["peer_addr"], a["peer_port"], a["outcome"], a.get("error_text")),
                 "MESSAGE_ID": MSG_OK if a["outcome"] == "ok" else MSG_FAIL,
                 "PRIORITY": 6 if a["outcome"] == "ok" else 5}
            for c, v in a.items():
                if v is not None:
                    f["TLSWATCH_" + c.upper()] = v
            journal_send(f)
        self.status()

    def handle(self, sock, peer, local):
        a = {"started_us": int(time.time() * 1e6), "peer_addr": peer[0].removeprefix("::ffff:"),
             "peer_port": peer[1], "local_addr": local[0].removeprefix("::ffff:"), "local_port": local[1],
             "outcome": "server_error", "state_reached": "connected", "bytes_in": 0, "bytes_out": 0}
        sock.settimeout(self.args.handshake_timeout)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.ctx.wrap_bio(inc, out, server_side=True)

        def flush():
            d = out.read()
            if d:
                sock.sendall(d)
                a["bytes_out"] += len(d)
                if a["state_reached"] == "client_hello":
                    a["state_reached"] = "server_flight"

        def fill():
            d = sock.recv(16384)
            if not d:
                raise EOFError
            if a["bytes_in"] == 0 and d[0] != 0x16:
                raise ValueError(d)
            if a["bytes_in"] > 0 and a["state_reached"] == "server_flight":
                a["state_reached"] = "client_flight"
            a["bytes_in"] += len(d)
            if a["state_reached"] == "connected":
                a["state_reached"] = "client_hello"
            inc.write(d)

        try:
            while True:
                try:
                    tls.do_handshake()
                    flush()
                    break
                except ssl.SSLWantReadError:
                    flush()
                    fill()
            a.update(outcome="ok", state_reached="done", version=tls.version(), cipher=tls.cipher()[0],
                     resumed=int(tls.session_reused))
            a["ended_us"] = int(time.time() * 1e6)
            self.serve_http(a, tls, flush, fill)
        except ssl.SSLError as e:
            alert = next((n for k, n in ALERTS.items() if "ALERT_" + k in str(e.reason)), None)
            if alert is not None:
                a.update(outcome="peer_alert", alert_received=alert, error_text="alert %d received" % alert)
            else:
                a.update(outcome="tls_error", error_text=str(e.reason))
        except EOFError:
            if self.cut:
                a.update(outcome="server_error", error_text="shutdown")
            else:
                a.update(outcome="no_data" if a["bytes_in"] == 0 else "peer_closed", error_text="closed by peer")
        except ConnectionResetError:
            a.update(outcome="peer_reset", error_text="connection reset by peer")
        except socket.timeout:
            a.update(outcome="timeout", error_text="handshake timeout")
        except ValueError:
            a.update(outcome="not_tls", error_text="not a TLS handshake")
            try:
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
        except OSError as e:
            a.update(outcome="server_error", error_text=str(e))
        except Exception as e:
            a.update(outcome="server_error", error_text=repr(e))
        finally:
            try:
                a.setdefault("ended_us", int(time.time() * 1e6))
                sock.close()
                self.record(a)
            finally:
                with self.lock:
                    self.open_conns.pop(threading.current_thread(), None)

    def serve_http(self, a, tls, flush, fill):
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 16384:
            try:
                d = tls.read(16384)
                if not d:
                    return
                buf += d
            except ssl.SSLWantReadError:
                flush()
                try:
                    fill()
                except (EOFError, OSError):
                    return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return
        for line in buf.split(b"\r\n")[1:]:
            if line.lower().startswith(b"user-agent:"):
                a["user_agent"] = line[11:].strip().decode("latin-1")
        a["http_requests"] = 1
        body = ("<!doctype html><html><head><title>tlswatch stand-in</title></head><body>"
                "<h1>tlswatch stand-in</h1><p>You connected from %s with %s.</p></body></html>"
                % (a["peer_addr"], a["version"])).encode()
        tls.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)
        try:
            tls.unwrap()  # close_notify
        except ssl.SSLError:
            pass
        flush()

    def serve(self, listeners):
        for lsock in listeners:
            threading.Thread(target=self.accept_loop, args=(lsock,), daemon=True).start()
        signal.signal(signal.SIGHUP, lambda *_: self.reload())
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        notify("READY=1")
        self.status()
        while not self.stopping:
            time.sleep(0.1)
        notify("STOPPING=1")
        for lsock in listeners:
            lsock.close()
        deadline = time.time() + 3
        while self.open_conns and time.time() < deadline:
            time.sleep(0.05)
        self.cut = True
        with self.lock:
            for c in self.open_conns.values():
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        while self.open_conns and time.time() < deadline + 2:
            time.sleep(0.05)
        with self.lock:
            self.db.close()

    def reload(self):
        notify("RELOADING=1\nMONOTONIC_USEC=%d" % (time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6))
        try:
            self.load_cert()
        finally:
            notify("READY=1")

    def accept_loop(self, lsock):
        while not self.stopping:
            try:
                c, peer = lsock.accept()
            except OSError:
                return
            t = threading.Thread(target=self.handle, args=(c, peer, c.getsockname()), daemon=True)
            with self.lock:
                self.open_conns[t] = c
            t.start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", action="append", default=[])
    p.add_argument("--state-directory")
    p.add_argument("--database")
    p.add_argument("--schema", required=True)
    p.add_argument("--tls-max", default="1.3")
    p.add_argument("--journal", default="failures")
    p.add_argument("--handshake-timeout", type=float, default=10)
    args = p.parse_args()
    listeners = []
    if args.listen:
        for spec in args.listen:
            host, port = spec.rsplit(":", 1)
            host = host.strip("[]")
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, int(port)))
            s.listen(128)
            listeners.append(s)
    elif os.environ.get("LISTEN_PID") == str(os.getpid()):
        for fd in range(3, 3 + int(os.environ.get("LISTEN_FDS", "0"))):
            listeners.append(socket.socket(fileno=fd))
    if not listeners:
        sys.exit("tlswatchd-standin: no listening sockets (use --listen or socket activation)")
    Server(args).serve(listeners)


if __name__ == "__main__":
    main()

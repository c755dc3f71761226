#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Soak run: tlswatchd under a steady mix of real clients for DURATION seconds (see bench/soak.sh).

Every kind of client has its own loopback source address, so that the database's rows of a kind are
the rows of that address and `tlsreport --client ADDR` reports on one kind only:

  kind            source         what it does                                  the row it should leave
  curl_ok         127.0.0.2      curl --cacert CERT https://.../               ok
  curl_reject     127.0.0.3      curl without the certificate (unknown CA)     peer_alert 48
  py_reject       127.0.0.4      Python ssl, default trust store               peer_alert 48
  stall           127.0.0.5      TCP connect, sends nothing, held              timeout
  partial         127.0.0.6      the first 60 bytes of a ClientHello, held     timeout
  plain_http      127.0.0.7      GET / in plain HTTP on the TLS port           not_tls
  wget_ok         127.0.0.8      wget --ca-certificate CERT                    ok
  requests_ok     127.0.0.9      Python requests, verify=CERT                  ok
  openssl_reject  127.0.0.1      openssl s_client -verify_return_error         peer_alert 48
  flood           127.0.0.10-13  bursts of 50-200 connections opened at once,  no_data
                                 closed by the client after 1 s (at most
                                 min(50, per-client limit - 5) per address:
                                 more addresses if the limit is lower; the
                                 limit from tlswatchd --help, or from the
                                 options given after --)

Each client logs its source port (where the client can tell it) and what it saw into
OUT/clients/KIND.log. Every 10 s the daemon's RSS, open fds, the store's write queue (from the
daemon's own STATUS= line, received on a NOTIFY_SOCKET this script provides), the rows in the
database and the connections the clients made are written to OUT/samples.csv. At the end the daemon
is stopped (SIGTERM: it writes what is queued) and the script compares, per kind, the clients' logs
with the rows (by source port where known, else by count) and with `tlsreport attempts` over the
result, prints the figures and exits 1 on any mismatch (2 on a usage or start-up error).
"""
import argparse
import collections
import concurrent.futures
from contextlib import closing
import csv
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

SAMPLE_S = 10

# kind -> (source address, connections per second, what the client saw when things went as they should,
#          the outcome its row should have, the alert that row should carry)
KINDS = {
    'curl_ok': ('127.0.0.2', 4.0, 'ok', 'ok', None),
    'curl_reject': ('127.0.0.3', 2.0, 'verify_failed', 'peer_alert', 48),
    'py_reject': ('127.0.0.4', 2.0, 'verify_failed', 'peer_alert', 48),
    'stall': ('127.0.0.5', 1.0, 'closed_by_server', 'timeout', None),
    'partial': ('127.0.0.6', 1.0, 'closed_by_server', 'timeout', None),
    'plain_http': ('127.0.0.7', 2.0, 'http_error_reply', 'not_tls', None),
    'wget_ok': ('127.0.0.8', 1.0, 'ok', 'ok', None),
    'requests_ok': ('127.0.0.9', 1.0, 'ok', 'ok', None),
    'openssl_reject': ('127.0.0.1', 1.0, 'verify_failed', 'peer_alert', 48),
    'flood': ('127.0.0.10', None, 'closed_by_client', 'no_data', None),
}
FLOOD_EVERY_S = 15.0
FLOOD_SIZES = (50, 200)
FLOOD_HOLD_S = 1.0


def log(msg):
    print(f'soak: {msg}', flush=True)


class ClientLog:
    """OUT/clients/KIND.log: one line per connection: unix time at the end, source address, source port
    (- when the client cannot tell), what the client saw, seconds from connect (or the program's start) to
    the end, a detail."""

    def __init__(self, outdir):
        self.dir = os.path.join(outdir, 'clients')
        os.makedirs(self.dir, exist_ok=True)
        self.files = {k: open(os.path.join(self.dir, f'{k}.log'), 'w', buffering=1) for k in KINDS}
        self.lock = threading.Lock()
        self.entries = collections.defaultdict(list)  # kind -> [(addr, port, saw, elapsed, end time)]
        self.made = 0

    def add(self, kind, addr, port, saw, elapsed, detail=''):
        detail = ' '.join(str(detail).split())[:200]
        now = time.time()
        with self.lock:
            self.files[kind].write(f'{now:.3f} {addr} {port if port else "-"} {saw} {elapsed:.3f} {detail}\n')
            self.entries[kind].append((addr, port, saw, elapsed, now))
            self.made += 1

    def close(self):
        for f in self.files.values():
            f.close()


class Notify:
    """The daemon's sd_notify messages, through a NOTIFY_SOCKET of our own: the last STATUS= line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.5)
        self.path = path
        self.ready = threading.Event()
        self.status = ''
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                msg = self.sock.recv(65536).decode(errors='replace')
            except socket.timeout:
                continue
            except OSError:
                return
            for line in msg.split('\n'):
                if line == 'READY=1':
                    self.ready.set()
                elif line.startswith('STATUS='):
                    self.status = line[len('STATUS='):]

    def queued(self):
        m = re.search(r'(\d+) queued', self.status)
        return int(m.group(1)) if m else None

    def open_connections(self):
        m = re.match(r'(\d+) open', self.status)
        return int(m.group(1)) if m else None


def client_hello_bytes():
    """A real ClientHello (Python's OpenSSL), taken from a memory BIO."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname='localhost')
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class Soak:
    def __init__(self, a):
        self.a = a
        self.port = None
        self.url = None
        self.log = None
        self.stop_event = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=256)
        self.pending = set()
        self.pending_lock = threading.Lock()
        self.hello = client_hello_bytes()
        self.errors = []  # unexpected exceptions in the driver itself

    # --- the clients -------------------------------------------------------------------------------

    def run_cmd(self, argv, env=None, timeout=30):
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              env=dict(os.environ, **(env or {})))

    def c_curl(self, kind, trust):
        addr = KINDS[kind][0]
        argv = ['curl', '-sS', '-o', '/dev/null', '--max-time', '20', '--interface', addr,
                '-w', '%{local_port} %{http_code} %{time_total}'] + (['--cacert', self.ca] if trust else []) + [self.url]
        p = self.run_cmd(argv)
        out = p.stdout.decode(errors='replace').split()
        port = int(out[0]) if out and out[0].isdigit() and out[0] != '0' else None
        code = out[1] if len(out) > 1 else ''
        elapsed = float(out[2]) if len(out) > 2 else 0.0
        if p.returncode == 0 and code == '200':
            saw = 'ok'
        elif p.returncode == 60:  # CURLE_PEER_FAILED_VERIFICATION
            saw = 'verify_failed'
        else:
            saw = f'curl_exit_{p.returncode}'
        self.log.add(kind, addr, port, saw, elapsed, f'http {code} {p.stderr.decode(errors="replace")}')

    def c_wget(self, kind):
        addr = KINDS[kind][0]
        t0 = time.monotonic()
        p = self.run_cmd(['wget', '-q', '-O', '/dev/null', '--tries=1', '--timeout=20', f'--bind-address={addr}',
                          f'--ca-certificate={self.ca}', self.url])
        self.log.add(kind, addr, None, 'ok' if p.returncode == 0 else f'wget_exit_{p.returncode}',
                     time.monotonic() - t0, p.stderr.decode(errors='replace'))

    def c_openssl(self, kind):
        addr = KINDS[kind][0]
        t0 = time.monotonic()
        p = self.run_cmd(['openssl', 's_client', '-connect', f'127.0.0.1:{self.port}', '-verify_return_error',
                          '-brief'])
        err = p.stderr.decode(errors='replace')
        saw = 'verify_failed' if p.returncode != 0 and 'verify error' in err else f'openssl_exit_{p.returncode}'
        lines = [x for x in err.splitlines() if 'verify error' in x] or err.strip().splitlines() or ['']
        self.log.add(kind, addr, None, saw, time.monotonic() - t0, lines[0])

    def c_requests(self, kind):
        import requests
        addr = KINDS[kind][0]

        class Adapter(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args, **kw):
                kw['source_address'] = (addr, 0)
                super().init_poolmanager(*args, **kw)

        port, saw, detail = None, None, ''
        t0 = time.monotonic()
        with requests.Session() as s:
            s.mount('https://', Adapter())
            try:
                r = s.get(self.url, verify=self.ca, timeout=20, stream=True,
                          headers={'Connection': 'close'})
                try:
                    port = r.raw.connection.sock.getsockname()[1]
                except (AttributeError, OSError):
                    port = None
                r.content
                saw = 'ok' if r.status_code == 200 else f'http_{r.status_code}'
            except requests.exceptions.RequestException as e:
                saw, detail = 'requests_error', e
        self.log.add(kind, addr, port, saw, time.monotonic() - t0, detail)

    def connect_from(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, 0))
        s.settimeout(20)
        s.connect(('127.0.0.1', self.port))
        return s, s.getsockname()[1]

    def c_py_reject(self, kind):
        addr = KINDS[kind][0]
        ctx = ssl.create_default_context()  # the system's trust store: our certificate is not in it
        t0 = time.monotonic()
        s, port = self.connect_from(addr)
        try:
            with ctx.wrap_socket(s, server_hostname='127.0.0.1') as t:
                saw, detail = 'handshake_ok', t.version()
        except ssl.SSLCertVerificationError as e:
            saw, detail = 'verify_failed', e.verify_message
        except (ssl.SSLError, OSError) as e:
            saw, detail = 'error', e
        finally:
            s.close()
        self.log.add(kind, addr, port, saw, time.monotonic() - t0, detail)

    def wait_server_close(self, s, limit, t0):
        """Reads until the server closes; returns (how, seconds since t0)."""
        s.settimeout(limit)
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    return 'closed_by_server', time.monotonic() - t0
        except socket.timeout:
            return 'still_open', time.monotonic() - t0
        except ConnectionResetError:
            return 'closed_by_server', time.monotonic() - t0  # a reset counts as the server's close too

    def c_hold(self, kind, data):
        addr = KINDS[kind][0]
        t0 = time.monotonic()  # before connect(): a thread that waits for the GIL after it would count short
        s, port = self.connect_from(addr)
        try:
            if data:
                s.sendall(data)
            saw, secs = self.wait_server_close(s, self.a.handshake_timeout + 10, t0)
            if saw == 'closed_by_server' and secs < self.a.handshake_timeout - 0.5:
                saw = 'closed_early'  # not the handshake timeout: e.g. refused over a limit
        finally:
            s.close()
        self.log.add(kind, addr, port, saw, secs)

    def c_plain_http(self, kind):
        addr = KINDS[kind][0]
        t0 = time.monotonic()
        s, port = self.connect_from(addr)
        reply = b''
        try:
            s.sendall(b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
            s.settimeout(20)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                reply += d
        except OSError as e:
            reply += f' [{e}]'.encode()
        finally:
            s.close()
        first = reply.split(b'\r\n', 1)[0].decode(errors='replace')
        saw = 'http_error_reply' if re.match(r'HTTP/1\.[01] 4\d\d', first) else 'other_reply'
        self.log.add(kind, addr, port, saw, time.monotonic() - t0, first)

    def flood(self, n):
        """n connections at once, spread over the flood addresses (at most self.per_addr each), held
        FLOOD_HOLD_S, then closed by us."""
        socks = []
        addrs = self.flood_addrs[:-(-n // self.per_addr)]
        for i in range(n):
            addr = addrs[i % len(addrs)]
            t0 = time.monotonic()
            try:
                socks.append((addr, t0) + self.connect_from(addr))
            except OSError as e:
                self.log.add('flood', addr, None, 'connect_failed', time.monotonic() - t0, e)
        time.sleep(FLOOD_HOLD_S)
        for addr, t0, s, port in socks:
            s.setblocking(False)
            try:
                saw = 'server_closed_first' if s.recv(1) == b'' else 'server_sent_data'
            except BlockingIOError:
                saw = 'closed_by_client'  # what should happen: the server still waits for a ClientHello
            except OSError:
                saw = 'server_reset_first'
            s.close()
            self.log.add('flood', addr, port, saw, time.monotonic() - t0, f'burst of {n}')

    # --- scheduling --------------------------------------------------------------------------------

    def submit(self, fn, *args):
        def wrapped():
            try:
                fn(*args)
            except Exception as e:  # a driver bug, not a client outcome: reported at the end
                self.errors.append(f'{fn.__name__}{args}: {e!r}')
        f = self.pool.submit(wrapped)
        with self.pending_lock:
            self.pending.add(f)
        f.add_done_callback(lambda f: self.pending_discard(f))

    def pending_discard(self, f):
        with self.pending_lock:
            self.pending.discard(f)

    def jobs(self):
        return {
            'curl_ok': (self.c_curl, 'curl_ok', True),
            'curl_reject': (self.c_curl, 'curl_reject', False),
            'py_reject': (self.c_py_reject, 'py_reject'),
            'stall': (self.c_hold, 'stall', b''),
            'partial': (self.c_hold, 'partial', self.hello[:60]),
            'plain_http': (self.c_plain_http, 'plain_http'),
            'wget_ok': (self.c_wget, 'wget_ok'),
            'requests_ok': (self.c_requests, 'requests_ok'),
            'openssl_reject': (self.c_openssl, 'openssl_reject'),
        }

    def drive(self, until):
        """Starts every kind at its steady rate (random phase, evenly spaced) and a flood every
        FLOOD_EVERY_S; returns at `until` (monotonic)."""
        jobs = self.jobs()
        now = time.monotonic()
        nxt = {k: now + random.random() / (KINDS[k][1] * self.a.scale) for k in jobs}
        nxt_flood = now + FLOOD_EVERY_S / 2
        rng = random.Random(17)
        while True:
            now = time.monotonic()
            if now >= until:
                return
            for k, job in jobs.items():
                while nxt[k] <= now:
                    self.submit(*job)
                    nxt[k] += 1.0 / (KINDS[k][1] * self.a.scale)
            if now >= nxt_flood:
                self.submit(self.flood, rng.randint(*FLOOD_SIZES))
                nxt_flood += FLOOD_EVERY_S / self.a.scale
            time.sleep(max(0.0, min(min(nxt.values()), nxt_flood, until) - time.monotonic()))

    # --- the daemon --------------------------------------------------------------------------------

    def per_client_limit(self):
        """The daemon's per-client connection limit, if its --help names one (an option with "client"
        or "per-address" in its name and a default)."""
        h = subprocess.run([self.a.tlswatchd, '--help'], capture_output=True, text=True).stdout
        m = re.search(r'--([\w-]*(?:client|per-addr|per-address)[\w-]*)=N\b((?:(?!\n\s+-).)*?)\(default (\d+)',
                      h, re.S)
        return (m.group(1), int(m.group(3))) if m else (None, None)

    def start_daemon(self):
        state = os.path.join(self.a.out, 'state')
        os.makedirs(state, exist_ok=True)
        self.db = os.path.join(state, 'tlswatch.db')
        self.ca = os.path.join(state, 'tlswatchd-cert.pem')
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f'https://127.0.0.1:{self.port}/'
        self.notify = Notify(os.path.join(self.a.out, 'notify.sock'))
        argv = [self.a.tlswatchd, '--state-directory', state, '--listen', f'127.0.0.1:{self.port}',
                '--handshake-timeout', str(self.a.handshake_timeout), '--journal', 'none'] + self.a.daemon_args
        log('starting ' + ' '.join(argv))
        self.dlog = open(os.path.join(self.a.out, 'daemon.log'), 'wb')
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        env.pop('WATCHDOG_USEC', None)
        self.proc = subprocess.Popen(argv, stdout=self.dlog, stderr=subprocess.STDOUT, env=env)
        if not self.notify.ready.wait(15):
            self.proc.kill()
            sys.exit('soak: the daemon did not send READY=1 within 15 s; see ' + self.dlog.name)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.ca) and os.path.exists(self.db)) and time.monotonic() < deadline:
            time.sleep(0.1)

    def rss_kib(self):
        with open(f'/proc/{self.proc.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return None

    def fds(self):
        return len(os.listdir(f'/proc/{self.proc.pid}/fd'))

    def fd_list(self, name):
        """OUTDIR/fds-NAME.txt: what each of the daemon's fds is (for the idle comparison)."""
        d = f'/proc/{self.proc.pid}/fd'
        lines = []
        for fd in sorted(os.listdir(d), key=int):
            try:
                lines.append(f'{fd} {os.readlink(os.path.join(d, fd))}')
            except OSError:
                pass
        with open(os.path.join(self.a.out, f'fds-{name}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def cpu_s(self):
        with open(f'/proc/{self.proc.pid}/stat') as f:
            field = f.read().rsplit(')', 1)[1].split()
        return (int(field[11]) + int(field[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime

    def db_rows(self):
        with closing(sqlite3.connect(f'file:{self.db}?mode=ro', uri=True, timeout=10)) as c:
            return c.execute('SELECT count(*) FROM attempts').fetchone()[0]

    def sample(self, t0, phase):
        now, cpu = time.monotonic(), self.cpu_s()
        last = getattr(self, 'last_cpu', None)
        self.last_cpu = (now, cpu)
        row = {'t_s': round(now - t0, 1), 'phase': phase, 'rss_kib': self.rss_kib(),
               'cpu_pct': round(100 * (cpu - last[1]) / (now - last[0]), 1) if last else None,
               'fds': self.fds(), 'queued': self.notify.queued(), 'open': self.notify.open_connections(),
               'db_rows': self.db_rows(), 'client_connections': self.log.made}
        self.samples.append(row)
        self.csv.writerow(row)
        self.csvf.flush()
        return row

    def wait_idle(self, timeout=60):
        """Until the daemon reports no open connection and an empty queue, and the rows stop growing."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            time.sleep(2.5)  # STATUS= comes every 2 s
            n = self.db_rows()
            if self.notify.open_connections() == 0 and self.notify.queued() == 0 and n == last:
                return True
            last = n
        return False

    # --- the run -----------------------------------------------------------------------------------

    def run(self):
        a = self.a
        self.start_daemon()
        opt, limit = self.per_client_limit()
        for i, arg in enumerate(a.daemon_args):  # a limit given to the daemon after -- wins over the default
            if opt and arg.startswith(f'--{opt}='):
                limit = int(arg.split('=', 1)[1])
            elif opt and arg == f'--{opt}' and i + 1 < len(a.daemon_args):
                limit = int(a.daemon_args[i + 1])
        self.per_addr = max(1, min(50, limit - 5)) if limit else 50
        # as many flood source addresses as the largest burst needs at per_addr each: 127.0.0.10 and up
        self.flood_addrs = [f'127.0.0.{10 + i}' for i in range(min(240, -(-FLOOD_SIZES[1] // self.per_addr)))]
        log(f'daemon pid {self.proc.pid} on 127.0.0.1:{self.port}; per-client limit: '
            f'{f"--{opt} {limit}" if opt else "none in --help"}; flood bursts of '
            f'{FLOOD_SIZES[0]}-{FLOOD_SIZES[1]} with at most {self.per_addr} per source address '
            f'({self.flood_addrs[0]}-{self.flood_addrs[-1].rsplit(".", 1)[1]})')
        # warm-up: one client of each quick kind (the database's WAL files, TLS and HTTP paths), logged apart,
        # so that the idle figures before and after compare like with like
        self.log = ClientLog(os.path.join(a.out, 'warm-up'))
        for kind in ('curl_ok', 'curl_reject', 'py_reject', 'plain_http', 'requests_ok'):
            job = self.jobs()[kind]
            job[0](*job[1:])
        self.log.close()
        self.log = ClientLog(a.out)
        self.wait_idle(20)
        self.base_rows = self.db_rows()
        with closing(sqlite3.connect(f'file:{self.db}?mode=ro', uri=True, timeout=10)) as c:
            self.base_id = c.execute('SELECT coalesce(max(id), 0) FROM attempts').fetchone()[0]
        self.samples = []
        self.csvf = open(os.path.join(a.out, 'samples.csv'), 'w', newline='')
        self.csv = csv.DictWriter(self.csvf, ['t_s', 'phase', 'rss_kib', 'cpu_pct', 'fds', 'queued', 'open', 'db_rows',
                                              'client_connections'])
        self.csv.writeheader()
        t0 = time.monotonic()
        self.idle_before = self.sample(t0, 'idle-before')
        self.fd_list('idle-before')
        self.run_info = {'port': self.port, 'base_id': self.base_id, 'flood_addrs': self.flood_addrs,
                         'per_addr': self.per_addr, 'duration': a.duration,
                         'handshake_timeout': a.handshake_timeout, 'started': time.time()}
        self.write_run_info()
        log(f'idle: RSS {self.idle_before["rss_kib"]} KiB, {self.idle_before["fds"]} fds; driving for '
            f'{a.duration} s (clients log into {self.log.dir})')
        drv = threading.Thread(target=self.drive, args=(t0 + a.duration,))
        drv.start()
        nxt = t0 + SAMPLE_S
        while drv.is_alive():
            time.sleep(max(0, min(nxt, t0 + a.duration) - time.monotonic()))
            if time.monotonic() >= nxt and time.monotonic() < t0 + a.duration + 1:
                r = self.sample(t0, 'load')
                nxt += SAMPLE_S
                if int(r['t_s']) % 60 < SAMPLE_S:
                    log(f't={r["t_s"]:.0f}s RSS {r["rss_kib"]} KiB, CPU {r["cpu_pct"]} %, {r["fds"]} fds, {r["open"]} open, '
                        f'{r["queued"]} queued, {r["db_rows"]} rows, {r["client_connections"]} connections')
            if self.proc.poll() is not None:
                log(f'the daemon exited ({self.proc.returncode}) during the run')
                self.stop_event.set()
                break
        drv.join()
        log('load over; waiting for the clients still holding connections')
        self.pool.shutdown(wait=True)
        self.log.close()
        idle = self.wait_idle(60)
        self.idle_after = self.sample(t0, 'idle-after')
        self.fd_list('idle-after')
        log(f'idle again{"" if idle else " (NOT reached within 60 s)"}: RSS {self.idle_after["rss_kib"]} KiB, '
            f'{self.idle_after["fds"]} fds')
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = 'killed after 60 s'
        self.notify.stop = True
        self.run_info['daemon_exit'] = rc
        self.write_run_info()
        self.dlog.close()
        self.csvf.close()
        return self.report(rc)

    def write_run_info(self):
        with open(os.path.join(self.a.out, 'run.json'), 'w') as f:
            json.dump(self.run_info, f, indent=1)

    def load(self, out):
        """An earlier run's state from its output directory (samples.csv, clients/*.log, the database,
        run.json if it wrote one), for --reanalyze. Returns the daemon's exit status or None."""
        self.db = os.path.join(out, 'state', 'tlswatch.db')
        info = {}
        if os.path.exists(os.path.join(out, 'run.json')):
            with open(os.path.join(out, 'run.json')) as f:
                info = json.load(f)
        with open(os.path.join(out, 'samples.csv')) as f:
            self.samples = [{k: (v if k == 'phase' else (float(v) if '.' in v else int(v)) if v else None)
                             for k, v in r.items()} for r in csv.DictReader(f)]
        self.idle_before = next(s for s in self.samples if s['phase'] == 'idle-before')
        self.idle_after = next(s for s in self.samples if s['phase'] == 'idle-after')
        self.log = ClientLog.__new__(ClientLog)
        self.log.entries = collections.defaultdict(list)
        start = None
        for kind in KINDS:
            with open(os.path.join(out, 'clients', f'{kind}.log')) as f:
                for line in f:
                    t, addr, port, saw, elapsed = line.split(maxsplit=5)[:5]
                    e = (addr, None if port == '-' else int(port), saw, float(elapsed), float(t))
                    self.log.entries[kind].append(e)
                    start = min(start or e[4], e[4] - e[3])
        self.flood_addrs = info.get('flood_addrs') or sorted({e[0] for e in self.log.entries['flood']},
                                                             key=lambda a: int(a.rsplit('.', 1)[1]))
        last_t = max(s['t_s'] for s in self.samples if s['phase'] == 'load')
        self.a.duration = info.get('duration', int(round(last_t / SAMPLE_S)) * SAMPLE_S)
        self.a.handshake_timeout = info.get('handshake_timeout', self.a.handshake_timeout)
        if 'base_id' in info:
            self.base_id = info['base_id']
        else:  # the rows before the first client's connection (the warm-up's; an idle wait separates them)
            with closing(sqlite3.connect(f'file:{self.db}?mode=ro', uri=True, timeout=10)) as c:
                self.base_id = c.execute('SELECT coalesce(max(id), 0) FROM attempts WHERE started_us < ?',
                                         (int((start - 1) * 1e6),)).fetchone()[0]
        return info.get('daemon_exit')

    def report(self, rc):
        a = self.a
        bad = []
        load = [s for s in self.samples if s['phase'] == 'load']
        if not load:
            print('soak: no sample under load (duration shorter than 10 s?)')
            return 2
        rss = [s['rss_kib'] for s in load]
        fds = [s['fds'] for s in load]
        queued = [s['queued'] or 0 for s in load]
        cpu = [s['cpu_pct'] for s in load if s['cpu_pct'] is not None]
        win = min(600, a.duration / 3)
        first = [s for s in load if s['t_s'] <= win]
        last = [s for s in load if s['t_s'] > a.duration - win]

        def mean(xs):
            return sum(xs) / len(xs) if xs else float('nan')

        rss_first, rss_last = mean([s['rss_kib'] for s in first]), mean([s['rss_kib'] for s in last])
        slope = slope_per_min([(s['t_s'], s['rss_kib']) for s in last])  # KiB per minute, least squares
        growth = slope * (win / 60) / rss_last * 100  # over the last window, in % of its mean
        fds_first, fds_last = mean([s['fds'] for s in first]), mean([s['fds'] for s in last])
        drift = (rss_last / rss_first - 1) * 100
        print()
        print(f'== soak: {a.duration} s, {len(load)} samples every {SAMPLE_S} s, handshake timeout '
              f'{a.handshake_timeout} s; CSV: {os.path.join(a.out, "samples.csv")}')
        print(f'RSS KiB: min {min(rss)} max {max(rss)} first {rss[0]} last {rss[-1]}; idle before '
              f'{self.idle_before["rss_kib"]}, idle after {self.idle_after["rss_kib"]}')
        print(f'fds: min {min(fds)} max {max(fds)}; idle before {self.idle_before["fds"]}, idle after '
              f'{self.idle_after["fds"]}')
        rate = load[-1]['client_connections'] / load[-1]['t_s']
        print(f'load: {rate:.1f} connections/s; the daemon\'s CPU (100 % = one core): mean {mean(cpu):.1f} %, '
              f'max {max(cpu):.1f} %; open connections max {max(s["open"] or 0 for s in load)}')
        print(f'queue depth (records waiting for the database writer): max {max(queued)}, mean '
              f'{mean(queued):.1f}')
        print(f'drift (mean of the last {win:.0f} s vs the first {win:.0f} s): RSS {rss_first:.0f} -> '
              f'{rss_last:.0f} KiB ({drift:+.1f} %), fds {fds_first:.1f} -> {fds_last:.1f}')
        print(f'RSS over the last {win:.0f} s: {slope:+.0f} KiB/min, {growth:+.1f} % across it (SQLite\'s page '
              f'cache fills as the database grows, up to cache_size = 16 MiB (daemon/record/store-db.c); the '
              f'database: {os.path.getsize(self.db) / 2**20:.1f} MiB, its WAL '
              f'{(os.path.getsize(self.db + "-wal") if os.path.exists(self.db + "-wal") else 0) / 2**20:.1f} MiB)')
        if a.duration < 1200:
            print('RSS flatness not judged: run at least 1200 s (the page cache is still filling before)')
        elif growth > a.max_rss_growth:
            bad.append(f'RSS still grows over the last {win:.0f} s: {growth:+.1f} % (limit {a.max_rss_growth} %)')
        if self.idle_after['fds'] > self.idle_before['fds']:
            new = None
            try:
                with open(os.path.join(a.out, 'fds-idle-before.txt')) as f1, \
                        open(os.path.join(a.out, 'fds-idle-after.txt')) as f2:
                    before, after = set(f1.read().split('\n')), set(f2.read().split('\n'))
                new = sorted(after - before)
                print(f'fds when idle: gone {sorted(before - after)}, new {new}')
            except OSError:
                pass
            # One more descriptor on the database is SQLite's, not a leak: the checkpointer opens a connection
            # per checkpoint, and SQLite's unix VFS keeps a closed connection's fd open while the writer's
            # connection holds a lock on the same file, then reuses it at the next open (the 30-min run
            # ends with the same one fd more as a 2-min run).
            if new is not None and len(new) == 1 and new[0].split(' ', 1)[1] == os.path.realpath(self.db) and \
                    self.idle_after['fds'] == self.idle_before['fds'] + 1:
                print('   (one more fd on the database: the checkpointer\'s connection, kept by SQLite for reuse)')
            else:
                bad.append(f'fds when idle: {self.idle_before["fds"]} before, {self.idle_after["fds"]} after')
        if rc is None:
            print('the daemon\'s exit status on SIGTERM: not known (re-analysis of an older run)')
        elif rc != 0:
            bad.append(f'the daemon exited with {rc} on SIGTERM')

        with closing(sqlite3.connect(f'file:{self.db}?mode=ro', uri=True, timeout=10)) as c:
            rows = c.execute('SELECT peer_addr, peer_port, outcome, alert_received, id FROM attempts WHERE id > ? '
                             'ORDER BY id', (self.base_id,)).fetchall()
        by_addr = collections.defaultdict(list)
        for r in rows:
            by_addr[r[0]].append(r)
        entries = self.log.entries
        made = sum(len(v) for v in entries.values())
        T = a.handshake_timeout
        print(f'connections made by the clients: {made}; rows recorded during the run: {len(rows)}')
        print(f'per kind: "paired": by source port (or by count); "saw it": the client saw what it should '
              f'("planned": those less the late ones); '
              f'"late": the client took longer than the handshake timeout ({T} s, machine busy) and the row '
              f'says timeout; "wrong": a row that does not fit what its client saw')
        fmt = '{:<15} {:>6} {:>6} {:>11} {:>7} {:>5} {:>5}  {:<28} {}'
        print(fmt.format('kind', 'made', 'rows', 'paired', 'saw it', 'late', 'wrong', 'clients: planned = tlsreport',
                         'the rows\' outcomes (what the clients saw)'))
        report_rows = self.tlsreport_rows()
        total_late = 0
        for kind, (addr0, _, want_saw, want_outcome, want_alert) in KINDS.items():
            addrs = self.flood_addrs if kind == 'flood' else [addr0]
            ents = [e for e in entries.get(kind, []) if e[2] != 'connect_failed']
            krows = [r for ad in addrs for r in by_addr.get(ad, [])]
            want = want_outcome + (f'/{want_alert}' if want_alert is not None else '')
            outcomes = collections.Counter(row_outcome(r) for r in krows)
            saw = collections.Counter(e[2] for e in ents)
            wrong, late, unpaired, paired = 0, 0, 0, 0
            if ents and all(e[1] for e in ents):  # every client told its port: pair them
                how = 'port'
                cl, rw = collections.defaultdict(list), collections.defaultdict(list)
                for e in sorted(ents, key=lambda e: e[4]):
                    cl[(e[0], e[1])].append(e)
                for r in krows:  # in id order: a reused port's rows in the order they were written
                    rw[(r[0], r[1])].append(r)
                for key in cl.keys() | rw.keys():
                    ce, re_ = cl.get(key, []), rw.get(key, [])
                    unpaired += abs(len(ce) - len(re_))
                    paired += min(len(ce), len(re_))
                    for e, r in zip(ce, re_):
                        o = row_outcome(r)
                        if o not in allowed(e[2], e[3], T):
                            wrong += 1
                            if wrong <= 3:
                                print(f'   {kind}: {e[0]}:{e[1]} saw {e[2]} after {e[3]:.2f} s, row {o} (id {r[4]})')
                        elif o == 'timeout' and want_outcome != 'timeout' and e[2] == want_saw:
                            late += 1
            else:  # count only: each outcome no more often than the clients that allow it
                how = 'count'
                unpaired = abs(len(ents) - len(krows))
                paired = min(len(ents), len(krows))
                for o, n in outcomes.items():
                    wrong += max(0, n - sum(1 for e in ents if o in allowed(e[2], e[3], T)))
                if want_outcome != 'timeout':
                    late = min(outcomes.get('timeout', 0),
                               sum(1 for e in ents if e[2] == want_saw and e[3] >= T - LATE_MARGIN_S))
            total_late += late
            planned = saw.get(want_saw, 0) - late
            rep = report_rows.get(kind)
            n_rep = rep.get(want, 0) if rep is not None else None
            print(fmt.format(kind, len(ents), len(krows), f'{how} {paired}',
                             saw.get(want_saw, 0), late, wrong,
                             f'{want} {planned} = {"-" if n_rep is None else n_rep}',
                             f'{dict(outcomes)} ({dict(saw)})'))
            if unpaired:
                bad.append(f'{kind}: {unpaired} connections without a row or rows without a connection ({how})')
            if wrong:
                bad.append(f'{kind}: {wrong} rows do not fit what their clients saw')
            if planned != outcomes.get(want, 0):
                bad.append(f'{kind}: the clients saw {want_saw} {planned} times (not late), the rows say {want} '
                           f'{outcomes.get(want, 0)} times')
            if rep is not None and rep != outcomes:
                bad.append(f'{kind}: tlsreport says {dict(rep)}, the database {dict(outcomes)}')
            if rep is not None and n_rep != planned:
                bad.append(f'{kind}: tlsreport counts {want} {n_rep} times, the clients {planned}')
        if total_late:
            print(f'note: {total_late} clients were slower than the handshake timeout (the machine was busy); '
                  f'their rows say timeout, as they should')
        if self.errors:
            bad.append(f'{len(self.errors)} driver errors, e.g. {self.errors[:3]}')
        if a.plot:
            self.plot(a.plot)
        print()
        if bad:
            print('soak: FAILED:')
            for b in bad:
                print('  - ' + b)
            return 1
        print('soak: every connection has its row, tlsreport agrees with the clients, fds back to idle, RSS '
              + (f'{growth:+.1f} % over the last {win:.0f} s' if a.duration >= 1200 else 'not judged (short run)'))
        return 0

    def tlsreport_rows(self):
        """kind -> Counter of 'outcome[/alert]' from `tlsreport attempts --client ADDR -o json`."""
        if not self.a.tlsreport:
            return {}
        res = {}
        t_since = None
        with closing(sqlite3.connect(f'file:{self.db}?mode=ro', uri=True, timeout=10)) as c:
            t_since = c.execute('SELECT min(started_us) FROM attempts WHERE id > ?', (self.base_id,)).fetchone()[0]
        for kind, (addr0, *_rest) in KINDS.items():
            addrs = self.flood_addrs if kind == 'flood' else [addr0]
            cnt = collections.Counter()
            for addr in addrs:
                argv = [self.a.tlsreport, '--database', self.db, '--no-pager', '--all', '-o', 'json',
                        '--client', addr, 'attempts']
                if t_since:
                    argv[1:1] = ['--since', f'@{t_since / 1e6:.6f}']
                p = subprocess.run(argv, capture_output=True, text=True)
                if p.returncode != 0:
                    self.errors.append(f'{" ".join(argv)}: exit {p.returncode}: {p.stderr.strip()}')
                    cnt = None
                    break
                for a in parse_json_stream(p.stdout):
                    alert = a.get('alert_received')
                    cnt[a.get('outcome') + (f'/{alert}' if alert is not None else '')] += 1
            res[kind] = cnt
        return res

    def plot(self, path):
        try:
            import matplotlib
            matplotlib.use('Agg')
            import matplotlib.pyplot as plt
        except ImportError:
            log('no matplotlib (Debian: python3-matplotlib): no plot')
            return
        load = [s for s in self.samples if s['phase'] == 'load']
        t = [s['t_s'] / 60 for s in load]
        fig, ax = plt.subplots(5, 1, figsize=(8, 9), sharex=True)
        series = [('rss_kib', 'RSS (MiB)', 1 / 1024), ('fds', 'open fds', 1), ('open', 'open\nconnections', 1),
                  ('queued', 'write queue\ndepth', 1), ('cpu_pct', 'daemon CPU\n(% of a core)', 1)]
        for axis, (key, label, k) in zip(ax, series):
            axis.plot(t, [(s[key] or 0) * k for s in load], lw=1)
            axis.set_ylabel(label)
            axis.set_ylim(bottom=0)
            axis.grid(alpha=0.3)
        ax[-1].set_xlabel('minutes')
        rate = load[-1]['client_connections'] / load[-1]['t_s'] if load[-1]['t_s'] else 0
        fig.suptitle(f'tlswatchd soak: {self.a.duration / 60:g} min of mixed clients, ~{rate:.0f} '
                     'connections/s, sampled every 10 s')
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        log(f'plot: {path}')


LATE_MARGIN_S = 0.5  # a client this close to the handshake timeout may meet it (the daemon's timers coalesce)


def slope_per_min(points):
    """Least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx, my = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else 0.0


def row_outcome(r):
    """'outcome' or 'outcome/alert received' of a row (peer_addr, peer_port, outcome, alert_received, id)."""
    return r[2] + (f'/{r[3]}' if r[3] is not None else '')


def allowed(saw, elapsed, timeout):
    """The outcomes a row may have when its client saw `saw` after `elapsed` seconds."""
    fits = {'ok': {'ok'}, 'verify_failed': {'peer_alert/48'}, 'closed_by_server': {'timeout'},
            'http_error_reply': {'not_tls'}, 'closed_by_client': {'no_data'}}.get(saw, set())
    if elapsed >= timeout - LATE_MARGIN_S and saw not in ('ok', 'http_error_reply'):
        fits = fits | {'timeout'}  # the server's timeout came first: what the client saw after it is moot
    return fits


def parse_json_stream(text):
    """tlsreport's JSON: one object per line, or an array."""
    text = text.strip()
    if not text:
        return []
    if text.startswith('['):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def main():
    p = argparse.ArgumentParser(usage='%(prog)s [options] [DURATION] [-- TLSWATCHD-OPTIONS...]',
                                description='Soak run of tlswatchd with a steady mix of real clients.',
                                epilog='See bench/soak.sh and the README (Reliability).')
    p.add_argument('duration', nargs='?', type=int, default=1800, help='seconds of load (default 1800)')
    p.add_argument('--tlswatchd')
    p.add_argument('--tlsreport')
    p.add_argument('--out', help='output directory (default: a new one under /tmp)')
    p.add_argument('--plot', help='write a PNG of RSS, fds, open connections and queue depth here')
    p.add_argument('--handshake-timeout', type=int, default=5)
    p.add_argument('--scale', type=float, default=1.0, help='multiply every rate (default 1: ~25 connections/s)')
    p.add_argument('--max-rss-growth', type=float, default=5.0,
                   help='fail if RSS grows by more over the last window (10 min; percent, default 5)')
    p.add_argument('--reanalyze', metavar='OUTDIR', help='only print the figures of an earlier run\'s output')
    argv = sys.argv[1:]
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    a = p.parse_args(argv[:argv.index('--')] if '--' in argv else argv)
    a.daemon_args = extra  # after --: more tlswatchd options
    if not a.tlswatchd and not a.reanalyze:
        p.error('--tlswatchd is needed')
    if a.duration < 30:
        p.error('duration: at least 30 s')
    if not a.reanalyze:
        a.out = a.out or tempfile.mkdtemp(prefix='tlswatch-soak-')
        os.makedirs(a.out, exist_ok=True)
    for tool in ('curl', 'wget', 'openssl'):
        if not shutil.which(tool):
            p.error(f'{tool} is needed (Debian package {tool})')
    if importlib.util.find_spec('requests') is None:
        p.error('Python requests is needed (Debian package python3-requests)')
    if a.reanalyze:
        a.out = a.reanalyze
        s = Soak(a)
        sys.exit(s.report(s.load(a.reanalyze)))
    s = Soak(a)
    try:
        rc = s.run()
    finally:
        if getattr(s, 'proc', None) and s.proc.poll() is None:
            s.proc.kill()
    log(f'output in {a.out}')
    sys.exit(rc)


if __name__ == '__main__':
    main()

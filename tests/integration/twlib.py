"""Shared helpers for tlswatch's integration tests: TAP output, free ports, a tlswatchd under test,
real clients (curl, openssl, gnutls-cli, Python's ssl), and the attempts database.

Every process a test starts is killed with its process group when the test ends, also on failure."""
import atexit
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

_n = 0
_failed = 0
_children = []


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(f"{'' if cond else 'not '}ok {_n} - {name}", flush=True)
    if not cond:
        _failed += 1
        if diag is not None:
            for line in str(diag).splitlines() or ['']:
                print(f"#   {line}", flush=True)
    return cond


def eq(got, want, name):
    return ok(got == want, name, f"got  {got!r}\nwant {want!r}")


def diag(msg):
    for line in str(msg).splitlines():
        print(f"# {line}", flush=True)


def done():
    """Ends the TAP stream; a test that checked nothing fails."""
    print(f"1..{_n}", flush=True)
    sys.exit(1 if _failed or _n == 0 else 0)


def _cleanup():
    for p in _children:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def spawn(argv, **kw):
    """Starts a process in its own process group, killed when the test exits."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _children.append(p)
    return p


def free_port():
    """A TCP port free on both 127.0.0.1 and ::1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(('::1', port))
            return port
        except OSError:
            continue
    raise RuntimeError('no free port')


def wait_port(host, port, timeout=10.0, proc=None):
    """Waits until host:port accepts a connection (closed at once); returns that connection's source port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f'process exited with {proc.returncode} before listening')
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                return s.getsockname()[1]  # the probe's port: its row is the daemon's first
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f'{host}:{port} not listening after {timeout} s')


def wait_for(cond, timeout=10.0, interval=0.02):
    """Polls cond() until it returns something true; returns that value, or the last false one after
    timeout seconds. Tests wait for the condition they need, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def wait_closed(sock, timeout=10.0):
    """Reads and discards until the peer closes sock (EOF or reset); returns whether it did in time."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionError:
        return True
    except (socket.timeout, OSError):
        return False


TLSWATCHD = os.environ.get('TLSWATCHD', 'tlswatchd')
TLSREPORT = os.environ.get('TLSREPORT', 'tlsreport')


class Daemon:
    """tlswatchd on loopback with its own state directory. Use as a context manager."""

    def __init__(self, *args, port=None, v6=True, state=None, socket_activate=False, env=None):
        self.port = port or free_port()
        self.may_move = port is None  # until it first listens: a restart keeps its port
        self.tmp = None
        if state is None:
            self.tmp = tempfile.TemporaryDirectory(prefix='tlswatch-test-')
            state = self.tmp.name
        self.state = state
        self.db = os.path.join(state, 'tlswatch.db')
        self.args = list(args)
        if '--database' in self.args[:-1]:
            self.db = self.args[self.args.index('--database') + 1]
        self.probe = None  # (source port, now_us() before) of start()'s probe while its row is awaited
        self.v6 = v6
        self.socket_activate = socket_activate
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = os.path.join(state, 'daemon.log')

    def start(self):
        """Starts the daemon and waits until it listens. free_port() only finds a port that was free: until
        the daemon binds it, any process's connect() may take it as its source port (EADDRINUSE). Then,
        unless the port was given or has been listened on, the daemon is started again on another one."""
        for _ in range(5):
            size = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            try:
                self._start()
                self.may_move = False
                return self
            except RuntimeError:
                self.log.close()
                if not self.may_move or self.proc.poll() is None or 'Address already in use' not in self.output():
                    raise
                diag(f'port {self.port} was taken before the daemon bound it: another one')
                os.truncate(self.log_path, size)
                self.port = free_port()
        raise RuntimeError('no port could be bound')

    def _start(self):
        addrs = [f'127.0.0.1:{self.port}'] + ([f'[::1]:{self.port}'] if self.v6 else [])
        if self.socket_activate:
            argv = ['systemd-socket-activate']
            for a in addrs:
                argv += ['-l', a]
            argv += [TLSWATCHD, '--state-directory', self.state] + self.args
        else:
            argv = [TLSWATCHD, '--state-directory', self.state] + self.args
            for a in addrs:
                argv += ['--listen', a]
        self.log = open(self.log_path, 'ab')
        self.proc = spawn(argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        since = now_us()
        probe = wait_port('127.0.0.1', self.port, proc=self.proc)  # with socket activation, before the daemon
        if '--no-record' not in self.args:
            self.probe = (probe, since)
        if self.socket_activate:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10.0):
        """Waits for a TLS handshake to complete (the daemon itself answers, not just the socket)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                tls_get(self.port, '/api/self')
                return
            except (OSError, ssl.SSLError):
                time.sleep(0.05)
        raise RuntimeError('daemon did not answer')

    def __enter__(self):
        return self.start()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def __exit__(self, *exc):
        self.stop()
        self.log.close()
        if self.tmp:
            self.tmp.cleanup()

    def output(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def accepted(self, socks):
        """Whether the daemon has accepted these client sockets (connected to 127.0.0.1:port): the kernel
        gives a connection's server side an inode in /proc/net/tcp only once accept() took it."""
        want = {s.getsockname()[1] for s in socks}
        seen = set()
        with open('/proc/net/tcp') as f:
            next(f)
            for line in f:
                field = line.split()
                local, remote, inode = field[1], field[2], field[9]
                if int(local.split(':')[1], 16) == self.port and inode != '0':
                    seen.add(int(remote.split(':')[1], 16))
        return want <= seen

    def wait_accepted(self, socks, timeout=10.0):
        """Waits until the daemon has accepted every one of these client sockets."""
        return wait_for(lambda: self.accepted(socks), timeout)

    def settle(self, quiet=0.4, timeout=10.0):
        """Waits until no new row has arrived for `quiet` seconds (the store commits every 200 ms), so
        that a test starts from a known state: first for the row of start()'s probe (a connection without
        a byte), which a loaded machine (ASan) may write more than `quiet` seconds after the daemon started."""
        deadline = time.monotonic() + timeout
        if self.probe:
            self.row_of(*self.probe, timeout=timeout)
            self.probe = None
        n, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            m = len(query(self.db, 'SELECT id FROM attempts'))
            if m != n:
                n, since = m, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return n
            time.sleep(0.05)
        return n

    def row_of(self, port, since_us, timeout=5.0):
        """The row of the connection from this client port that started at or after since_us (now_us()
        taken before the client connected), waiting up to timeout for it; {} if none. Never by the port
        alone: the kernel gives a closed connection's source port to a later one (on Linux 6, after some
        3,000 connections from one address to one port), and the older row would be found before the new
        one is written."""
        rows = self.rows('peer_port = ? AND started_us >= ?', (port, since_us), timeout=timeout, count=1)
        return rows[-1] if rows else {}

    def rows(self, where='1', params=(), timeout=5.0, count=None):
        """Rows of attempts as dicts; waits (up to timeout) until at least `count` rows match."""
        deadline = time.monotonic() + timeout
        while True:
            rows = query(self.db, f'SELECT * FROM attempts WHERE {where} ORDER BY id', params)
            if count is None or len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def now_us():
    """The wall clock in microseconds, the daemon's clock for started_us (taken at accept()): taken before a
    client connects, it is at or before its attempt's started_us."""
    return time.time_ns() // 1000


def query(db, sql, params=()):
    if not os.path.exists(db):
        return []
    con = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    con.text_factory = bytes
    try:
        out = []
        for r in con.execute(sql, params):
            d = {}
            for k in r.keys():
                v = r[k]
                if isinstance(v, bytes):
                    try:
                        v = v.decode()
                    except UnicodeDecodeError:
                        pass
                d[k] = v
            out.append(d)
        return out
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def insecure_context(version=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if version == '1.2':
        c.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == '1.3':
        c.minimum_version = ssl.TLSVersion.TLSv1_3
    return c


def tls_exchange(port, data, host='127.0.0.1', version=None, timeout=10):
    """Sends data over a new TLS connection (Python's ssl module) and reads until the server closes.
    Returns (bytes received, negotiated TLS version)."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as raw:
        raw.settimeout(timeout)
        raw.connect((host, port))
        with insecure_context(version).wrap_socket(raw) as s:
            s.sendall(data)
            received = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return received, s.version()
                received += chunk


def tls_get(port, path='/', host='127.0.0.1', method='GET', version=None, headers=None, timeout=10):
    """One HTTPS request with Python's ssl module; returns (status, headers dict, body, tls version)."""
    hdrs = {'Host': 'localhost', 'Connection': 'close', **(headers or {})}
    req = f'{method} {path} HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in hdrs.items()) + '\r\n'
    data, tls_version = tls_exchange(port, req.encode(), host=host, version=version, timeout=timeout)
    return parse_http(data) + (tls_version,)


def parse_http(data):
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def run(argv, timeout=30, input=None):
    return subprocess.run(argv, capture_output=True, timeout=timeout, input=input)


def curl(*args, timeout=30):
    return run(['curl', '-sS', '--max-time', str(timeout)] + list(args), timeout=timeout + 5)


def s_client(port, *args, host='127.0.0.1', input=b'', timeout=20):
    return run(['openssl', 's_client', '-connect', f'{host}:{port}', '-servername', 'localhost'] + list(args),
               input=input, timeout=timeout)


def json_get(port, path='/api/self', **kw):
    status, headers, body, version = tls_get(port, path, **kw)
    return json.loads(body) if status == 200 else None


# ---- hand-built ClientHellos (raw bytes, for what no real client sends) ----

def _u8(b):
    return bytes([len(b)]) + b


def _u16(b):
    return len(b).to_bytes(2, 'big') + b


def _ext(t, body):
    return t.to_bytes(2, 'big') + _u16(body)


def client_hello(sni=None, alpn=None, versions=(0x0304, 0x0303), ciphers=(0x1301, 0x1302, 0xc02b, 0xc02c),
                 groups=(0x001d, 0x0017), extra=b'', legacy=0x0303):
    """A ClientHello handshake message (no record header). sni/alpn are raw bytes (alpn: a list)."""
    exts = b''
    if sni is not None:
        exts += _ext(0x0000, _u16(b'\x00' + _u16(sni)))
    exts += _ext(0x000a, _u16(b''.join(g.to_bytes(2, 'big') for g in groups)))
    exts += _ext(0x000b, _u8(b'\x00'))
    exts += _ext(0x000d, _u16(bytes.fromhex('0403080404010503')))
    if alpn is not None:
        exts += _ext(0x0010, _u16(b''.join(_u8(p) for p in alpn)))
    if 0x0304 in versions:
        exts += _ext(0x002b, _u8(b''.join(v.to_bytes(2, 'big') for v in versions)))
        exts += _ext(0x0033, _u16(b'\x00\x1d' + _u16(os.urandom(32))))
        exts += _ext(0x002d, _u8(b'\x01'))
    exts += extra
    body = (legacy.to_bytes(2, 'big') + os.urandom(32) + _u8(os.urandom(32)) +
            _u16(b''.join(c.to_bytes(2, 'big') for c in ciphers)) + _u8(b'\x00') + _u16(exts))
    return b'\x01' + len(body).to_bytes(3, 'big') + body


def records(msg, size=None, content_type=22):
    """msg split into TLS records of at most `size` bytes."""
    size = size or 16384
    out = b''
    for i in range(0, len(msg), size):
        chunk = msg[i:i + size]
        out += bytes([content_type, 3, 1]) + len(chunk).to_bytes(2, 'big') + chunk
    return out


def read_records_until(sock, pred, timeout=5.0):
    """Reads TLS records from sock until pred(type, body) is true; returns the list of (type, body)."""
    sock.settimeout(timeout)
    buf = b''
    got = []
    while True:
        while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], 'big'):
            n = int.from_bytes(buf[3:5], 'big')
            rec = (buf[0], buf[5:5 + n])
            buf = buf[5 + n:]
            got.append(rec)
            if pred(*rec):
                return got
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return got
        if not data:
            return got
        buf += data


def reset_close(sock):
    """Close with RST (SO_LINGER 0)."""
    import struct
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    sock.close()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mass disconnect and memory after a peak (issue 17, items 3 and 6c).

    bench/mass-close.py [--connections N] [--rounds R] [--idle S] [BUILDDIR]   (default: build-bench)

Starts BUILDDIR/daemon/tlswatchd (build it in release mode) on 127.0.0.1, then:
  1. a fresh client's latency, unloaded: a real TLS client (Python's ssl) that connects, makes a full
     handshake, sends GET / (Connection: close) and reads the whole page until the server closes, in a
     loop, as a browser would fetch the page;
  2. R rounds of: open N connections that each send the first 60 bytes of a real ClientHello and stall
     (from source addresses 127.1.x.y, 250 per address), wait until tlswatchd holds them all, close
     them all at once, wait until tlswatchd has closed every one of them. Odd rounds run without the
     fresh client: tlswatchd's CPU time (utime + stime, all threads) over the mass close is the
     figure. Even rounds run the fresh client through the close: its latency during the close (the
     connections it starts between the first close and tlswatchd's last one, and for 0.5 s after);
  3. tlswatchd's RSS before the first peak, at the peak and right after the close; then N connections
     that send a whole ClientHello (tlswatchd answers with its flight and holds a TLS context for each),
     closed at once: the RSS at that peak and after S seconds idle (tlswatchd returns freed memory to the
     system once the server has been quiet for a while after a peak, and logs what that trim cost:
     printed here).
Prints key=value lines, then a table with ratios against the unloaded baseline of the same run.
Nothing is a pass/fail test: the figures are printed next to the targets.
"""
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

args = sys.argv[1:]
n_conns, rounds, idle_s, builddir = 10000, 4, 15.0, None
while args:
    a = args.pop(0)
    if a == "--connections":
        n_conns = int(args.pop(0))
    elif a == "--rounds":
        rounds = int(args.pop(0))
    elif a == "--idle":
        idle_s = float(args.pop(0))
    elif a in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    else:
        builddir = a
src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
builddir = os.path.abspath(builddir or os.path.join(src, "build-bench"))
tlswatchd = os.path.join(builddir, "daemon", "tlswatchd")
if not os.access(tlswatchd, os.X_OK):
    sys.exit(f"missing {tlswatchd}: meson setup {builddir} -Dbuildtype=release && ninja -C {builddir}")

load_before = " ".join(open("/proc/loadavg").read().split()[0:3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < n_conns + 200:
    sys.exit(f"RLIMIT_NOFILE's hard limit {hard} is below {n_conns + 200}: use fewer --connections")
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # tlswatchd inherits it too

tmp = tempfile.mkdtemp(prefix="tlswatch-massclose.")
port = 20000 + os.getpid() % 20000
log_path = os.path.join(tmp, "tlswatchd.log")
log = open(log_path, "w")
daemon = subprocess.Popen(
    [tlswatchd, "--listen", f"127.0.0.1:{port}", "--state-directory", tmp, "--database", os.path.join(tmp, "db"),
     "--threads", "2", "--log-level", "info", "--handshake-timeout", "3600",
     "--max-connections", str(n_conns + 100), "--max-connections-per-client", "0"],
    stdout=log, stderr=subprocess.STDOUT)
pid = daemon.pid
tick = os.sysconf("SC_CLK_TCK")


def cpu_s():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def sockets_held():  # tlswatchd's open sockets
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("tlswatchd did not start: " + open(log_path).read())

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def fetch_page():
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("bad response: %r" % data[:40])
    return t, time.monotonic() - t


class Fresh(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.errors, self.stop = [], 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append(fetch_page())
            except (OSError, RuntimeError):
                self.errors += 1


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000 if v else float("nan")


# the first 60 bytes of a real ClientHello (Python's ssl into a memory BIO)
bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(bio_in, bio_out, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
full_hello = bio_out.read()
partial = full_hello[:60]


def open_held(payload=partial):
    held, failed = [], 0
    for i in range(n_conns):
        s = socket.socket()
        try:
            s.bind((f"127.1.{i // 250 // 250}.{1 + i // 250 % 250}", 0))
            s.connect(("127.0.0.1", port))
            s.send(payload)
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    return held, failed


def wait_sockets(target, limit_s):  # until tlswatchd holds at most/least target sockets
    t = time.monotonic()
    while time.monotonic() - t < limit_s:
        n = sockets_held()
        if (target > 0 and n >= target) or (target <= 0 and n <= -target):
            return True
        time.sleep(0.05)
    return False


for _ in range(20):  # warm-up: the page's code paths, the certificate, the database
    fetch_page()
time.sleep(2.5)  # the warm-up's connections end their lingering close
base_socks = sockets_held()
rss_start = rss_mib()
fresh = Fresh()
t0 = time.monotonic()
fresh.start()
time.sleep(4)
fresh.stop.set()
fresh.join()
unloaded = [d for _, d in fresh.samples]
print(f"unloaded: requests={len(unloaded)} p50_ms={pct(unloaded, 50):.2f} p99_ms={pct(unloaded, 99):.2f}")

cpu_rounds, wall_rounds, during, errors, rss_peak, rss_closed, opened_fail = [], [], [], 0, 0, 0, 0
for r in range(1, rounds + 1):
    measure_cpu = r % 2 == 1
    held, failed = open_held()
    opened_fail += failed
    if not wait_sockets(base_socks + len(held), 120):
        print(f"round {r}: tlswatchd holds only {sockets_held() - base_socks} of {len(held)}", file=sys.stderr)
    time.sleep(1)
    rss_peak = max(rss_peak, rss_mib())
    fresh = None
    if not measure_cpu:
        fresh = Fresh()
        fresh.start()
        time.sleep(1)
    c0, t_close = cpu_s(), time.monotonic()
    for s in held:
        s.close()
    done = wait_sockets(-base_socks, 300)
    t_done = time.monotonic()
    if measure_cpu:
        time.sleep(0.5)  # what tlswatchd still does (the store's commit, the journal) counts too
        cpu_rounds.append(cpu_s() - c0)
        wall_rounds.append(t_done - t_close)
        print(f"round {r}: closed={len(held)} cpu_s={cpu_rounds[-1]:.3f} close_wall_s={t_done - t_close:.3f}"
              f"{'' if done else ' (not all closed in 300 s)'}")
    else:
        time.sleep(0.5)
        fresh.stop.set()
        fresh.join()
        errors += fresh.errors
        d = [x for t, x in fresh.samples if t_close <= t <= t_done + 0.5]
        during += d
        print(f"round {r}: closed={len(held)} close_wall_s={t_done - t_close:.3f} fresh_requests={len(d)}"
              f" p50_ms={pct(d, 50):.2f} p99_ms={pct(d, 99):.2f} max_ms={max(d) * 1000 if d else 0:.2f}")
    rss_closed = rss_mib()
    time.sleep(1)

# memory after a peak of connections that each hold a TLS context: N whole ClientHellos (tlswatchd
# answers each with its flight and waits for the client's), closed at once, then tlswatchd idle
time.sleep(1)
rss_full_start = rss_mib()
held, failed = open_held(full_hello)
opened_fail += failed
wait_sockets(base_socks + len(held), 300)
time.sleep(2)
rss_full_peak = rss_mib()
c0 = cpu_s()
for s in held:
    s.close()
wait_sockets(-base_socks, 300)
time.sleep(0.5)
cpu_full = cpu_s() - c0
print(f"whole ClientHellos: held={len(held)} rss_before_mib={rss_full_start:.0f} rss_peak_mib={rss_full_peak:.0f}"
      f" close_cpu_s={cpu_full:.3f}")
# the fresh client runs through the idle time too: what tlswatchd's trim costs a visitor
fresh = Fresh()
fresh.start()
t_idle = time.monotonic()
rss_idle = rss_mib()
while time.monotonic() - t_idle < idle_s:
    time.sleep(0.5)
    rss_idle = rss_mib()
fresh.stop.set()
fresh.join()
idle_lat = [x for _, x in fresh.samples]
print(f"idle after the peak (the trim): requests={len(idle_lat)} p50_ms={pct(idle_lat, 50):.2f}"
      f" p99_ms={pct(idle_lat, 99):.2f} max_ms={max(idle_lat, default=0) * 1000:.1f}")
daemon.terminate()
daemon.wait(timeout=60)
log.close()
trims = [l for l in open(log_path) if "freed memory" in l]
for l in trims:
    print("tlswatchd: " + l.strip())
trim_ms = [float(m.group(1)) for l in trims for m in [re.search(r"in ([0-9.]+) ms", l)] if m]
shutil.rmtree(tmp, ignore_errors=True)

print(f"summary: connections={n_conns} cpu_s={statistics.median(cpu_rounds):.3f}"
      f" close_wall_s={statistics.median(wall_rounds):.3f} unloaded_p50_ms={pct(unloaded, 50):.2f}"
      f" unloaded_p99_ms={pct(unloaded, 99):.2f} during_p50_ms={pct(during, 50):.2f}"
      f" during_p99_ms={pct(during, 99):.2f} during_max_ms={max(during, default=0) * 1000:.1f}"
      f" during_requests={len(during)} rss_start_mib={rss_start:.0f}"
      f" rss_peak_mib={rss_peak:.0f} rss_closed_mib={rss_closed:.0f} rss_full_peak_mib={rss_full_peak:.0f}"
      f" full_close_cpu_s={cpu_full:.3f} rss_idle_mib={rss_idle:.0f}"
      f" trims={len(trims)} trim_ms={max(trim_ms) if trim_ms else 0:.1f}"
      f" idle_p99_ms={pct(idle_lat, 99):.2f} idle_max_ms={max(idle_lat, default=0) * 1000:.1f}")
print(f"\nmass close of {n_conns} connections holding a partial ClientHello, tlswatchd with 2 threads;"
      f" load average before / after: {load_before} / {' '.join(open('/proc/loadavg').read().split()[0:3])}")
rows = [
    ("tlswatchd CPU for one mass close (s), median [min-max]",
     f"{statistics.median(cpu_rounds):.3f} [{min(cpu_rounds):.3f}-{max(cpu_rounds):.3f}]", "< 0.5"),
    ("  time until tlswatchd closed them all (s), median", f"{statistics.median(wall_rounds):.3f}", ""),
    ("  CPU per closed connection (us)", f"{statistics.median(cpu_rounds) / n_conns * 1e6:.1f}", ""),
    ("fresh client (handshake + GET /), unloaded p50 / p99 (ms)",
     f"{pct(unloaded, 50):.2f} / {pct(unloaded, 99):.2f}  ({len(unloaded)} requests)", ""),
    ("fresh client during the close p50 / p99 (ms)",
     f"{pct(during, 50):.2f} / {pct(during, 99):.2f}  ({len(during)} requests, {errors} failed)", ""),
    ("fresh client's longest wait during the close (ms) / unloaded p99",
     f"{max(during, default=0) * 1000:.0f} / {pct(unloaded, 99):.2f}", ""),
    ("fresh client p50 during the close / unloaded", f"{pct(during, 50) / pct(unloaded, 50):.2f}", ""),
    ("fresh client p99 during the close / unloaded", f"{pct(during, 99) / pct(unloaded, 99):.2f}", "<= 3"),
    ("tlswatchd RSS (MiB): start / peak with the partial ClientHellos / right after their close",
     f"{rss_start:.0f} / {rss_peak:.0f} / {rss_closed:.0f}", ""),
    (f"  then {n_conns} whole ClientHellos held (a TLS context each): peak / {idle_s:.0f} s idle after their close",
     f"{rss_full_peak:.0f} / {rss_idle:.0f}", ""),
    ("  freed memory kept after idle (idle - start, MiB)", f"{rss_idle - rss_start:.0f}", ""),
    ("  tlswatchd CPU to close the whole-ClientHello connections (s)", f"{cpu_full:.3f}", ""),
    ("  trims of freed memory (tlswatchd's log): count / ms each (in its own thread)",
     f"{len(trims)} / " + (", ".join(f"{x:.1f}" for x in trim_ms) if trim_ms else "-"), ""),
    ("  fresh client while idle after the peak (through the trim): p99 / longest (ms)",
     f"{pct(idle_lat, 99):.2f} / {max(idle_lat, default=0) * 1000:.1f}  ({len(idle_lat)} requests)", ""),
    ("connections that failed to open", f"{opened_fail}", "0"),
]
w = max(len(x[0]) for x in rows)
print(f"{'figure':<{w}}  {'value':<44} target")
for what, value, target in rows:
    print(f"{what:<{w}}  {value:<44} {target}")

#!/usr/bin/env python3
"""tlsreport -f against the real daemon and real clients, started before both: it waits for the database
the daemon creates, then prints each attempt while the daemon still runs (read from its pipe as it comes)
and each sequence once its story is known: headless Chromium without a certificate bypass fails with alert
46, then Chromium with --ignore-certificate-errors connects (its sequence is printed then, ok, named by its
User-Agent, with its diagnosis); curl without -k to another name is abandoned once the retry window has
passed, and says so; curl -k is clean; a connection recorded after a later one still ends its sequence. At the end the sequences it printed are the finished sequences of a
batch tlsreport over the same database, and SIGINT ends it at once with status 0 and no partial line."""
import json
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
import unicodedata

from twlib import TLSREPORT, Daemon, curl, done, eq, free_port, ok, run, spawn, wait_for

# --retry-window, seconds: the second Chromium's success row is written when it exits, which must come
# within WINDOW + GRACE of the first Chromium's failures for -f to join them as the batch report does (with
# 10 s, a loaded machine once took longer)
WINDOW = 20
GRACE = 5  # tlsreport -f declares a sequence abandoned this long after its window passed

if not shutil.which('chromium'):
    print('1..0 # SKIP chromium is missing (scripts/setup-debian.sh test installs it)')
    sys.exit(0)
for p in ('curl',):
    if not shutil.which(p):
        print(f'1..0 # SKIP {p} is missing')
        sys.exit(0)


class Follower:
    """tlsreport -f -o json, its stdout read line by line as it comes, each line with the time it came."""

    def __init__(self, db, since_us, output='json', env=None):
        self.lines = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.err = tempfile.TemporaryFile()
        self.proc = spawn([TLSREPORT, '-f', '--database', db, '-o', output, '--all',
                           '--retry-window', str(WINDOW), '--since', f'@{since_us / 1e6:.6f}'],
                          stdout=subprocess.PIPE, stderr=self.err, env=env)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b''):
            with self.lock:
                self.lines.append((time.monotonic(), raw.decode()))

    def objects(self, kind=None):
        with self.lock:
            lines = list(self.lines)
        out = []
        for _, text in lines:
            o = json.loads(text)
            if kind is None or o.get('type') == kind:
                out.append(o)
        return out

    def text(self):
        with self.lock:
            return [text for _, text in self.lines]

    def attempt_ids(self):
        return {o['id'] for o in self.objects('attempt')}

    def arrival(self, attempt_id):
        """When the line of this attempt came (monotonic), or None."""
        with self.lock:
            for when, text in self.lines:
                o = json.loads(text)
                if o.get('type') == 'attempt' and o.get('id') == attempt_id:
                    return when
        return None

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors='replace')


def chromium(url, *flags):
    prof = tempfile.mkdtemp(prefix='tlswatch-follow-chromium-')
    try:
        return run(['timeout', '-k', '5', '40', 'chromium', '--headless', '--no-sandbox', '--disable-gpu',
                    '--disable-quic', '--no-first-run', '--disable-background-networking',
                    '--disable-component-update', '--disable-sync', f'--user-data-dir={prof}'] + list(flags)
                   + ['--dump-dom', url], timeout=50)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def new_rows(d, after):
    import sqlite3
    try:
        c = sqlite3.connect(f'file:{d.db}?mode=ro', uri=True, timeout=5)
        try:
            return c.execute('SELECT id, outcome, alert_received FROM attempts WHERE id > ? ORDER BY id',
                             (after,)).fetchall()
        finally:
            c.close()
    except sqlite3.Error:
        return []


def key(s):
    return (tuple(s['attempt_ids']), s['outcome'], s['pattern'])


state = tempfile.TemporaryDirectory(prefix='tlswatch-follow-')
since_us = int(time.time() * 1e6) - 1_000_000
f = Follower(os.path.join(state.name, 'tlswatch.db'), since_us)
# what a user watches: the table, 100 columns wide ($COLUMNS), in a UTF-8 locale
TABLE_COLUMNS = 80
tf = Follower(os.path.join(state.name, 'tlswatch.db'), since_us, output='table',
              env=dict(os.environ, COLUMNS=str(TABLE_COLUMNS), LC_ALL='C.UTF-8', TZ='UTC'))
ok(wait_for(lambda: 'waiting' in f.stderr(), 5), 'tlsreport -f started before the database exists: waits',
   f.stderr())
ok(f.proc.poll() is None, 'and keeps running')

with Daemon('--journal', 'none', v6=False, state=state.name) as d:
    url = f'https://127.0.0.1:{d.port}/'
    # the readiness probe (a connection without a byte) is the first row: shown once the database exists
    ok(wait_for(lambda: len(f.attempt_ids()) >= 1, 10), 'the database created after -f started is followed',
       f.stderr())
    last = max(f.attempt_ids(), default=0)

    # curl -k: one clean attempt, its line while the daemon runs
    r = curl('-k', '-o', '/dev/null', url)
    ok(r.returncode == 0, 'curl -k connects', r.stderr)
    t0 = time.monotonic()
    d.settle()
    rows = new_rows(d, last)
    ok(len(rows) >= 1 and rows[-1][1] == 'ok', 'the daemon recorded it', rows)
    ids = {row[0] for row in rows}
    seen = wait_for(lambda: ids <= f.attempt_ids(), 5)
    ok(seen, 'its line appears while the daemon runs', f.objects())
    if seen:
        print(f'# curl -k line {f.arrival(max(ids)) - t0:.2f} s after curl ended')
    last = max(ids, default=last)

    # curl without -k to another name: alert 48, never connects: abandoned after the retry window
    r = curl('--resolve', f'follow.test:{d.port}:127.0.0.1', '-o', '/dev/null', f'https://follow.test:{d.port}/')
    ok(r.returncode != 0, 'curl without -k fails')
    t_curl = time.monotonic()
    d.settle()
    rows = new_rows(d, last)
    ids = {row[0] for row in rows}
    ok(wait_for(lambda: ids and ids <= f.attempt_ids(), 5), 'its failed attempt line appears at once', rows)
    o = [a for a in f.objects('attempt') if a['id'] in ids]
    ok(any(a['outcome'] != 'ok' and a['sni'] == 'follow.test' for a in o), 'as failed, with its SNI', o)
    last = max(ids, default=last)

    # Recorded out of order: a client fails (alert 48), then connects on a connection it keeps open (A)
    # while a second one (B) starts later and ends first. The daemon records a connection when it ends, so
    # B's row comes before A's; A still completes the failure's sequence, as in the batch report.
    def conn(verify):
        raw = socket.create_connection(('127.0.0.1', d.port), timeout=10)
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not verify:
            c.check_hostname = False
            c.verify_mode = ssl.CERT_NONE
        return c.wrap_socket(raw, server_hostname='order.test')

    def get(s, close):
        s.sendall(b'GET / HTTP/1.1\r\nHost: order.test\r\nUser-Agent: follow-order/1\r\n'
                  + (b'Connection: close\r\n' if close else b'') + b'\r\n')
        return s.recv(65536)

    try:
        conn(True)
        ok(False, 'a verifying client rejects the certificate')
    except ssl.SSLError:
        ok(True, 'a verifying client rejects the certificate')
    a = conn(False)
    get(a, False)
    time.sleep(0.05)
    b = conn(False)
    get(b, True)
    b_port = b.getsockname()[1]
    b.close()
    # A ends only once B's row is written: two workers (or one slow to see B's end) could record them in
    # either order if A closed a fixed time after B
    ok(d.rows('id > ? AND peer_port = ?', (last, b_port), count=1), 'B is recorded while A is still open')
    a.close()
    d.settle()
    rows = [r for r in new_rows(d, last)]
    ok(len(rows) == 3 and rows[1][1] == 'ok' and rows[2][1] == 'ok', 'three rows: the failure, B, A', rows)

    def order_sequences():
        return sorted(key(q) for q in f.objects('sequence') if q['sni'] == 'order.test')

    want = [((rows[0][0], rows[2][0]), 'ok', 'cert_rejected_then_ok'), ((rows[1][0],), 'ok', 'clean')] \
        if len(rows) == 3 else []
    got = wait_for(lambda: order_sequences() == sorted(want) and order_sequences(), 5) or order_sequences()
    eq(got, sorted(want), 'A, recorded after B, ends the failure\'s sequence; B is a clean one')
    last = max((row[0] for row in rows), default=last)

    # Chromium without a bypass: alert 46, each attempt's line while the daemon runs, no sequence yet
    chromium(url)
    d.settle()
    rows = new_rows(d, last)
    fails = {row[0] for row in rows if row[1] != 'ok'}
    ok(len(fails) >= 1 and any(row[2] == 46 for row in rows), 'headless Chromium without a bypass: alert 46',
       rows)
    ok(wait_for(lambda: fails and fails <= f.attempt_ids(), 5), 'its failed attempts are printed as they come',
       rows)
    ok(not any(set(s['attempt_ids']) & fails for s in f.objects('sequence')),
       'its sequence is not printed yet: the story goes on')
    last = max((row[0] for row in rows), default=last)

    # Chromium with the certificate accepted: the success ends the story, printed with its diagnosis
    chromium(url, '--ignore-certificate-errors')
    t_ok = time.monotonic()

    def browser_sequence():
        for s in f.objects('sequence'):
            if set(s['attempt_ids']) & fails and s['outcome'] == 'ok':
                return s
        return None

    s = wait_for(browser_sequence, 10)
    ok(s is not None, 'the browser\'s sequence is printed once it connected', f.objects('sequence'))
    if s:
        print(f'# browser sequence printed {time.monotonic() - t_ok:.2f} s after Chromium exited')
        eq(s['pattern'], 'cert_rejected_then_ok', 'its pattern')
        ok(fails <= set(s['attempt_ids']), 'it holds the failed attempts', s)
        ok(s.get('label') and 'Chrom' in s['label'], 'named by the User-Agent of its success', s.get('label'))
        ok(s.get('diagnosis') and 'Chrom' in s['diagnosis'] and 'certificate' in s['diagnosis'],
           'with its diagnosis', s.get('diagnosis'))
        for k in ('client', 'sni', 'ja4', 'key', 'first_us', 'last_us', 'attempts', 'failures', 'outcome',
                  'pattern', 'diagnosis', 'attempt_ids'):
            ok(k in s, f'pinned JSON field {k}')
    ok(all('type' in o and 'outcome' in o for o in f.objects()), 'every object says its type')

    def abandoned():
        for q in f.objects('sequence'):
            if q['sni'] == 'follow.test' and q['outcome'] == 'abandoned':
                return q
        return None

    q = wait_for(abandoned, WINDOW + GRACE + 8)
    ok(q is not None, 'the curl sequence is printed as abandoned once its retry window passed',
       f.objects('sequence'))
    if q:
        print(f'# abandoned sequence printed {time.monotonic() - t_curl:.2f} s after its attempt '
              f'(window {WINDOW} s + {GRACE} s)')
        eq(q['pattern'], 'cert_rejected_abandoned', 'its pattern')
    # the table follower: a line per failed attempt as it came, then the sequence's headline, its row
    # and its diagnosis, each line within the width and none empty
    def table_lines(pred):
        return [t for t in tf.text() if pred(t)]

    ok(wait_for(lambda: len(table_lines(lambda t: '\u271746' in t)) >= len(fails), 5),
       f'table: a line per failed attempt of the browser ({len(fails)})', ''.join(tf.text()))
    ok(wait_for(lambda: table_lines(lambda t: t.startswith('-- sequence ended: connected after')), 5),
       'table: the browser\'s sequence under its headline', ''.join(tf.text()))
    ok(wait_for(lambda: table_lines(lambda t: t.startswith('-- sequence abandoned: 1 failed attempt, no '
                                                          f'success in {WINDOW} s (retry window)')), 5),
       'table: the curl sequence under its abandoned headline', ''.join(tf.text()))
    ok(wait_for(lambda: table_lines(lambda t: 'cert_rejected_then_ok' in t and 'Chrom' in t), 5),
       'table: its row with its pattern and its family\'s label', ''.join(tf.text()))
    ok(table_lines(lambda t: 'rejected our certificate' in t), 'table: its diagnosis under it',
       ''.join(tf.text()))
    ok(not table_lines(lambda t: not t.strip()), 'table: no empty line', ''.join(tf.text()))
    widest = max((sum(2 if unicodedata.east_asian_width(c) in 'WF' else 1 for c in t.rstrip('\n'))
                  for t in tf.text()), default=0)
    ok(0 < widest <= TABLE_COLUMNS, f'table: {widest} columns at most ($COLUMNS={TABLE_COLUMNS})')
    ok(d.proc.poll() is None, 'all of it while the daemon runs')

    # the same sequences as a batch report of the same database: the finished ones
    def batch():
        r = run([TLSREPORT, '--database', d.db, '-o', 'json', '--all', '--retry-window', str(WINDOW),
                 '--since', f'@{since_us / 1e6:.6f}', '--no-pager'])
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]

    def same():
        b = sorted(key(s) for s in batch() if s['outcome'] != 'open')
        fo = sorted(key(s) for s in f.objects('sequence'))
        return (b == fo, b, fo)

    res = wait_for(lambda: same() if same()[0] else False, WINDOW + GRACE + 4)
    res = res or same()
    ok(res[0], 'the sequences printed are the batch report\'s finished sequences', f'batch {res[1]}\nfollow {res[2]}')
    ok(f.attempt_ids() == {row[0] for row in new_rows(d, 0)}, 'and every attempt was printed once')
    ok(len(f.attempt_ids()) == len(f.objects('attempt')), 'no attempt twice')

    # tlsreport -f | head: a reader that goes away during the backlog (more than the pipe and stdio
    # buffers hold) ends it with status 0, as once it follows
    for _ in range(300):
        raw = socket.create_connection(('127.0.0.1', d.port), timeout=10)
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.wrap_socket(raw, server_hostname='pipe.test').close()
    d.settle()
    since = f'@{since_us / 1e6:.6f}'
    r = run([TLSREPORT, '--database', d.db, '-o', 'json', '--since', since, '--no-pager', 'attempts'])
    ok(len(r.stdout) > 400 * 1024, f'the backlog is {len(r.stdout)} bytes of JSON')
    p = spawn([TLSREPORT, '-f', '--database', d.db, '-o', 'json', '--since', since, 'attempts'],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(1)
    p.stdout.close()
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    ok(rc == 0, f'a reader gone during the backlog ends -f with status 0 (got {rc})', p.stderr.read())

    # Ctrl-C
    t = time.monotonic()
    f.proc.send_signal(signal.SIGINT)
    try:
        rc = f.proc.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc == 0, f'SIGINT ends it with status 0 (in {time.monotonic() - t:.2f} s)', f.stderr())
    ok(time.monotonic() - t < 1.0, 'promptly')
    f.thread.join(5)
    with f.lock:
        ok(all(text.endswith('\n') for _, text in f.lines), 'no partial line')
    tf.proc.send_signal(signal.SIGINT)
    try:
        rc = tf.proc.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc == 0, 'the table follower ends with status 0 on SIGINT too', tf.stderr())

done()

#!/usr/bin/env python3
"""tlsreport over its sources: the same attempts read from SQLite and from the journal give the same
report, and several servers' databases keep their hosts apart.

In a private mount and UTS namespace (host name "web-a"), a standalone systemd-journald with a private /run
(the host's journal is never touched) and a real tlswatchd --journal all, with real clients: Python's ssl
rejecting the self-signed certificate twice then accepting it, curl, a port check, plain HTTP, openssl
offering only TLS 1.1, over IPv4 and IPv6. Then every verb (sequences --all, attempts, clients, summary) in
JSON and as a table from the database (--database) and from the journal (--file with a glob, -D) must be
identical. Then the host is renamed "web-b" and a second daemon records the same clients into its own
database: tlsreport --database A --database B names both hosts, never mixes them in a sequence, --host
picks one (identical to that database alone), clients and summary say the certificate rejection fails on 2
hosts, first on web-a; a database without the host (migration 6) is named by its file name. What a
demanding user tried (issue 15's review): two databases or two machines of one host name stay two hosts; a
hostile _HOSTNAME is escaped in every table; journal files the user may not read, or truncated, are an
error that names them; a journal of failures only gets a warning.
TAP output. Needs root (namespaces, tmpfs on /run)."""
import difflib
import glob
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

INNER = 'TLSWATCH_SOURCES_TEST_INNER'
JOURNALD = '/usr/lib/systemd/systemd-journald'
ID_OK = 'b865240ac5e245e1a456c8849da3ab5b'
ID_FAILED = '14502e3cce2d4b15a6d9fc9ca932feb5'

if os.environ.get(INNER) != '1':
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root (mount and UTS namespaces, tmpfs on /run)')
        sys.exit(0)
    for prog in (JOURNALD, shutil.which('unshare'), shutil.which('journalctl')):
        if not prog or not os.access(prog, os.X_OK):
            print(f"1..0 # SKIP missing {prog or 'unshare/journalctl'}")
            sys.exit(0)
    r = subprocess.run(['unshare', '--mount', '--uts', '--propagation', 'private', '--', sys.executable]
                       + sys.argv, env=dict(os.environ, **{INNER: '1'}))
    sys.exit(r.returncode)

from httpbackend import HttpBackend  # noqa: E402
from twlib import TLSREPORT, Daemon, curl, done, eq, ok, run, s_client, spawn  # noqa: E402


def reject(d, sni):
    """Python's ssl, not trusting the self-signed certificate: alert 48 unknown_ca."""
    ctx = ssl.create_default_context()
    try:
        with socket.create_connection(('127.0.0.1', d.port), timeout=10) as s:
            ctx.wrap_socket(s, server_hostname=sni)
    except ssl.SSLError:
        pass


def accept(d, sni):
    """The same client, accepting the certificate, with a request."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', d.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sources-test/1.0\r\n'
                      b'Connection: close\r\n\r\n')
            while t.recv(65536):
                pass


def traffic(d, tail):
    """Real clients: a certificate rejected twice then accepted, curl, a port check, plain HTTP, TLS 1.1;
    then tail (the rejections of another name that go on on the next host)."""
    for _ in range(2):
        reject(d, 'localhost')
    accept(d, 'localhost')
    curl('-k', '-A', 'curl-sources/1.0', f'https://127.0.0.1:{d.port}/')
    curl('-k', '-g', '-A', 'curl-sources/1.0', f'https://[::1]:{d.port}/')
    socket.create_connection(('127.0.0.1', d.port), timeout=10).close()
    with socket.create_connection(('127.0.0.1', d.port), timeout=10) as s:
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        try:
            s.recv(100)
        except OSError:
            pass
    s_client(d.port, '-tls1_1')
    tail(d)
    d.settle()


def report(*args):
    r = run([TLSREPORT, '--no-pager'] + list(args), timeout=60)
    ok(r.returncode == 0, f'tlsreport {" ".join(args)}: exit 0', r.stderr.decode(errors='replace'))
    return r.stdout.decode(errors='replace')


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


VERBS = (('sequences', '--all'), ('attempts',), ('clients',), ('summary',))

tmp = tempfile.mkdtemp(prefix='tlswatch-sources-')
journald = None
try:
    subprocess.run(['hostname', 'web-a'], check=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', '/run'], check=True)
    os.makedirs('/run/systemd/journal')
    os.makedirs('/run/systemd/journald.conf.d')
    with open('/run/systemd/journald.conf.d/test.conf', 'w') as f:
        f.write('[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitIntervalSec=0\nForwardToSyslog=no\n'
                'ForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nAudit=no\n')
    journald = spawn([JOURNALD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists('/run/systemd/journal/socket'):
            break
        time.sleep(0.05)
    ok(os.path.exists('/run/systemd/journal/socket'), 'standalone journald is listening')

    db_a = os.path.join(tmp, 'a.db')
    backend = HttpBackend()

    def tail_a(d):
        reject(d, 'www.example')  # never accepted on web-a
        # in front of a service (--backend): a request refused, then the service down
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(socket.create_connection(('127.0.0.1', d.port), timeout=10),
                             server_hostname='smuggle.example') as t:
            t.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')
            while t.recv(65536):
                pass
        backend.close()
        curl('-k', '-A', 'curl-sources/1.0', f'https://127.0.0.1:{d.port}/down')
    with Daemon('--journal', 'all', '--backend', backend.addr, '--backend-protocol', 'http') as d:
        traffic(d, tail_a)
        d.stop()
        shutil.copy(d.db, db_a)
    run(['journalctl', '--sync'])
    with sqlite3.connect(db_a) as c:
        n_a = c.execute('SELECT count(*) FROM attempts').fetchone()[0]
        host_a = c.execute("SELECT value FROM meta WHERE key = 'host'").fetchone()
    ok(n_a >= 10, f'daemon A recorded the attempts ({n_a})')
    eq(host_a, ('web-a',), 'the daemon records its host name in the database (table meta)')

    # journald may still be writing: wait until the journal has every attempt
    files = '/run/log/journal/*/*.journal'
    for _ in range(50):
        got = json_lines(report('--file', files, 'attempts', '-o', 'json'))
        if len(got) >= n_a:
            break
        time.sleep(0.1)
    eq(len(got), n_a, '--file: the journal holds every attempt of the database')

    # the same report from the database and from the journal, every verb, JSON and table
    for verb in VERBS:
        for fmt in (('-o', 'json'), ('-o', 'table', '--host', 'web-a'), ('-o', 'csv'), ('-o', 'html')):
            from_db = report('--database', db_a, *fmt, *verb)
            from_files = report('--file', files, *fmt, *verb)
            from_dir = report('-D', '/run/log/journal', *fmt, *verb)
            ok(from_db == from_files and from_db.strip(), f'{" ".join(verb)} {" ".join(fmt)}: --file = --database',
               ''.join(difflib.unified_diff(from_db.splitlines(True), from_files.splitlines(True), 'database',
                                            'journal')) or 'empty')
            ok(from_dir == from_files, f'{" ".join(verb)} {" ".join(fmt)}: -D = --file')
    # as on a collector: systemd-journal-remote's file, with the entries that systemd-journal-upload sends
    # twice after an outage (the last ones of a request that did not complete) written twice
    remote = '/usr/lib/systemd/systemd-journal-remote'
    if os.access(remote, os.X_OK):
        export = run(['journalctl', '-D', '/run/log/journal', '-o', 'export',
                      'MESSAGE_ID=' + ID_OK, 'MESSAGE_ID=' + ID_FAILED]).stdout
        entries = [e + b'\n\n' for e in export.split(b'\n\n') if e.strip()]
        stream = b''.join(entries[:6] + entries[3:6] + entries[6:])
        os.makedirs(os.path.join(tmp, 'remote'))
        r = run([remote, '-o', os.path.join(tmp, 'remote', 'remote-web-a.journal'), '-'], input=stream)
        ok(r.returncode == 0, 'systemd-journal-remote writes the entries, 3 of them twice', r.stderr)
        for verb in VERBS:
            eq(report('-D', os.path.join(tmp, 'remote'), '-o', 'json', *verb),
               report('--database', db_a, '-o', 'json', *verb),
               f'{" ".join(verb)}: entries sent twice are read once')
        # two servers left with one host name (an image's default): told apart by their machine ID, never
        # one host (whose attempts of equal start, port and id would even be taken for copies)
        other = '0123456789abcdef0123456789abcdef'
        twin = b''.join(b'\n'.join(line for line in e.split(b'\n') if not line.startswith(b'_MACHINE_ID='))
                        .rstrip(b'\n') + b'\n_MACHINE_ID=' + other.encode() + b'\n\n' for e in entries)
        r = run([remote, '-o', os.path.join(tmp, 'twin.journal'), '-'], input=twin)
        ok(r.returncode == 0, 'systemd-journal-remote writes the entries of a second machine named web-a', r.stderr)
        r = run([TLSREPORT, '--no-pager', '--file', files, '--file', os.path.join(tmp, 'twin.journal'), '-o', 'json',
                 'attempts'])
        got = json_lines(r.stdout.decode())
        hosts = sorted({a['host'] for a in got})
        ok(len(got) == 2 * n_a and len(hosts) == 2 and hosts[0] == 'web-a' and
           re.fullmatch(r'web-a \(machine [0-9a-f]{32}\)', hosts[1]),  # the one read second
           'one host name on two machines: two hosts, every attempt of both', (len(got), n_a, hosts))
        ok(b'Two machines call themselves web-a' in r.stderr, 'one host name on two machines: a warning', r.stderr)
        for h in hosts:  # --host takes either name as the output gives it, and only that machine's
            r = run([TLSREPORT, '--no-pager', '--file', files, '--file', os.path.join(tmp, 'twin.journal'),
                     '--host', h, '-o', 'json', 'attempts'])
            got = json_lines(r.stdout.decode())
            ok(len(got) == n_a and {a['host'] for a in got} == {h}, f'--host {h!r}: that machine\'s attempts',
               (len(got), n_a))
        # a journal of tlswatchd's default, --journal failures: only the failed attempts; sequences that
        # ended well would look abandoned, and tlsreport says why
        failed = b''.join(e for e in entries if b'MESSAGE_ID=' + ID_FAILED.encode() in e)
        r = run([remote, '-o', os.path.join(tmp, 'failures.journal'), '-'], input=failed)
        ok(r.returncode == 0 and failed, 'systemd-journal-remote writes the failed attempts only', r.stderr)
        r = run([TLSREPORT, '--no-pager', '--file', os.path.join(tmp, 'failures.journal'), 'sequences'])
        ok(r.returncode == 0 and b'unless tlswatchd runs with --journal all' in r.stderr,
           'a journal of failures only: a warning that successes may be missing', r.stderr)
        r = run([TLSREPORT, '--no-pager', '--file', files, 'sequences'])
        ok(r.returncode == 0 and b'--journal all' not in r.stderr, 'a journal with successes: no such warning',
           r.stderr)
        # a collector takes whatever _HOSTNAME a sender claims: a hostile one is escaped in every table
        evil = b'evil\x1b[31m\x07\xc2\x9b2J\xe2\x80\xae.example'
        hostile = b''.join(b'\n'.join(line for line in e.split(b'\n') if not line.startswith(b'_HOSTNAME='))
                           .rstrip(b'\n') + b'\n_HOSTNAME\n' + len(evil).to_bytes(8, 'little') + evil + b'\n\n'
                           for e in entries)
        r = run([remote, '-o', os.path.join(tmp, 'evil.journal'), '-'], input=hostile)
        ok(r.returncode == 0, 'systemd-journal-remote writes entries of a hostile host name', r.stderr)
        for verb in VERBS:
            r = run([TLSREPORT, '--no-pager', '--file', files, '--file', os.path.join(tmp, 'evil.journal'),
                     '-o', 'table', *verb])
            out = r.stdout
            ok(r.returncode == 0 and b'evil\\x1b[31m\\x07' in out and
               not any(c < 0x20 and c not in b'\n' for c in out) and b'\xc2\x9b' not in out and
               b'\xe2\x80\xae' not in out, f'{" ".join(verb)} table: a hostile host name is escaped',
               out.decode(errors='replace'))
        # ... and in the warning about two machines of that name
        twin = b''.join(b'\n'.join(line for line in e.split(b'\n') if not line.startswith(b'_MACHINE_ID='))
                        .rstrip(b'\n') + b'\n_MACHINE_ID=' + other.encode() + b'\n\n'
                        for e in hostile.split(b'\n\n') if e.strip())
        r = run([remote, '-o', os.path.join(tmp, 'evil-twin.journal'), '-'], input=twin)
        r = run([TLSREPORT, '--no-pager', '--file', os.path.join(tmp, 'evil.journal'), '--file',
                 os.path.join(tmp, 'evil-twin.journal'), '-o', 'json', 'summary'])
        ok(b'Two machines call themselves evil\\x1b[31m' in r.stderr and b'\x1b' not in r.stderr,
           'the warning about two machines escapes a hostile host name', r.stderr)
    # --since and --until: a seek in the journal, the same range as the database's
    starts = [a['started_us'] for a in json_lines(report('--database', db_a, '-o', 'json', 'attempts'))]
    since, until = (f'@{t // 1000000}.{t % 1000000:06d}' for t in (starts[2], starts[-2]))
    for verb in VERBS:
        want = report('--database', db_a, '--since', since, '--until', until, '-o', 'json', *verb)
        got = report('--file', files, '--since', since, '--until', until, '-o', 'json', *verb)
        ok(got == want and want, f'{" ".join(verb)} --since --until: --file = --database',
           ''.join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), 'database', 'journal')))
    seqs = json_lines(report('--database', db_a, '-o', 'json', 'sequences', '--all'))
    ok(any(s['pattern'] == 'cert_rejected_then_ok' and s['attempts'] == 3 for s in seqs),
       'the certificate rejected twice then accepted is one sequence of 3', json.dumps(seqs, indent=1))
    ok(seqs and all(s['host'] == 'web-a' for s in seqs), 'every sequence names its host: web-a')
    from_journal = json_lines(report('-D', '/run/log/journal', '-o', 'json', 'sequences'))
    got = sorted(s['pattern'] for s in from_journal if s['pattern'] in ('backend_error', 'bad_request'))
    ok(got == ['backend_error', 'bad_request'], 'from the journal too: the service down and the refused request',
       json.dumps(from_journal, indent=1))
    table = report('-D', '/run/log/journal', 'sequences', '--all')
    ok(' HOST ' in table.splitlines()[0] and 'web-a' in table, 'a journal source: the table has a HOST column',
       table)
    table = report('--database', db_a, 'sequences', '--all')
    ok('HOST' not in table.splitlines()[0], 'one database: no HOST column', table)
    eq(report('-D', '/run/log/journal', '--host', 'web-z', '-o', 'json'), '', '--host web-z: nothing')
    r = run([TLSREPORT, '-D', '/run/log/journal', '-f'])
    ok(r.returncode != 0 and b'journalctl -f' in r.stderr, '-f on a journal: a clear error', r.stderr)
    # journal files the user may not read (a collector's, as a user outside systemd-journal-remote): not
    # "No attempts matched", but an error; some readable: their attempts, and a warning for the others
    denied = tempfile.mkdtemp(prefix='tlswatch-denied-')
    os.chmod(denied, 0o755)
    journal = sorted(glob.glob(files))[0]
    shutil.copy(journal, os.path.join(denied, 'remote-a.journal'))
    os.chmod(os.path.join(denied, 'remote-a.journal'), 0o600)
    as_nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', TLSREPORT, '--no-pager',
                 '-D', denied]
    r = run(as_nobody + ['sequences', '--all'])
    ok(r.returncode != 0 and b'permission denied on ' + denied.encode() + b'/remote-a.journal' in r.stderr,
       '-D of files the user may not read: an error naming one', r.stderr)
    shutil.copy(journal, os.path.join(denied, 'remote-b.journal'))
    os.chmod(os.path.join(denied, 'remote-b.journal'), 0o644)
    r = run(as_nobody + ['-o', 'json', 'attempts'])
    ok(r.returncode == 0 and b'1 of 2 journal files could not be read' in r.stderr and
       len(json_lines(r.stdout.decode())) == n_a, '-D with one file unreadable: a warning, the other\'s attempts',
       r.stderr)
    shutil.rmtree(denied, ignore_errors=True)
    # an empty directory (a collector no server has sent to yet, or a typo): said, as journalctl -D says it
    empty = os.path.join(tmp, 'empty')
    os.makedirs(empty)
    r = run([TLSREPORT, '--no-pager', '-D', empty])
    ok(r.returncode == 0 and b'No journal files were found in ' + empty.encode() in r.stderr,
       '-D of an empty directory: no journal files, it says', r.stderr)
    # a truncated journal file among --file's: an error that names it
    cut = os.path.join(tmp, 'cut.journal')
    with open(journal, 'rb') as f, open(cut, 'wb') as g:
        g.write(f.read(1000))
    r = run([TLSREPORT, '--no-pager', '--file', journal, '--file', cut])
    ok(r.returncode != 0 and b'journal file ' + cut.encode() + b':' in r.stderr,
       '--file of a truncated file: an error naming it', r.stderr)

    # a second server: another host name, its own database, the same clients
    subprocess.run(['hostname', 'web-b'], check=True)
    db_b = os.path.join(tmp, 'b.db')
    time.sleep(0.01)
    with Daemon('--journal', 'none') as d:
        traffic(d, lambda d: (reject(d, 'www.example'), accept(d, 'www.example')))
        d.stop()
        shutil.copy(d.db, db_b)
    both = ('--database', db_a, '--database', db_b)
    seqs = json_lines(report(*both, '-o', 'json', 'sequences', '--all'))
    eq(sorted({s['host'] for s in seqs}), ['web-a', 'web-b'], 'two databases: both hosts named')
    ids = {h: {a['id'] for a in json_lines(report('--database', db, '-o', 'json', 'attempts'))}
           for h, db in (('web-a', db_a), ('web-b', db_b))}
    for h, db in (('web-a', db_a), ('web-b', db_b)):
        alone = report('--database', db, '-o', 'json', 'sequences', '--all')
        picked = report(*both, '--host', h, '-o', 'json', 'sequences', '--all')
        ok(alone == picked and alone, f'--host {h} over both databases = its database alone')
        ok(all(set(s['attempt_ids']) <= ids[h] for s in seqs if s['host'] == h),
           f'no sequence of {h} holds an attempt of the other host')
    rejected = [s for s in seqs if s['pattern'] == 'cert_rejected_then_ok' and s['sni'] == 'localhost']
    eq(len(rejected), 2, 'the rejection is two sequences, one per host (the same client, the same key)')
    www = sorted((s['host'], s['attempts'], s['outcome']) for s in seqs if s['sni'] == 'www.example')
    eq(www, [('web-a', 1, 'open'), ('web-b', 2, 'ok')],
       'a rejection on web-a does not join the same client\'s sequence on web-b')
    merged = json_lines(report(*both, '-o', 'json', 'attempts'))
    eq([a['started_us'] for a in merged], sorted(a['started_us'] for a in merged),
       'attempts of both databases come in start order')

    clients = json_lines(report(*both, '-o', 'json', 'clients'))
    python = [c for c in clients if c['label'] == 'sources-test/1.0']
    ok(len(python) == 1 and python[0]['failing_hosts'] == 2 and python[0]['first_failure_host'] == 'web-a',
       'clients: the family that rejects the certificate fails on 2 hosts, first on web-a', clients)
    summary = json.loads(report(*both, '-o', 'json', 'summary'))
    eq(summary.get('hosts'), 2, 'summary: 2 hosts')
    fleet = [f for f in summary.get('fleet', []) if f['label'] == 'sources-test/1.0']
    ok(fleet and fleet[0]['failing_hosts'] == 2 and fleet[0]['first_failure_host'] == 'web-a',
       'summary: the family failing on the most hosts, and where first', summary.get('fleet'))
    text = report(*both, 'summary')
    ok('Hosts: 2' in text and 'sources-test/1.0: 2 of 2 hosts, first on web-a' in text,
       'summary table: the fleet part', text)
    text = report(*both, 'clients')
    ok('fails on 2 hosts, first on web-a' in text, 'clients table: where the family fails', text)
    page = report(*both, '-o', 'html')
    ok(' on web-a' in page and ' on web-b' in page, 'html: the example sequences name their host')
    ok('<td>sources-test/1.0</td><td>2 of 2 hosts</td><td>web-a</td>' in page,
       'html: the fleet part, as summary says it (the family fails on 2 hosts, first on web-a)',
       page[page.find('<section id="fleet"'):][:600])
    ok('id="fleet"' not in report('--database', db_a, '-o', 'html'), 'html of one host: no fleet part')
    table = report(*both, 'sequences')
    ok('HOST' in table.splitlines()[0] and 'web-b' in table, 'two databases: the table has a HOST column', table)

    # a database without the host (before migration 6): named by its file name
    old = os.path.join(tmp, 'web-old.db')
    shutil.copy(db_b, old)
    with sqlite3.connect(old) as c:
        c.execute('DROP TABLE meta')
    seqs = json_lines(report('--database', old, '-o', 'json', 'sequences', '--all'))
    ok(seqs and all(s['host'] == 'web-old' for s in seqs), 'no host recorded: the file name\'s stem')
    # two servers with one host name (a cloud image's default), or two old databases of one file name:
    # still two hosts, never one sequence of both
    same = os.path.join(tmp, 'same.db')
    shutil.copy(db_b, same)
    with sqlite3.connect(same) as c:
        c.execute("UPDATE meta SET value = 'web-a' WHERE key = 'host'")
    r = run([TLSREPORT, '--no-pager', '--database', db_a, '--database', same, '-o', 'json', 'sequences', '--all'])
    seqs = json_lines(r.stdout.decode())
    eq(sorted({s['host'] for s in seqs}), ['web-a', f'web-a ({same})'], 'one host name in two databases: 2 hosts')
    ok(b'as another database does' in r.stderr, 'one host name in two databases: a warning', r.stderr)
    www = sorted((s['host'], s['attempts'], s['outcome']) for s in seqs if s['sni'] == 'www.example')
    eq(www, [('web-a', 1, 'open'), (f'web-a ({same})', 2, 'ok')],
       'one host name in two databases: their attempts are not grouped together')
    olds = []
    for d in ('x', 'y'):
        os.makedirs(os.path.join(tmp, d))
        olds.append(os.path.join(tmp, d, 'tlswatch.db'))
        shutil.copy(db_b, olds[-1])
        c = sqlite3.connect(olds[-1])
        c.execute('DROP TABLE meta')
        c.commit()
        c.close()
    r = run([TLSREPORT, '--no-pager', '--database', olds[0], '--database', olds[1], '-o', 'json', 'attempts'])
    eq(sorted({a['host'] for a in json_lines(r.stdout.decode())}), ['tlswatch', f'tlswatch ({olds[1]})'],
       'two old databases, both tlswatch.db: 2 hosts')
finally:
    if journald:
        journald.terminate()
        journald.wait()
    shutil.rmtree(tmp, ignore_errors=True)
done()

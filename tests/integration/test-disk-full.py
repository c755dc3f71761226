#!/usr/bin/env python3
"""The database on a small tmpfs that fills up: tlswatchd keeps serving, says that writes fail, keeps
the records queued, and writes every one of them once space is freed. Runs in its own mount namespace
(re-executing itself under unshare), so no mount can leak."""
import os
import subprocess
import sys
import tempfile
import time

if os.environ.get('TLSWATCH_IN_NS') != '1':
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root for a private tmpfs')
        sys.exit(0)
    env = dict(os.environ, TLSWATCH_IN_NS='1')
    sys.exit(subprocess.run(['unshare', '--mount', '--propagation', 'private', sys.executable] + sys.argv,
                            env=env).returncode)

from twlib import Daemon, curl, done, eq, ok, query, wait_for  # noqa: E402

mnt = tempfile.mkdtemp(prefix='tlswatch-full-')
subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], check=True)
try:
    db = os.path.join(mnt, 'tlswatch.db')
    with tempfile.TemporaryDirectory() as state:
        with Daemon('--database', db, '--journal', 'none', state=state, v6=False) as d:
            d.settle()
            # fill the file system
            filler = os.path.join(mnt, 'filler')
            # unbuffered: a buffered file would raise ENOSPC again when it is closed, flushing what is left
            with open(filler, 'wb', buffering=0) as f:
                try:
                    while True:
                        f.write(b'\0' * 65536)
                except OSError:
                    pass
            n = 60
            codes = [curl('-k', '-o', '/dev/null', '-w', '%{http_code}',
                          f'https://127.0.0.1:{d.port}/api/self').stdout for _ in range(n)]
            eq(codes.count(b'200'), n, f'file system full: all {n} clients still served')
            ok(wait_for(lambda: 'failing' in d.output() or 'full' in d.output()), 'the daemon says that writes fail',
               d.output()[-800:])
            stored = len(query(db, 'SELECT id FROM attempts'))
            ok(stored < n, f'while full, not everything is stored ({stored} rows)')
            os.unlink(filler)
            deadline = time.monotonic() + 15
            oks = "SELECT id FROM attempts WHERE outcome = 'ok'"
            while time.monotonic() < deadline and len(query(db, oks)) < n:
                time.sleep(0.2)
            eq(len(query(db, oks)), n, f'after space is freed every queued record is written ({n} ok rows)')
            others = query(db, "SELECT outcome FROM attempts WHERE outcome != 'ok'")
            ok(all(r['outcome'] == 'no_data' for r in others) and len(others) <= 1,
               'no other row but the start-up probe', others)
            # (it logs that after the commit that made the rows visible)
            ok(wait_for(lambda: 'resum' in d.output(), 5), 'the daemon says that writing resumed', d.output()[-800:])
        r = subprocess.run(['sqlite3', db, 'PRAGMA integrity_check'], capture_output=True)
        eq(r.stdout.strip(), b'ok', 'database intact')
finally:
    subprocess.run(['umount', '-l', mnt])
    os.rmdir(mnt)
done()

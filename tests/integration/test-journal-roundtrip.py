#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""--journal all is lossless: every row of the attempts table is also one journal entry with the same values.

A real tlswatchd (--journal all) under a standalone systemd-journald of its own (a private mount namespace
with a tmpfs on /run: the host's journal is never touched), real clients (curl over IPv4 and IPv6, Python's
ssl with a hostile User-Agent, hand-built ClientHellos with a hostile SNI and ALPN and an old TLS version,
plain HTTP, a silent connection, a reset), and a second daemon whose backend refuses (backend_error). Then
the journal is read back with `journalctl -o export` (binary-safe) and each row of SQLite must be exactly
one entry, found by TLSWATCH_ID, with one TLSWATCH_<COLUMN> per non-NULL column holding the same bytes, and
no other. TAP output.
"""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

from twlib import (Daemon, client_hello, curl, diag, done, free_port, ok, records, reset_close, tls_exchange,
                   wait_for)

INNER_ENV = 'TLSWATCH_JOURNAL_ROUNDTRIP_INNER'
JOURNALD = '/usr/lib/systemd/systemd-journald'
OUTER_TIMEOUT = 100

SNI_HOSTILE = b'evil\x1b[31m\n\x00\xff\xfe.example'
ALPN_HOSTILE = [b'h2\x00\x01\x80\xc3\r\n', b'http/1.1']
UA_HOSTILE = b'Mozilla\x01\x07\x1b[2J\xe2\x80\xae\xff end'


def die_with_parent():
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def export_entries(data):
    """Parses systemd's Journal Export Format: a list of {name: bytes} (binary fields too)."""
    entries, cur, i = [], {}, 0
    while i < len(data):
        nl = data.index(b'\n', i)
        line = data[i:nl]
        if not line:
            if cur:
                entries.append(cur)
            cur, i = {}, nl + 1
            continue
        eq = line.find(b'=')
        if eq >= 0:
            cur[line[:eq].decode()] = line[eq + 1:]
            i = nl + 1
        else:  # binary: NAME\n, little-endian 64-bit size, data, \n
            size = int.from_bytes(data[nl + 1:nl + 9], 'little')
            cur[line.decode()] = data[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
    if cur:
        entries.append(cur)
    return entries


def rows_of(db):
    con = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    con.text_factory = bytes
    try:
        return [dict(r) for r in con.execute('SELECT * FROM attempts ORDER BY id')]
    finally:
        con.close()


def want_fields(row):
    """The journal fields a row must have: TLSWATCH_<COLUMN> for every non-NULL column."""
    out = {}
    for k, v in row.items():
        if v is None:
            continue
        out['TLSWATCH_' + k.upper()] = str(v).encode() if isinstance(v, int) else bytes(v)
    return out


def drive_clients(d):
    port = d.port
    r = curl('-k', '-o', '/dev/null', f'https://127.0.0.1:{port}/')
    ok(r.returncode == 0, 'curl -k over IPv4', r.stderr)
    r = curl('-k', '-6', '-o', '/dev/null', '--http1.1', f'https://[::1]:{port}/')
    ok(r.returncode == 0, 'curl -k over IPv6', r.stderr)
    req = b'GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ' + UA_HOSTILE + b'\r\nConnection: close\r\n\r\n'
    data, _ = tls_exchange(port, req)
    ok(data.startswith(b'HTTP/1.1 '), 'Python ssl with a hostile User-Agent gets an answer')
    # a hostile SNI and ALPN, then the client goes away after our flight
    with socket.create_connection(('127.0.0.1', port), 5) as s:
        s.sendall(records(client_hello(sni=SNI_HOSTILE, alpn=ALPN_HOSTILE)))
        s.settimeout(5)
        try:
            s.recv(65536)
        except OSError:
            pass
    # TLS 1.1 only: we refuse with protocol_version
    with socket.create_connection(('127.0.0.1', port), 5) as s:
        s.sendall(records(client_hello(sni=b'old.example', versions=(0x0302,), legacy=0x0302)))
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    with socket.create_connection(('127.0.0.1', port), 5) as s:  # plain HTTP on the TLS port
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    s = socket.create_connection(('127.0.0.1', port), 5)  # a port check: no byte at all
    d.wait_accepted([s])
    s.close()
    s = socket.create_connection(('127.0.0.1', port), 5)  # half a ClientHello, then a reset
    s.sendall(records(client_hello(sni=b'reset.example'))[:40])
    d.wait_accepted([s])
    time.sleep(0.1)
    reset_close(s)


def inner():
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', '/run'], check=True)
    os.makedirs('/run/systemd/journal')
    os.makedirs('/run/systemd/journald.conf.d')
    with open('/run/systemd/journald.conf.d/test.conf', 'w') as f:
        f.write('[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitIntervalSec=0\nForwardToSyslog=no\n'
                'ForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nAudit=no\n')
    # in our process group (the outer timeout kills it), and killed with us (PR_SET_PDEATHSIG)
    journald = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    try:
        if not ok(wait_for(lambda: os.path.exists('/run/systemd/journal/socket'), 5),
                  'standalone journald is listening'):
            return
        dbs = []
        with Daemon('--journal', 'all') as d:
            drive_clients(d)
            pid1 = d.proc.pid
            d.stop()
            dbs.append((pid1, rows_of(d.db)))
        # a backend that refuses: the connection's record carries backend_error
        closed = free_port()
        with Daemon('--journal', 'all', '--backend', f'127.0.0.1:{closed}', v6=False) as d:
            r = curl('-k', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
            diag(f'curl through a refusing backend: exit {r.returncode}')
            pid2 = d.proc.pid
            d.stop()
            dbs.append((pid2, rows_of(d.db)))

        subprocess.run(['journalctl', '--sync'], capture_output=True, timeout=15)
        seen = set()
        for pid, rows in dbs:
            r = subprocess.run(['journalctl', '-D', '/run/log/journal', '-o', 'export', '--no-pager',
                                f'_PID={pid}', 'SYSLOG_IDENTIFIER=tlswatchd'], capture_output=True, timeout=15)
            entries = [e for e in export_entries(r.stdout) if 'MESSAGE_ID' in e]
            seen |= check(pid, rows, entries)
        all_rows = [r for _, rows in dbs for r in rows]
        ok(any(r['sni'] == SNI_HOSTILE for r in all_rows) and
           any(r['user_agent'] == UA_HOSTILE for r in all_rows) and
           any(r['alpn_offered'] and b'\x00\x01\x80' in r['alpn_offered'] for r in all_rows),
           'the hostile SNI, ALPN and User-Agent were recorded raw (and so compared raw above)')
        cover = {'TLSWATCH_ID', 'TLSWATCH_STARTED_US', 'TLSWATCH_ENDED_US', 'TLSWATCH_CLOSED_US',
                 'TLSWATCH_CLOSE_KIND', 'TLSWATCH_ALERT_SENT', 'TLSWATCH_TLS_ERROR', 'TLSWATCH_ERROR_TEXT',
                 'TLSWATCH_SNI', 'TLSWATCH_ALPN_OFFERED', 'TLSWATCH_ALPN', 'TLSWATCH_USER_AGENT',
                 'TLSWATCH_JA4_STABLE', 'TLSWATCH_BACKEND_ERROR', 'TLSWATCH_VERSION', 'TLSWATCH_CIPHER'}
        ok(cover <= seen, 'the rows compared cover the ids, times, alerts, errors, hostile strings and '
           'backend_error', f'never seen: {sorted(cover - seen)}')
    finally:
        journald.terminate()
        try:
            journald.wait(timeout=5)
        except subprocess.TimeoutExpired:
            journald.kill()
            journald.wait()


def check(pid, rows, entries):
    what = f'daemon {pid}'
    ok(len(rows) >= 2, f'{what}: {len(rows)} rows in SQLite')
    by_id = {}
    for e in entries:
        by_id.setdefault(e.get('TLSWATCH_ID'), []).append(e)
    ok(None not in by_id, f'{what}: every entry has TLSWATCH_ID',
       f'{len(by_id.get(None, []))} entries without')
    ok(len(entries) == len(rows), f'{what}: as many journal entries as rows ({len(entries)}, {len(rows)})')
    wrong = []
    seen_cols = set()
    for row in rows:
        got = by_id.get(str(row['id']).encode(), [])
        if len(got) != 1:
            wrong.append(f'row {row["id"]}: {len(got)} entries')
            continue
        want = want_fields(row)
        have = {k: v for k, v in got[0].items() if k.startswith('TLSWATCH_')}
        if have != want:
            missing = sorted(set(want) - set(have))
            extra = sorted(set(have) - set(want))
            diff = [f'{k}: {have[k]!r} != {want[k]!r}' for k in want if k in have and have[k] != want[k]]
            wrong.append(f'row {row["id"]} ({row["outcome"]!r}): missing {missing}, extra {extra}, {diff}')
        seen_cols |= set(want)
        msg = got[0].get('MESSAGE', b'')
        if any(c < 0x20 or c == 0x7f for c in msg):
            wrong.append(f'row {row["id"]}: MESSAGE has a control byte: {msg!r}')
    ok(not wrong, f'{what}: each row equals its entry, every TLSWATCH_* field byte for byte', '\n'.join(wrong))
    return seen_cols


def main():
    if os.environ.get(INNER_ENV) == '1':
        try:
            inner()
        except Exception as e:  # a crash is a failed test, not a silent pass
            ok(False, f'test ran to completion: {type(e).__name__}: {e}')
        done()
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root (mount namespace, tmpfs on /run)')
        return 0
    for prog in (JOURNALD, shutil.which('unshare'), shutil.which('journalctl'), shutil.which('curl')):
        if not prog or not os.access(prog, os.X_OK):
            print(f'1..0 # SKIP missing {prog or "unshare/journalctl/curl"}')
            return 0
    env = dict(os.environ, **{INNER_ENV: '1'})
    p = subprocess.Popen(['unshare', '--mount', '--propagation', 'private', '--', sys.executable,
                          os.path.abspath(__file__)], env=env, start_new_session=True)
    try:
        return p.wait(timeout=OUTER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        print(f'Bail out! timed out after {OUTER_TIMEOUT} s')
        return 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""tlsreport against the real daemon and real clients: openssl s_client rejecting the self-signed
certificate twice (-verify_return_error), then accepting it, is one client, one fingerprint, one sequence
cert_rejected_then_ok of 3 attempts with 2 failures; the daemon's page tells that client so; a clean
client shows only with --all; the summary and CSV agree."""
import csv
import io
import json
import re
import subprocess

from twlib import TLSREPORT, Daemon, curl, done, eq, ok, run, s_client


def report(d, *args):
    r = run([TLSREPORT, '--database', d.db, '--since', 'yesterday', '--no-pager'] + list(args))
    return r


def sequences(d, *args):
    r = report(d, '-o', 'json', *args)
    ok(r.returncode == 0, f'tlsreport -o json {" ".join(args)}: exit 0', r.stderr)
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


with Daemon('--journal', 'none', v6=False) as d:
    d.settle()
    for _ in range(2):
        s_client(d.port, '-verify_return_error')
    r = s_client(d.port, '-ign_eof', input=b'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    page = r.stdout.decode(errors='replace')
    ok(re.search(r'made 2 failed attempts before this one', page) is not None,
       'the page tells the client it made 2 failed attempts before this one', page[-1500:])
    ok('certificate' in page, 'and that it is about the certificate')
    d.settle()

    seqs = [s for s in sequences(d) if s['pattern'] != 'probe']
    want = [s for s in seqs if s['pattern'] == 'cert_rejected_then_ok']
    eq(len(want), 1, 'exactly one cert_rejected_then_ok sequence')
    if want:
        s = want[0]
        eq((s['attempts'], s['failures'], s['outcome']), (3, 2, 'ok'), '3 attempts, 2 failures, outcome ok')
        eq(s['client'], '127.0.0.1', 'client 127.0.0.1')
        eq(len(s['attempt_ids']), 3, 'three attempt ids')
        ok('trust' in s['diagnosis'] and 'CA' in s['diagnosis'], 'diagnosis names the cause and the fix',
           s['diagnosis'])
        for k in ('client', 'sni', 'ja4', 'key', 'first_us', 'last_us', 'attempts', 'failures', 'outcome',
                  'pattern', 'diagnosis', 'attempt_ids'):
            ok(k in s, f'pinned JSON field {k}')
        rows = d.rows('id IN (%s)' % ','.join('?' * len(s['attempt_ids'])), tuple(s['attempt_ids']))
        eq([r['outcome'] for r in rows], ['peer_alert', 'peer_alert', 'ok'], 'the rows behind it')
        eq(len({r['ja4'] for r in rows}), 1, 'one fingerprint')
        eq([r['alert_received'] for r in rows], [48, 48, None], 'alert 48 twice')

    curl('-k', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
    d.settle()
    clean = [s for s in sequences(d, '--all') if s['pattern'] == 'clean']
    ok(len(clean) >= 1, '--all adds the clean curl -k sequence')
    ok(not any(s['pattern'] == 'clean' for s in sequences(d)), 'without --all, no clean sequence')

    r = report(d)
    out = r.stdout.decode()
    ok(r.returncode == 0 and any('cert_rejected_then_ok' in line and '✗48×2 ✓' in line for line in out.splitlines()),
       'table: one line with ✗48×2 ✓ (two rejections, then a success) and the pattern', out)
    r = report(d, 'summary')
    ok(r.returncode == 0 and '48' in r.stdout.decode(), 'summary lists alert 48', r.stdout)
    r = report(d, '-o', 'csv')
    rows = list(csv.reader(io.StringIO(r.stdout.decode())))
    ok(len(rows) >= 2 and 'pattern' in rows[0], 'CSV with a header row', r.stdout[:300])
    r = report(d, 'attempts', '-o', 'json')
    atts = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    ok(len(atts) >= 4 and all('outcome' in a and 'ja4' in a for a in atts), 'attempts -o json uses column names')

# curl -k, then curl verifying, within the burst gap: the second connection starts after the first ended,
# so it is curl's next attempt rejecting the certificate, not a preconnect opened in parallel with the success
with Daemon('--journal', 'none', v6=False) as d:
    d.settle()
    curl('-k', '-o', '/dev/null', '--resolve', f'curl.example:{d.port}:127.0.0.1', f'https://curl.example:{d.port}/')
    r = curl('-o', '/dev/null', '--resolve', f'curl.example:{d.port}:127.0.0.1', f'https://curl.example:{d.port}/')
    ok(r.returncode != 0, 'curl without -k rejects the certificate', r.stderr)
    d.settle()
    seqs = [s for s in sequences(d, '--all') if s['sni'] == 'curl.example']
    rows = d.rows("sni = 'curl.example'")
    ok(len(rows) == 2 and rows[1]['started_us'] - rows[0]['started_us'] < 2_000_000 and
       rows[1]['started_us'] > rows[0]['closed_us'], 'the second curl started within 2 s, after the first closed',
       rows)
    eq([len(seqs), seqs[0]['pattern'] if seqs else None], [2, 'clean'], 'two sequences: curl -k is clean')
    ok(seqs and seqs[-1]['pattern'] in ('cert_rejected_open', 'cert_rejected_abandoned') and
       'parallel' not in seqs[-1]['diagnosis'] and 'curl' in seqs[-1]['diagnosis'],
       'curl without -k after curl -k: its own rejection, not a preconnect of the success', seqs)

r = run([TLSREPORT, '--database', '/nonexistent/tlswatch.db', '--no-pager'])
err = r.stderr.decode()
ok(r.returncode != 0 and 'no database at /nonexistent/tlswatch.db' in err and '--database' in err,
   'missing database: clear error', err)
r = run([TLSREPORT, '--since', 'next blue moon', '--no-pager'])
ok(r.returncode != 0 and 'since' in r.stderr.decode(), 'bad --since: clear error', r.stderr)
done()

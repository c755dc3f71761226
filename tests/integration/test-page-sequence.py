#!/usr/bin/env python3
"""The self page and tlsreport tell a client the same story: real clients fail, then succeed from the same
address, and the sequence that /api/self shows (client key, failures before, pattern and the diagnosis
sentence) is the one `tlsreport sequences -o json` shows for that client, word for word. curl over IPv4
(rejecting the self-signed certificate, then with -k), openssl s_client over IPv6 (the client key is the
/64) with a User-Agent of its own, then curl over IPv6 with another one (the fingerprint's client is named
from its successes from every client). With --no-record the daemon remembers nothing for the page either."""
import json
import socket

from twlib import TLSREPORT, Daemon, curl, diag, done, eq, ok, run, s_client


def report_sequences(d):
    r = run([TLSREPORT, '--database', d.db, '--since', 'today', '--no-pager', 'sequences', '-o', 'json'])
    ok(r.returncode == 0, 'tlsreport sequences -o json: exit 0', r.stderr)
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


def body_json(raw):
    """The JSON body of an HTTP/1.1 response as s_client prints it (after its session dump)."""
    text = raw.decode(errors='replace')
    start = text.find('{"connection":')
    return json.loads(text[start:text.index('\n', start)]) if start >= 0 else None


def same_story(d, name, page, failures):
    seq = (page or {}).get('sequence')
    if not ok(seq is not None, f'{name}: the page shows a sequence', json.dumps(page)[:2000]):
        return
    eq(seq['failures_before'], failures, f'{name}: the page counts {failures} failed attempts before this one')
    d.settle()
    mine = [s for s in report_sequences(d) if s['client'] == seq['client'] and s['ja4'] == seq['ja4']
            and s['pattern'] == seq['pattern'] and s['failures'] == failures and s['outcome'] == 'ok']
    if not ok(len(mine) == 1, f'{name}: tlsreport has that sequence for {seq["client"]}', json.dumps(seq)):
        return
    eq(seq['diagnosis'], mine[0]['diagnosis'], f'{name}: the page and tlsreport say the same')
    diag(f'{name}: {seq["diagnosis"]}')


with Daemon('--journal', 'none') as d:
    d.settle()

    # curl over IPv4: rejects the self-signed certificate twice, then accepts it with -k
    for _ in range(2):
        r = curl('-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
        ok(r.returncode != 0, 'curl without -k fails', r.stderr)
    r = curl('-k', f'https://127.0.0.1:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else None
    eq((page or {}).get('sequence', {}).get('client'), '127.0.0.1', 'curl: the page keys the client by its address')
    same_story(d, 'curl', page, 2)

    # openssl s_client over IPv6: rejects the certificate once, then sends a request with a User-Agent
    s_client(d.port, '-verify_return_error', host='[::1]')
    r = s_client(d.port, '-ign_eof', host='[::1]',
                 input=b'GET /api/self HTTP/1.1\r\nHost: localhost\r\nUser-Agent: page-sequence-test/1\r\n'
                       b'Connection: close\r\n\r\n')
    page = body_json(r.stdout)
    eq((page or {}).get('sequence', {}).get('client'), '::/64', 's_client: the page keys IPv6 by its /64')
    same_story(d, 's_client', page, 1)
    ok('page-sequence-test/1' in ((page or {}).get('sequence') or {}).get('diagnosis', ''),
       's_client: the diagnosis names the client by its User-Agent, as tlsreport does')

    # curl over IPv6 with another User-Agent: the fingerprint's successes from both clients name it, on
    # the page as in tlsreport ("curl/7.88.1 or other-tool/2")
    curl('-o', '/dev/null', f'https://[::1]:{d.port}/')
    r = curl('-k', '-A', 'other-tool/2', f'https://[::1]:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else None
    same_story(d, 'curl over IPv6', page, 1)
    said = ((page or {}).get('sequence') or {}).get('diagnosis', '')
    ok('curl/7.88.1' in said and 'other-tool/2' in said,
       'curl over IPv6: both programs behind the fingerprint are named, as tlsreport names them', said)

# A scan between a client's failures and its success: 1,500 connections that send nothing, from as many
# addresses (more than the 512 clients the page's memory holds), must not make the page forget the client.
with Daemon('--journal', 'none', v6=False) as d:
    d.settle()
    for _ in range(2):
        r = curl('--interface', '127.0.0.6', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
        ok(r.returncode != 0, 'curl from 127.0.0.6 without -k fails', r.stderr)
    for i in range(1500):
        with socket.socket() as s:
            s.bind((f'127.1.{i >> 8}.{i & 255}', 0))
            s.connect(('127.0.0.1', d.port))
    d.settle()
    r = curl('--interface', '127.0.0.6', '-k', f'https://127.0.0.1:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else None
    eq((page or {}).get('history_complete'), True, 'after a scan from 1,500 addresses the history is complete')
    same_story(d, 'curl after a scan', page, 2)

    # More failures than the page holds per client (32): it says its history is incomplete instead of
    # counting what it has as the whole story; another program at the same address is not affected.
    for _ in range(40):
        curl('--interface', '127.0.0.7', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
    # both pages on one connection (one attempt): the JSON, then the HTML
    r = curl('--interface', '127.0.0.7', '-k', f'https://127.0.0.1:{d.port}/api/self', f'https://127.0.0.1:{d.port}/')
    body = r.stdout.decode(errors='replace') if r.returncode == 0 else ''
    page = json.loads(body[:body.find('<!DOCTYPE')]) if '<!DOCTYPE' in body else None
    eq((page or {}).get('history_complete'), False, '41 attempts of one client: the page says its history is incomplete')
    html = body[body.find('<!DOCTYPE'):]
    ok('may be missing here' in html and 'first attempt' not in html,
       'the HTML page says so too, and does not claim a first attempt', html[:600])
    r = curl('--interface', '127.0.0.7', '-k', f'https://127.0.0.1:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else None
    eq((page or {}).get('history_complete'), True, 'its next connection starts a new sequence: nothing of it is missing')

with Daemon('--no-record', v6=False) as d:
    curl('-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
    r = curl('-k', f'https://127.0.0.1:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else {}
    ok('connection' in page and page.get('recent') == [] and 'sequence' not in page,
       '--no-record: the page remembers no attempt either', r.stdout)
done()

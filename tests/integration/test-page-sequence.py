#!/usr/bin/env python3
"""The self page and tlsreport tell a client the same story: real clients fail, then succeed from the same
address, and the sequence that /api/self shows (client key, failures before, pattern and the diagnosis
sentence) is the one `tlsreport sequences -o json` shows for that client, word for word. curl over IPv4
(rejecting the self-signed certificate, then with -k), openssl s_client over IPv6 (the client key is the
/64) with a User-Agent of its own, then curl over IPv6 with another one (the fingerprint's client is named
from its successes from every client). With --no-record the daemon remembers nothing for the page either."""
import json
import socket
import ssl
import time

from twlib import TLSREPORT, Daemon, curl, diag, done, eq, ok, run, s_client


def report_sequences(d):
    r = run([TLSREPORT, '--database', d.db, '--since', 'yesterday', '--no-pager', 'sequences', '-o', 'json'])
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

    # curl over IPv6 with another User-Agent: tlsreport names the fingerprint by its successes from every
    # connection ("curl/7.88.1 or other-tool/2"); the page names the visitor by its own request only, as it
    # never shows a visitor what another connection sent.
    curl('-o', '/dev/null', f'https://[::1]:{d.port}/')
    r = curl('-k', '-A', 'other-tool/2', f'https://[::1]:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else None
    seq = (page or {}).get('sequence') or {}
    eq(seq.get('failures_before'), 1, 'curl over IPv6: one failure before')
    said = seq.get('diagnosis', '')
    ok('other-tool/2' in said and 'curl/7.88.1' not in said and 'page-sequence-test' not in said,
       'curl over IPv6: the page names the client by its own User-Agent, not by other connections\'', said)
    d.settle()
    mine = [x for x in report_sequences(d) if x['client'] == seq.get('client') and x['ja4'] == seq.get('ja4')
            and x['failures'] == 1 and x['outcome'] == 'ok' and 'other-tool/2' in x['diagnosis']]
    ok(len(mine) == 1 and 'curl/7.88.1' in mine[0]['diagnosis'],
       'tlsreport names it by every success of its fingerprint', json.dumps(mine))
    core = 'rejected our certificate with alert unknown_ca(48) after our certificate, then connected'
    ok(said.startswith('other-tool/2 ' + core) and mine and core in mine[0]['diagnosis'],
       'curl over IPv6: otherwise the page and tlsreport tell the same story', f'{said!r} / {mine}')

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

# Several people behind one address (a NAT, a proxy): a visitor sees only its own sequence, and of its
# attempts only how the handshake went. Others at 127.0.0.9 first: openssl s_client with their SNI rejects
# the certificate, curl with their SNI and User-Agent succeeds, Python with their SNI succeeds; and one of
# them uses the visitor's own program (curl, no SNI: the visitor's key) with their User-Agent. Then the
# visitor: curl fails twice, then fetches its page.
SECRET_SNI, SECRET_UA = 'secret-host.example', 'Secret-Agent/9'


def walk_ints(v):
    if isinstance(v, bool):
        return
    if isinstance(v, int):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from walk_ints(x)
    elif isinstance(v, list):
        for x in v:
            yield from walk_ints(x)


with Daemon('--journal', 'none', v6=False) as d:
    d.settle()
    src, url = '127.0.0.9', f'https://127.0.0.1:{d.port}'
    resolve = f'{SECRET_SNI}:{d.port}:127.0.0.1'
    r = run(['openssl', 's_client', '-connect', f'127.0.0.1:{d.port}', '-servername', SECRET_SNI,
             '-verify_return_error'], input=b'', timeout=20)
    # (s_client has no source-address option: its rejection comes from 127.0.0.1, another client key)
    curl('--interface', src, '-k', '--resolve', resolve, '-A', SECRET_UA, '-o', '/dev/null',
         f'https://{SECRET_SNI}:{d.port}/')
    curl('--interface', src, '--resolve', resolve, '-o', '/dev/null', f'https://{SECRET_SNI}:{d.port}/')
    with socket.create_connection(('127.0.0.1', d.port), source_address=(src, 0)) as raw:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with ctx.wrap_socket(raw, server_hostname=SECRET_SNI) as t:
            t.sendall(f'GET / HTTP/1.1\r\nHost: {SECRET_SNI}\r\nUser-Agent: {SECRET_UA}\r\n'
                      'Connection: close\r\n\r\n'.encode())
            while t.recv(65536):
                pass
    curl('--interface', src, '-k', '-A', SECRET_UA, '-o', '/dev/null', f'{url}/')  # the visitor's key
    d.settle()
    others = d.rows('peer_addr = ?', (src,))
    ok(len(others) == 4 and any(x['user_agent'] == SECRET_UA and x['sni'] is None for x in others),
       'the other people\'s attempts from the visitor\'s address are recorded', json.dumps(others)[:1500])
    time.sleep(1.1)  # the visitor comes later than the burst of the other person's success
    for _ in range(2):
        r = curl('--interface', src, '-A', 'visitor/1', '-o', '/dev/null', f'{url}/')
        ok(r.returncode != 0, 'the visitor\'s curl without -k fails', r.stderr)
    d.settle()
    mine = [x for x in d.rows('peer_addr = ?', (src,)) if x['id'] not in {o['id'] for o in others}]
    r = curl('--interface', src, '-k', '-A', 'visitor/1', f'{url}/api/self', f'{url}/')
    body = r.stdout.decode(errors='replace') if r.returncode == 0 else ''
    cut = body.find('<!DOCTYPE')
    page = json.loads(body[:cut]) if cut > 0 else {}
    html = body[cut:] if cut > 0 else ''
    for where, text in (('/api/self', body[:cut]), ('the HTML page', html)):
        ok(text and SECRET_SNI not in text and 'Secret-Agent' not in text,
           f'{where} shows neither another person\'s SNI nor their User-Agent', text[:3000])
    ports = {x['peer_port'] for x in others + mine}
    shown = set(walk_ints(page)) & ports
    ok(not shown, '/api/self shows no source port but the connection\'s own', f'{shown}')
    seq = page.get('sequence') or {}
    eq(seq.get('failures_before'), 2, 'the visitor\'s sequence: its two failures')
    earlier = seq.get('earlier_attempts') or []
    eq([e.get('started_us') for e in earlier], [x['started_us'] for x in mine],
       'the page lists exactly the visitor\'s own earlier attempts (its sequence), none of the others\'')
    allowed = {'started_us', 'outcome', 'state_reached', 'alert_received', 'alert_sent', 'description'}
    ok(earlier and all(set(e) == allowed for e in earlier),
       'of each only how its handshake went: time, outcome, step, alerts and their sentence', json.dumps(earlier))
    ok(earlier and all(e['outcome'] == 'peer_alert' and e['alert_received'] is not None for e in earlier),
       'curl\'s rejections: the alert it sent', json.dumps(earlier))
    ok('visitor/1' in seq.get('diagnosis', ''), 'the diagnosis names the visitor by its own User-Agent',
       seq.get('diagnosis'))
    ok('sequence-attempts' in html and html.count('<tr class="fail">') == 2,
       'the HTML page lists the two failures of the visitor\'s sequence', html[-2500:])
    svg = html[html.find('id="self-timeline"'):html.find('</svg>', html.find('id="self-timeline"'))]
    ok(svg.count('class="mark"') == 3 and svg.count('data-outcome="peer_alert"') == 2
       and svg.count('(this connection)') == 1,
       'its timeline draws the visitor\'s two failures and this connection, no attempt of the others', svg)
    ok('recent' not in page, '/api/self has no list of the address\'s other attempts')

with Daemon('--no-record', v6=False) as d:
    curl('-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
    r = curl('-k', f'https://127.0.0.1:{d.port}/api/self')
    page = json.loads(r.stdout) if r.returncode == 0 else {}
    ok('connection' in page and 'recent' not in page and 'sequence' not in page,
       '--no-record: the page remembers no attempt either', r.stdout)
done()

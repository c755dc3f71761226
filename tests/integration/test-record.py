#!/usr/bin/env python3
"""One row per connection, with the exact outcome, step, alerts and error, for every way a handshake
ends: real clients (curl, openssl s_client) and hand-built byte streams for what no client does on its
own. Then durability: parallel clients and SIGTERM, SIGKILL under load."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from twlib import (TLSREPORT, Daemon, client_hello, curl, diag, done, eq, ok, read_records_until, records,
                   reset_close, wait_for, run, s_client, tls_get, wait_closed)

MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE = -0x7780
MBEDTLS_ERR_SSL_INVALID_MAC = -0x7180
MBEDTLS_ERR_NET_CONN_RESET = -0x50
MBEDTLS_ERR_SSL_CONN_EOF = -0x7280
MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL = -0x6A00


def new_rows(d, before, count=1, timeout=5.0):
    """The rows added after id `before`, waiting until `count` of them are there."""
    return d.rows('id > ?', (before,), count=count, timeout=timeout)


def last_id(d):
    d.settle()
    rows = d.rows()
    return rows[-1]['id'] if rows else 0


def check(d, name, action, want, count=1):
    before = last_id(d)
    action()
    rows = new_rows(d, before, count)
    if not eq(len(rows), count, f'{name}: exactly {count} row(s)'):
        diag(rows)
        return rows
    r = rows[-1]
    got = {k: r.get(k) for k in want}
    eq(got, want, f'{name}: {", ".join(f"{k}={v}" for k, v in want.items())}')
    return rows


def raw_connect(d):
    return socket.create_connection(('127.0.0.1', d.port))


def tls12_reset_after_certificate(d):
    s = raw_connect(d)
    s.sendall(records(client_hello(versions=(0x0303,), ciphers=(0xc02b, 0xc02c))))
    read_records_until(s, lambda t, b: t == 22 and b'\x0e\x00\x00\x00' in b)
    reset_close(s)


def tls12_alert46_after_certificate(d, rst=False):
    s = raw_connect(d)
    s.sendall(records(client_hello(versions=(0x0303,), ciphers=(0xc02b, 0xc02c))))
    read_records_until(s, lambda t, b: t == 22 and b'\x0e\x00\x00\x00' in b)
    s.sendall(bytes.fromhex('15030300020' + '22e'))
    if rst:
        reset_close(s)
    else:
        s.close()


def half_hello_then_fin(d):
    s = raw_connect(d)
    rec = records(client_hello())
    s.sendall(rec[:len(rec) // 2])  # the FIN follows as a segment of its own
    s.shutdown(socket.SHUT_WR)
    s.recv(100)
    s.close()


def connect_close(d):
    raw_connect(d).close()


def stalled(d):
    s = raw_connect(d)
    s.sendall(records(client_hello())[:20])
    wait_closed(s, 6)  # the daemon closes at its --handshake-timeout 2
    s.close()


def stalled_bytes(d, data):
    s = raw_connect(d)
    s.sendall(data)
    wait_closed(s, 6)  # the daemon closes at its --handshake-timeout 2
    s.close()


def plain_http(d):
    r = curl('-s', '-o', '-', '-w', '%{http_code}', f'http://127.0.0.1:{d.port}/')
    ok(r.stdout.endswith(b'400'), 'plain HTTP: the client got an HTTP 400')


def hostile_hello(d):
    s = raw_connect(d)
    s.sendall(records(client_hello(sni=b'evil\x1b[31m\x00\xff\xfe.example', alpn=[b'h2\x07', b'\xc3\x28'])))
    read_records_until(s, lambda t, b: False, timeout=1.0)
    s.close()


def resumed_tls12(d, tmp):
    # with a request: s_client that completes the handshake and hangs up at once looks like a client that
    # rejects the certificate after the handshake (tlswatchd(8), "Rejected after the handshake")
    sess = os.path.join(tmp, 'sess12.pem')
    s_client(d.port, '-tls1_2', '-ign_eof', '-sess_out', sess,
             input=b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    return lambda: s_client(d.port, '-tls1_2', '-ign_eof', '-sess_in', sess,
                            input=b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')


def resumed_tls13(d, tmp):
    sess = os.path.join(tmp, 'sess13.pem')
    s_client(d.port, '-tls1_3', '-ign_eof', '-sess_out', sess,
             input=b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    return lambda: s_client(d.port, '-tls1_3', '-ign_eof', '-sess_in', sess,
                            input=b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')


def test_outcomes():
    with Daemon('--handshake-timeout', '2', '--journal', 'none', v6=False) as d:
        check(d, 'curl -k', lambda: curl('-k', '-o', '/dev/null', '-A', 'curl-test', f'https://127.0.0.1:{d.port}/'),
              {'outcome': 'ok', 'state_reached': 'done', 'version': 'TLSv1.3', 'alert_received': None,
               'tls_error': None, 'http_requests': 1, 'user_agent': 'curl-test', 'alpn': 'http/1.1',
               'alpn_offered': 'h2,http/1.1'})
        rows = check(d, 'curl without -k (TLS 1.3: plaintext alert, Mbed TLS says bad MAC)',
                     lambda: curl('-o', '/dev/null', f'https://127.0.0.1:{d.port}/'),
                     {'outcome': 'peer_alert', 'state_reached': 'server_flight', 'alert_received': 48,
                      'tls_error': MBEDTLS_ERR_SSL_INVALID_MAC})
        check(d, 'curl without -k, TLS 1.2', lambda: curl('--tls-max', '1.2', '-o', '/dev/null',
                                                         f'https://127.0.0.1:{d.port}/'),
              {'outcome': 'peer_alert', 'state_reached': 'server_flight', 'alert_received': 48,
               'tls_error': MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, 'version': None})
        check(d, 's_client -verify_return_error', lambda: s_client(d.port, '-verify_return_error'),
              {'outcome': 'peer_alert', 'alert_received': 48, 'state_reached': 'server_flight'})
        check(d, 'TLS 1.2 client resets after our certificate', lambda: tls12_reset_after_certificate(d),
              {'outcome': 'peer_reset', 'state_reached': 'server_flight', 'alert_received': None,
               'tls_error': MBEDTLS_ERR_NET_CONN_RESET})
        check(d, 'TLS 1.2 client sends alert 46 then RST (Chromium)',
              lambda: tls12_alert46_after_certificate(d, rst=True),
              {'outcome': 'peer_alert', 'state_reached': 'server_flight', 'alert_received': 46})
        check(d, 'half a hello then FIN', lambda: half_hello_then_fin(d),
              {'outcome': 'peer_closed', 'state_reached': 'connected', 'tls_error': MBEDTLS_ERR_SSL_CONN_EOF,
               'ja4': None})
        check(d, 'connect and close', lambda: connect_close(d),
              {'outcome': 'no_data', 'state_reached': 'connected', 'bytes_in': 0, 'close_kind': 'fin',
               'tls_error': MBEDTLS_ERR_SSL_CONN_EOF})
        check(d, 'connect and reset', lambda: reset_close(raw_connect(d)),
              {'outcome': 'no_data', 'state_reached': 'connected', 'bytes_in': 0, 'close_kind': 'reset',
               'tls_error': MBEDTLS_ERR_NET_CONN_RESET, 'error_text': 'connection reset by the client'})
        check(d, 'stalled client', lambda: stalled(d), {'outcome': 'timeout', 'state_reached': 'connected'})
        check(d, 'plain HTTP', lambda: plain_http(d), {'outcome': 'not_tls', 'state_reached': 'connected'})
        check(d, 'two bytes of plain HTTP, then silence', lambda: stalled_bytes(d, b'GE'),
              {'outcome': 'not_tls', 'state_reached': 'connected'})
        check(d, 'TLS 1.1-only client', lambda: s_client(d.port, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'),
              {'outcome': 'tls_error', 'alert_sent': 70, 'state_reached': 'client_hello',
               'offered_versions': 'TLSv1.1'})
        check(d, 'no cipher in common', lambda: s_client(d.port, '-tls1_2', '-cipher', 'AES128-SHA'),
              {'outcome': 'tls_error', 'alert_sent': 40, 'state_reached': 'client_hello'})
        tmp = d.state
        again = resumed_tls12(d, tmp)
        check(d, 'resumed TLS 1.2 session', again,
              {'outcome': 'ok', 'resumed': 1, 'version': 'TLSv1.2', 'state_reached': 'done'})
        again = resumed_tls13(d, tmp)
        check(d, 'resumed TLS 1.3 session', again,
              {'outcome': 'ok', 'resumed': 1, 'version': 'TLSv1.3', 'state_reached': 'done'})
        check(d, 'HelloRetryRequest', lambda: s_client(d.port, '-tls1_3', '-groups', 'P-384:X25519'),
              {'hello_retry': 1, 'state_reached': 'done'})

        before = last_id(d)
        hostile_hello(d)
        rows = new_rows(d, before)
        con = sqlite3.connect(d.db)
        raw = con.execute('SELECT CAST(sni AS BLOB), CAST(alpn_offered AS BLOB) FROM attempts WHERE id = ?',
                          (rows[-1]['id'],)).fetchone() if rows else None
        con.close()
        eq(raw, (b'evil\x1b[31m\x00\xff\xfe.example', b'h2\x07,\xc3\x28'),
           'SNI and ALPN with control bytes, NUL and invalid UTF-8 are stored raw')
        r = run(['sqlite3', d.db, 'PRAGMA integrity_check'])
        eq(r.stdout.strip(), b'ok', 'database intact')

        # every row has the columns that always make sense
        for r in d.rows():
            ok(r['started_us'] <= r['ended_us'] and r['peer_addr'] == '127.0.0.1' and r['local_port'] == d.port,
               f'row {r["id"]} ({r["outcome"]}): times, addresses')


def oversized_hello(d, announced, body_bytes):
    """A ClientHello whose handshake header announces `announced` body bytes, of which body_bytes are sent
    (in records of 16384 bytes at most). Returns the seconds until the daemon closed the connection."""
    real = client_hello(sni=b'localhost')[4:]
    msg = b'\x01' + announced.to_bytes(3, 'big') + (real + os.urandom(max(0, body_bytes - len(real))))[:body_bytes]
    s = raw_connect(d)
    t0 = time.monotonic()
    try:
        s.sendall(records(msg))
    except (ConnectionResetError, BrokenPipeError):
        pass  # the daemon refused it before the rest was sent
    closed = wait_closed(s, 15)
    took = time.monotonic() - t0
    s.close()
    return took if closed else None


def test_oversized_hellos():
    """A handshake header announcing more than Mbed TLS accepts is refused as soon as the header is in: 16 MB
    announced with one record sent (the rest never comes) like a whole 65 KB hello, not at the timeout."""
    with Daemon('--handshake-timeout', '10', '--journal', 'none', v6=False) as d:
        cases = [('a whole 65 KB hello', 65577, 65577),
                 ('16 MB announced, one full record sent', 0xffffff, 16380),
                 ('16 MB announced, 200 bytes sent', 0xffffff, 200),
                 ('70000 bytes announced, 200 bytes sent', 70000, 200),
                 ('20000 bytes announced, 200 bytes sent', 20000, 200)]
        for name, announced, sent in cases:
            before = last_id(d)
            took = oversized_hello(d, announced, sent)
            ok(took is not None and took < 2.0, f'{name}: the daemon closes at once ({took} s, timeout 10 s)')
            rows = new_rows(d, before, timeout=3.0)
            if not eq(len(rows), 1, f'{name}: one row'):
                continue
            r = rows[0]
            eq({k: r[k] for k in ('outcome', 'state_reached', 'tls_error', 'close_kind', 'ja4')},
               {'outcome': 'tls_error', 'state_reached': 'connected', 'tls_error': MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL,
                'close_kind': 'server', 'ja4': None}, f'{name}: refused as too large')
            eq(r['error_text'], f'ClientHello of {announced} bytes is larger than Mbed TLS accepts (16384)',
               f'{name}: error_text names the announced length')
            ok(r['ended_us'] - r['started_us'] < 2_000_000, f'{name}: recorded at once')
        # the record itself incomplete (its header says 16384 bytes, 100 come): its handshake header is enough
        before = last_id(d)
        s = raw_connect(d)
        t0 = time.monotonic()
        s.sendall(bytes([22, 3, 1, 0x40, 0]) + b'\x01\xff\xff\xff' + client_hello(sni=b'localhost')[4:100])
        closed = wait_closed(s, 15)
        took = time.monotonic() - t0
        s.close()
        ok(closed and took < 2.0, f'16 MB announced in an incomplete record: the daemon closes at once ({took:.3f} s)')
        rows = new_rows(d, before, timeout=3.0)
        eq([(r['outcome'], r['tls_error'], r['error_text']) for r in rows],
           [('tls_error', MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL,
             'ClientHello of 16777215 bytes is larger than Mbed TLS accepts (16384)')],
           '16 MB announced in an incomplete record: refused as too large')
        # any later handshake message alike: the second ClientHello, after our HelloRetryRequest (asked for by
        # an empty key_share), announcing 16 MB
        before = last_id(d)
        tls13 = (b'\x00\x2b\x00\x03\x02\x03\x04' + b'\x00\x33\x00\x02\x00\x00' +  # supported_versions, key_share
                 b'\x00\x2d\x00\x02\x01\x01')  # psk_key_exchange_modes
        s = raw_connect(d)
        s.sendall(records(client_hello(sni=b'localhost', versions=(0x0303,), extra=tls13)))
        got = read_records_until(s, lambda t, b: t == 22, timeout=5.0)
        t0 = time.monotonic()
        s.sendall(bytes([20, 3, 3, 0, 1, 1]) + records(b'\x01\xff\xff\xff' + client_hello(sni=b'localhost')[4:]))
        closed = wait_closed(s, 15)
        took = time.monotonic() - t0
        s.close()
        ok(got and closed and took < 2.0, f'16 MB second ClientHello: the daemon closes at once ({took:.3f} s)')
        rows = new_rows(d, before, timeout=3.0)
        r = rows[0] if rows else {}
        eq({k: r.get(k) for k in ('outcome', 'hello_retry', 'tls_error', 'error_text')},
           {'outcome': 'tls_error', 'hello_retry': 1, 'tls_error': MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL,
            'error_text': 'handshake message of 16777215 bytes is larger than Mbed TLS accepts (16384)'},
           '16 MB second ClientHello: refused as too large')
        # a ClientHello of 16000 bytes (two records, padding) is within the limit: the handshake goes on
        before = last_id(d)
        pad = 16000 - len(client_hello(sni=b'localhost')) - 4
        big = client_hello(sni=b'localhost', extra=(0x0015).to_bytes(2, 'big') + pad.to_bytes(2, 'big') + bytes(pad))
        s = raw_connect(d)
        s.sendall(records(big))
        got = read_records_until(s, lambda t, b: t == 22, timeout=5.0)
        s.close()
        rows = new_rows(d, before)
        ok(any(t == 22 for t, b in got) and rows and rows[0]['outcome'] != 'tls_error' and
           rows[0]['state_reached'] in ('client_hello', 'server_flight'),
           f'a {len(big)}-byte ClientHello is answered: {rows[0]["outcome"] if rows else None}')


def renegotiate_s_client(d):
    """openssl s_client on TLS 1.2 typing R (renegotiate), the way a user does; it quits on the refusal."""
    p = subprocess.Popen(['openssl', 's_client', '-tls1_2', '-connect', f'127.0.0.1:{d.port}', '-servername',
                          'localhost'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p.stdin.write(b'R\n')
    p.stdin.flush()
    try:
        out, _ = p.communicate(timeout=10)  # closes stdin only once s_client gave up
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    ok(b'RENEGOTIATING' in out and b'no renegotiation' in out, 's_client renegotiated and was refused', out[-300:])


def renegotiate_gnutls(d):
    r = run(['gnutls-cli', '--insecure', '--rehandshake', '--priority', 'NORMAL:-VERS-TLS1.3', '-p', str(d.port),
             '127.0.0.1'], input=b'', timeout=20)
    ok(b'No renegotiation' in r.stdout + r.stderr, 'gnutls-cli --rehandshake was refused', (r.stdout + r.stderr)[-300:])


def test_renegotiation():
    """A client that asks to renegotiate after the handshake (TLS 1.2) is refused with a warning alert
    no_renegotiation(100) and then gives up with a fatal alert: recorded as that, and tlsreport does not call
    it a certificate rejection."""
    renegotiation_text = ('the client asked to renegotiate the TLS session before any request; renegotiation is '
                          'disabled, so we refused (alert no_renegotiation(100)); the client then closed with alert ')
    with Daemon('--journal', 'none', v6=False) as d:
        ids = []
        clients = [('openssl s_client -tls1_2, R', renegotiate_s_client, 40)]
        if run(['sh', '-c', 'command -v gnutls-cli']).returncode == 0:
            clients.append(('gnutls-cli --rehandshake', renegotiate_gnutls, None))
        else:
            diag('gnutls-cli not installed: only openssl s_client renegotiates')
        for name, client, alert in clients:
            before = last_id(d)
            client(d)
            rows = new_rows(d, before)
            if not eq(len(rows), 1, f'{name}: one row'):
                continue
            r = rows[0]
            ids.append(r['id'])
            eq({k: r[k] for k in ('outcome', 'state_reached', 'alert_sent', 'version', 'http_requests', 'close_kind')},
               {'outcome': 'peer_alert', 'state_reached': 'done', 'alert_sent': 100, 'version': 'TLSv1.2',
                'http_requests': 0, 'close_kind': 'alert'}, f'{name}: the row says we refused a renegotiation')
            if alert is not None:
                eq(r['alert_received'], alert, f'{name}: then the client sent alert {alert}')
            ok(r['error_text'] and r['error_text'].startswith(renegotiation_text),
               f'{name}: error_text says what happened: {r["error_text"]}')
        r = run([TLSREPORT, '--database', d.db, '--no-pager', '-o', 'json', '--all'])
        seqs = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        mine = [s for s in seqs if set(s['attempt_ids']) & set(ids)]
        ok(len(mine) >= 1 and all(not s['pattern'].startswith('cert_rejected') for s in mine),
           'tlsreport: no certificate pattern for a refused renegotiation: ' + ', '.join(s['pattern'] for s in mine))
        ok(mine and all('asked to renegotiate' in s['diagnosis'] and 'refused (alert no_renegotiation)' in s['diagnosis']
                        and 'not a rejection of our certificate' in s['diagnosis'] and
                        'rejected our certificate' not in s['diagnosis'] for s in mine),
           'tlsreport: the diagnosis says the client asked to renegotiate and we refused: ' +
           ' | '.join(s['diagnosis'] for s in mine))
        r = run([TLSREPORT, '--database', d.db, '--no-pager', '-o', 'json', 'attempts'])
        got = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        ok(ids and all(a['alert_sent'] == 100 for a in got if a['id'] in ids),
           'tlsreport attempts: alert_sent 100 on the refused renegotiations')


def test_connection_limit():
    with Daemon('--max-connections', '3', '--journal', 'none', v6=False) as d:
        d.settle()
        idle = [socket.create_connection(('127.0.0.1', d.port)) for _ in range(3)]
        d.wait_accepted(idle)
        for x in idle:  # past their ClientHello: a full daemon evicts only connections without one
            x.sendall(records(client_hello()))
            read_records_until(x, lambda t, b: t == 22)
        before = last_id(d)
        s = socket.create_connection(('127.0.0.1', d.port))
        s.settimeout(3)
        ok(s.recv(10) == b'', 'over the limit: the connection is closed at once')
        rows = new_rows(d, before)
        eq([(r['outcome'], r['state_reached']) for r in rows], [('server_error', 'connected')],
           'over the limit: recorded as server_error')
        ok(rows and 'limit' in rows[0]['error_text'], 'over the limit: error_text says why')
        for x in idle:
            x.close()


def test_parallel_then_sigterm():
    n = 40
    with Daemon('--journal', 'none', v6=False) as d:
        before = last_id(d)
        procs = [subprocess.Popen(['curl', '-sk', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/'])
                 for _ in range(n)]
        for p in procs:
            p.wait(30)
        eq(d.stop(signal.SIGTERM), 0, 'SIGTERM after parallel clients: exit 0')
        rows = d.rows('id > ?', (before,))
        eq((len(rows), sum(r['outcome'] == 'ok' for r in rows)), (n, n),
           f'{n} parallel clients then SIGTERM: exactly {n} rows, all ok')
        eq(len({r['peer_port'] for r in rows}), n, 'no row doubled')


def test_sigkill_under_load():
    with Daemon('--journal', 'none', v6=False) as d:
        stop = threading.Event()

        def load():
            while not stop.is_set():
                subprocess.run(['curl', '-sk', '-o', '/dev/null', '--max-time', '2',
                                f'https://127.0.0.1:{d.port}/'])
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        # kill it under load: once some records are written and connections are open
        wait_for(lambda: len(d.rows()) >= 20, 20)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        r = run(['sqlite3', d.db, 'PRAGMA integrity_check'])
        eq(r.stdout.strip(), b'ok', 'SIGKILL under load: integrity_check ok')
        n = len(d.rows())
        ok(n > 0, f'SIGKILL under load: {n} rows kept')


test_outcomes()
test_oversized_hellos()
test_renegotiation()
test_connection_limit()
test_parallel_then_sigterm()
test_sigkill_under_load()
done()

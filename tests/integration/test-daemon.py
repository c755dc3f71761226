#!/usr/bin/env python3
"""tlswatchd end to end on loopback: listening (--listen and systemd-socket-activate, IPv4 and IPv6),
real clients in TLS 1.2 and 1.3, the HTTP answers, the generated certificate, key checks, SIGHUP reload,
SIGTERM drain, idle connections that must not delay a real client, and clear start-up errors."""
import json
import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time

from twlib import (Daemon, TLSWATCHD, curl, diag, done, eq, free_port, json_get, ok, parse_http, run, s_client,
                   spawn, tls_exchange, tls_get, insecure_context, wait_for, wait_port)


def test_clients(d):
    for host in ('127.0.0.1', '[::1]'):
        r = curl('-k', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', f'https://{host}:{d.port}/')
        eq(r.stdout.decode(), '200 1.1', f'curl -k over {host}: HTTP/1.1 200')
    for ver, flag in (('TLSv1.2', '-tls1_2'), ('TLSv1.3', '-tls1_3')):
        r = s_client(d.port, flag, '-ign_eof', input=b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                     timeout=20)
        out = r.stdout.decode(errors='replace')
        ok(f'Protocol  : {ver}' in out or f'New, {ver}' in out, f'openssl s_client {flag} negotiates {ver}',
           out[-800:])
        m = re.search(r'\{"connection".*', out)
        ok(m is not None and json.loads(m.group(0))['connection']['version'] == ver,
           f'/api/self over s_client {flag} reports version {ver}')
    r = run(['gnutls-cli', '--insecure', '--port', str(d.port), '127.0.0.1'], input=b'', timeout=20)
    out = r.stdout.decode(errors='replace')
    ok('(TLS1.3' in out, 'gnutls-cli negotiates TLS 1.3', out[-600:])
    for ver in ('1.2', '1.3'):
        st, hdr, body, v = tls_get(d.port, '/api/self', version=ver)
        eq((st, v), (200, 'TLSv' + ver), f'Python ssl TLS {ver}: 200 over TLSv{ver}')
        j = json.loads(body)
        eq(j['connection']['version'], 'TLSv' + ver, f'Python ssl TLS {ver}: page reports the version')
    st, hdr, body, v = tls_get(d.port, '/api/self', host='::1')
    eq(json.loads(body)['connection']['peer_addr'], '::1', 'IPv6 peer address without brackets')


def test_http(d):
    st, hdr, body, _ = tls_get(d.port, '/')
    ok(st == 200 and hdr.get('content-type', '').startswith('text/html') and b'JA4' in body,
       'GET / is an HTML page with the fingerprints')
    st, hdr, body, _ = tls_get(d.port, '/api/self', headers={'User-Agent': 'tlswatch-test/1'})
    j = json.loads(body)
    ok(st == 200 and hdr.get('content-type') == 'application/json', 'GET /api/self is JSON')
    eq(j['connection']['user_agent'], 'tlswatch-test/1', '/api/self shows the User-Agent')
    ok(j['connection'].get('alpn') is None or j['connection']['alpn'] == 'http/1.1', 'ALPN is http/1.1 or none')
    st, hdr, body, _ = tls_get(d.port, '/', method='HEAD')
    ok(st == 200 and body == b'' and int(hdr.get('content-length', 0)) > 0, 'HEAD: headers with length, no body')
    eq(tls_get(d.port, '/nope')[0], 404, 'unknown path: 404')
    eq(tls_get(d.port, '/', method='POST', headers={'Content-Length': '0'})[0], 405, 'POST: 405')
    eq(tls_get(d.port, '/', method='DELETE')[0], 405, 'DELETE: 405')

    # malformed request line over TLS
    with socket.create_connection(('127.0.0.1', d.port)) as raw:
        with insecure_context().wrap_socket(raw) as s:
            s.sendall(b'GARBAGE\r\n\r\n')
            data = s.recv(4096)
    eq(parse_http(data)[0], 400, 'malformed request: 400')

    # keep-alive: two requests on one connection
    data, _ = tls_exchange(d.port, b'GET /api/self HTTP/1.1\r\nHost: x\r\n\r\nGET /api/self HTTP/1.1\r\nHost: x\r\n'
                                   b'Connection: close\r\n\r\n')
    eq(data.count(b'HTTP/1.1 200 OK'), 2, 'two pipelined keep-alive requests, two answers')

    # oversized header block
    with socket.create_connection(('127.0.0.1', d.port)) as raw:
        with insecure_context().wrap_socket(raw) as s:
            s.sendall(b'GET / HTTP/1.1\r\nX-Big: ' + b'a' * 9000 + b'\r\n\r\n')
            data = s.recv(4096)
    eq(parse_http(data)[0], 431, 'header block over 8 KiB: 431')

    # plain HTTP to the TLS port
    r = curl('-s', '-o', '-', '-w', '\n%{http_code}', f'http://127.0.0.1:{d.port}/')
    out = r.stdout.decode()
    ok(out.endswith('\n400') and 'https' in out, 'plain HTTP gets 400 telling to use https', out)


def test_certificate(d):
    cert = os.path.join(d.state, 'tlswatchd-cert.pem')
    key = os.path.join(d.state, 'tlswatchd-key.pem')
    ok(os.path.exists(cert) and os.path.exists(key), 'self-signed certificate generated in the state directory')
    eq(stat.S_IMODE(os.stat(key).st_mode), 0o600, 'generated key is 0600')
    text = run(['openssl', 'x509', '-in', cert, '-noout', '-text']).stdout.decode()
    ok('id-ecPublicKey' in text and 'prime256v1' in text, 'key type: ECDSA P-256')
    for san in ('DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1',
                f'DNS:{socket.gethostname()}'):
        ok(san in text, f'SAN {san}')
    served = run(['sh', '-c', f'openssl s_client -connect 127.0.0.1:{d.port} </dev/null 2>/dev/null | '
                              'openssl x509 -noout -fingerprint -sha256']).stdout
    on_disk = run(['openssl', 'x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).stdout
    ok(served and served == on_disk, 'the served certificate is the stored one')
    return on_disk


def fingerprint_served(port):
    return run(['sh', '-c', f'openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | '
                            'openssl x509 -noout -fingerprint -sha256']).stdout


def make_cert(dirname, name, days='30'):
    cert, key = os.path.join(dirname, name + '.crt'), os.path.join(dirname, name + '.key')
    r = run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
             '-keyout', key, '-out', cert, '-days', days, '-subj', f'/CN={name}',
             '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'])
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o600)
    return cert, key


def test_reuse_and_regenerate():
    with tempfile.TemporaryDirectory() as state:
        with Daemon(state=state, v6=False) as d:
            first = fingerprint_served(d.port)
        with Daemon(state=state, v6=False) as d:
            eq(fingerprint_served(d.port), first, 'generated certificate reused on restart')
        # an expired certificate (made with faketime, signed by the stored key) must be made anew
        cert = os.path.join(state, 'tlswatchd-cert.pem')
        r = run(['faketime', '2020-01-01 00:00:00', 'openssl', 'req', '-x509', '-key',
                 os.path.join(state, 'tlswatchd-key.pem'), '-out', cert, '-days', '1', '-subj', '/CN=expired'])
        ok(r.returncode == 0, 'an expired certificate is in place', r.stderr)
        expired = run(['openssl', 'x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).stdout
        with Daemon(state=state, v6=False) as d:
            now = fingerprint_served(d.port)
            ok(now and now != expired and now != first, 'an expired certificate is made anew on start')
            end = run(['openssl', 'x509', '-in', cert, '-noout', '-checkend', '86400'])
            eq(end.returncode, 0, 'the new certificate is valid for more than a day')
        # one that is still valid but expires within the hour is made anew too (tlswatchd(8), --cert)
        r = run(['faketime', '-f', '-1410m', 'openssl', 'req', '-x509', '-key',
                 os.path.join(state, 'tlswatchd-key.pem'), '-out', cert, '-days', '1', '-subj', '/CN=soon'])
        soon = run(['openssl', 'x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).stdout
        valid = run(['openssl', 'x509', '-in', cert, '-noout', '-checkend', '0']).returncode == 0
        ending = run(['openssl', 'x509', '-in', cert, '-noout', '-checkend', '3600']).returncode != 0
        ok(r.returncode == 0 and valid and ending, 'a certificate valid for 30 more minutes is in place', r.stderr)
        with Daemon(state=state, v6=False) as d:
            now = fingerprint_served(d.port)
            ok(now and now != soon, 'a certificate that expires within the hour is made anew on start')


def test_key_permissions():
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp, 'server')
        os.chmod(key, 0o644)
        p = run([TLSWATCHD, '--listen', f'127.0.0.1:{free_port()}', '--state-directory', tmp, '--cert', cert,
                 '--key', key], timeout=10)
        err = p.stderr.decode()
        ok(p.returncode != 0 and 'chmod 600' in err and key in err, 'key readable by others is refused clearly', err)


def test_reload():
    with tempfile.TemporaryDirectory() as tmp:
        c1, k1 = make_cert(tmp, 'one')
        c2, k2 = make_cert(tmp, 'two')
        cert, key = os.path.join(tmp, 'cert.pem'), os.path.join(tmp, 'key.pem')
        os.link(c1, cert)
        os.link(k1, key)
        with Daemon('--cert', cert, '--key', key, v6=False) as d:
            before = fingerprint_served(d.port)
            # a keep-alive connection opened before the reload
            raw = socket.create_connection(('127.0.0.1', d.port))
            s = insecure_context().wrap_socket(raw)
            s.sendall(b'GET /api/self HTTP/1.1\r\nHost: x\r\n\r\n')
            first = s.recv(65536)
            os.replace(c2, cert)
            os.replace(k2, key)
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            after = before
            while after == before and time.monotonic() < deadline:
                time.sleep(0.1)
                after = fingerprint_served(d.port)
            want = run(['openssl', 'x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).stdout
            ok(after == want and after != before, 'SIGHUP: the new certificate is served')
            s.sendall(b'GET /api/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            second = s.recv(65536)
            ok(first.startswith(b'HTTP/1.1 200') and second.startswith(b'HTTP/1.1 200'),
               'a connection opened before the reload keeps working')
            s.close()
            ok(d.proc.poll() is None, 'daemon still running after reload')
            # a broken reload keeps the old certificate
            with open(cert, 'w') as f:
                f.write('garbage')
            d.proc.send_signal(signal.SIGHUP)
            ok(wait_for(lambda: 'Reload failed' in d.output()), 'a broken certificate: the reload fails',
               d.output()[-800:])
            eq(fingerprint_served(d.port), after, 'a failed reload keeps serving the previous certificate')


def test_drain():
    with Daemon('--handshake-timeout', '3', v6=False) as d:
        # the port listens before the daemon handles signals: wait until it answers
        d.wait_ready()
        # a client in the middle of its handshake when SIGTERM arrives
        hello = socket.create_connection(('127.0.0.1', d.port))
        hello.sendall(bytes.fromhex('160301'))  # the start of a record, never completed
        d.wait_accepted([hello])
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        ok(wait_for(lambda: 'draining' in d.output() or d.proc.poll() is not None, 5) and d.proc.poll() is None,
           'SIGTERM: still draining while a handshake is open', d.output()[-800:])
        rc = d.proc.wait(15)
        took = time.monotonic() - t0
        eq(rc, 0, 'SIGTERM: exit status 0 after the drain')
        ok(2.0 <= took <= 10, f'drain waited for the open handshake to time out ({took:.1f} s)')
        hello.close()
        rows = d.rows()
        ok(any(r['outcome'] == 'timeout' for r in rows), 'the drained handshake is recorded as timeout',
           rows)


def test_drain_cuts_requests():
    with Daemon('--idle-timeout', '60', '--handshake-timeout', '60', v6=False) as d:
        # a keep-alive client that has sent half of its second request
        raw = socket.create_connection(('127.0.0.1', d.port))
        s = insecure_context().wrap_socket(raw)
        s.sendall(b'GET /api/self HTTP/1.1\r\nHost: x\r\n\r\n')
        first = s.recv(65536)
        s.sendall(b'GET / HT')
        idle = socket.create_connection(('127.0.0.1', d.port))  # and one that sent nothing
        d.wait_accepted([idle])
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(40)
        took = time.monotonic() - t0
        eq(rc, 0, 'SIGTERM with a half-received request: exit 0')
        ok(first.startswith(b'HTTP/1.1 200') and took < 14,
           f'the drain does not wait for the 60 s idle timeout ({took:.1f} s)')
        s.close()
        idle.close()
        rows = d.rows()
        ok(any(r['outcome'] == 'ok' and r['http_requests'] == 1 for r in rows),
           'the keep-alive connection is recorded with its request', rows)
        ok(any(r['outcome'] == 'server_error' and 'shut down' in (r['error_text'] or '') for r in rows),
           'the silent connection gets 10 s, not its 60 s handshake time, and is recorded as cut', rows)


def test_idle_connections():
    with Daemon('--handshake-timeout', '20', v6=False) as d:
        d.wait_ready()
        idle = []
        for _ in range(200):
            idle.append(socket.create_connection(('127.0.0.1', d.port)))
        d.wait_accepted(idle)
        t0 = time.monotonic()
        r = curl('-k', '-o', '/dev/null', '-w', '%{http_code}', f'https://127.0.0.1:{d.port}/', timeout=10)
        took = time.monotonic() - t0
        ok(r.stdout == b'200', f'200 idle connections open: a real client still gets its answer ({took:.2f} s)')
        st = run(['sh', '-c', f'ls /proc/{d.proc.pid}/fd | wc -l']).stdout
        ok(int(st) >= 200, f'the idle connections are held open ({int(st)} fds)')
        for s in idle:
            s.close()


def test_socket_activation():
    with Daemon(socket_activate=True) as d:
        for host in ('127.0.0.1', '::1'):
            st, hdr, body, v = tls_get(d.port, '/api/self', host=host)
            eq(st, 200, f'socket-activated ({host}): 200')


def test_startup_errors():
    env = {k: v for k, v in os.environ.items() if not k.startswith('LISTEN_')}
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([TLSWATCHD, '--state-directory', tmp], capture_output=True, env=env, timeout=10)
        err = p.stderr.decode()
        ok(p.returncode != 0 and 'tlswatchd.socket' in err and '--listen' in err,
           'no socket and no --listen: clear error', err)
        p = subprocess.run([TLSWATCHD, '--listen', 'nonsense'], capture_output=True, timeout=10)
        ok(p.returncode != 0 and 'ADDR:PORT' in p.stderr.decode(), 'bad --listen: clear error', p.stderr)
        p = subprocess.run([TLSWATCHD, '--tls-min', '1.1'], capture_output=True, timeout=10)
        ok(p.returncode != 0 and '1.2 or 1.3' in p.stderr.decode(), 'bad --tls-min: clear error', p.stderr)
        # the option takes what the store takes: the largest value starts, one more is refused at once
        port = free_port()
        p = subprocess.Popen([TLSWATCHD, '--state-directory', tmp, '--listen', f'127.0.0.1:{port}',
                              '--retention-days', '36500'], stderr=subprocess.PIPE)
        try:
            started = wait_port('127.0.0.1', port, proc=p)
        except RuntimeError:
            started = False
        p.terminate()
        err = p.communicate(timeout=30)[1].decode()
        ok(started, '--retention-days 36500 (100 years, the store\'s limit) starts', err[-500:])
        p = subprocess.run([TLSWATCHD, '--state-directory', tmp, '--listen', f'127.0.0.1:{port}',
                            '--retention-days', '36501'], capture_output=True, timeout=10)
        ok(p.returncode != 0 and '0 to 36500' in p.stderr.decode(), '--retention-days 36501: clear error',
           p.stderr)


def test_tls12_only():
    with Daemon('--tls-max', '1.2', v6=False) as d:
        st, hdr, body, v = tls_get(d.port, '/api/self')
        eq(v, 'TLSv1.2', '--tls-max 1.2: a TLS 1.3 client negotiates 1.2')
    with Daemon('--tls-min', '1.3', v6=False) as d:
        r = s_client(d.port, '-tls1_2')
        ok(r.returncode != 0, '--tls-min 1.3: a TLS 1.2-only client is refused')


def test_thread_names():
    want = {'tlsw-worker0', 'tlsw-worker1', 'tlsw-store', 'tlsw-checkpoint', 'tlsw-journal'}
    with Daemon('--threads', '2') as d:
        tls_get(d.port)  # the port listens before the workers run; they start one after the other
        deadline = time.monotonic() + 10
        while True:
            names = sorted(open(f'/proc/{d.proc.pid}/task/{t}/comm').read().strip()
                           for t in os.listdir(f'/proc/{d.proc.pid}/task'))
            if want <= set(names) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        diag(f'threads: {names}')
        for name in sorted(want):
            ok(name in names, f'a thread named {name} (top -H, ps -L)')


def main():
    test_thread_names()
    with Daemon() as d:
        test_clients(d)
        test_http(d)
        test_certificate(d)
    test_reuse_and_regenerate()
    test_key_permissions()
    test_reload()
    test_tls12_only()
    test_socket_activation()
    test_startup_errors()
    test_idle_connections()
    test_drain()
    test_drain_cuts_requests()
    done()


main()

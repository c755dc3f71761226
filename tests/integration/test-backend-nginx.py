#!/usr/bin/env python3
"""tlswatchd --backend in front of Debian's nginx (`listen ... proxy_protocol`): nginx reads the PROXY v2
header and logs the client's address and port ($proxy_protocol_addr, $proxy_protocol_port) as the attempt's
row has them. Real clients: curl over HTTP/1.1 and, with --backend-alpn h2,http/1.1, over HTTP/2 (several
resources on one connection), Chromium loading a page with a stylesheet, two scripts and an image, a 100 MB
download over HTTP/2 and a 100 MB PUT over HTTP/1.1 with their checksums, and nginx stopped and started
again mid-run."""
import hashlib
import os
import tempfile
import time

from nginxbackend import Nginx
from twlib import Daemon, curl, done, eq, now_us, ok, run

MB = 1 << 20


def log_of(n, port):
    lines = [x for x in n.access_log() if len(x) >= 6 and x[1] == str(port)]
    return lines[-1] if lines else None


n = Nginx().start()
with open(os.path.join(n.www, 'index.html'), 'w') as f:
    f.write('<html>hello from nginx</html>\n')
for name in ('a', 'b', 'c'):
    with open(os.path.join(n.www, f'{name}.html'), 'w') as f:
        f.write(f'resource {name}\n')
big = os.urandom(MB) * 100
with open(os.path.join(n.www, 'big.bin'), 'wb') as f:
    f.write(big)
big_sha = hashlib.sha256(big).hexdigest()

# HTTP/1.1 only (the default ALPN): curl --http2 gets HTTP/1.1
with Daemon('--backend', f'127.0.0.1:{n.port}', '--journal', 'none') as d:
    d.settle()
    since = now_us()
    r = curl('-k', '-w', '\n%{local_port} %{http_version}', f'https://127.0.0.1:{d.port}/index.html')
    body, _, tail = r.stdout.decode().rpartition('\n')
    lport, version = (tail.split() + ['0', ''])[:2]
    eq(body, '<html>hello from nginx</html>\n', 'curl through tlswatchd gets nginx\'s page')
    eq((log_of(n, lport) or [])[:6], ['127.0.0.1', lport, 'HTTP/1.1', 'GET', '/index.html', '200'],
       'nginx logs the client\'s address and port from the PROXY header')
    row = d.row_of(int(lport), since)
    eq((row.get('outcome'), row.get('peer_port'), row.get('backend_error')), ('ok', int(lport), None),
       'the attempt\'s row: the same client port, forwarded')
    r = curl('-k', '--http2', '-w', '%{http_version}', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/index.html')
    eq(r.stdout, b'1.1', 'without --backend-alpn, h2 is not offered: curl --http2 speaks HTTP/1.1')

    # 50 clients at once, 40 keep-alive requests each (h2load): every request answered, one row per connection
    d.settle()
    before = {x['id'] for x in d.rows()}
    r = run(['h2load', '--h1', '-n', '2000', '-c', '50', f'https://127.0.0.1:{d.port}/index.html'], timeout=120)
    out = r.stdout.decode()
    ok('2000 succeeded, 0 failed, 0 errored, 0 timeout' in out, 'h2load: 50 clients, 2000 requests, all answered',
       out[-800:])
    d.settle()
    rows = [x for x in d.rows() if x['id'] not in before]
    ok(len(rows) == 50 and all(x['outcome'] == 'ok' and x['backend_error'] is None for x in rows),
       f'{len(rows)} rows, all ok and forwarded', rows[:3])

    # a 100 MB PUT with its checksum
    with tempfile.NamedTemporaryFile() as up:
        blob = os.urandom(MB) * 100
        up.write(blob)
        up.flush()
        t0 = time.monotonic()
        r = curl('-k', '-T', up.name, '-w', '%{http_code}', f'https://127.0.0.1:{d.port}/up/blob.bin', timeout=60)
        secs = time.monotonic() - t0
        ok(r.stdout in (b'201', b'204'), f'100 MB PUT through tlswatchd to nginx: {r.stdout.decode()}', r.stderr)
        with open(os.path.join(n.www, 'up', 'blob.bin'), 'rb') as f:
            eq(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(blob).hexdigest(),
               f'nginx stored it intact ({100 / secs:.0f} MB/s)')

    # nginx stopped mid-run, then started again
    n.stop()
    since = now_us()
    r = curl('-k', '-w', '%{local_port}', f'https://127.0.0.1:{d.port}/index.html')
    ok(r.returncode == 52, 'nginx stopped: the client gets a clean close (curl: empty reply)', r.stderr)
    eq(d.row_of(int(r.stdout.decode() or 0), since).get('backend_error'),
       f'connect to 127.0.0.1:{n.port}: Connection refused', 'the row says why')
    n.start()
    r = curl('-k', f'https://127.0.0.1:{d.port}/index.html')
    eq(r.stdout, b'<html>hello from nginx</html>\n', 'nginx started again: served again')
    ok(d.proc.poll() is None, 'tlswatchd kept running')

# HTTP/2 with --backend-alpn h2,http/1.1, to nginx's HTTP/2 port
with Daemon('--backend', f'127.0.0.1:{n.port2}', '--backend-alpn', 'h2,http/1.1', '--journal', 'none') as d:
    d.settle()
    urls = [f'https://127.0.0.1:{d.port}/{x}.html' for x in ('a', 'b', 'c')]
    since = now_us()
    r = curl('-k', '--http2', '-w', '%{http_version} %{num_connects} %{local_port}\n', *urls)
    out = r.stdout.decode()
    eq([line for line in out.splitlines() if line.startswith('resource')], ['resource a', 'resource b', 'resource c'],
       'HTTP/2: three resources')
    stats = [line.split() for line in out.splitlines() if line.startswith('2 ')]
    eq([s[0] for s in stats], ['2', '2', '2'], 'all over HTTP/2')
    eq(sum(int(s[1]) for s in stats), 1, 'on one connection')
    lport = stats[0][2] if stats else '0'
    row = d.row_of(int(lport), since)
    eq(row.get('alpn'), 'h2', 'the row: ALPN h2')
    eq([x[:4] for x in n.access_log() if len(x) >= 6 and x[1] == lport],
       [['127.0.0.1', lport, 'HTTP/2.0', 'GET']] * 3, 'nginx logs three HTTP/2 requests from the client')
    t0 = time.monotonic()
    r = curl('-k', '--http2', f'https://127.0.0.1:{d.port}/big.bin', timeout=60)
    secs = time.monotonic() - t0
    ok(r.returncode == 0 and hashlib.sha256(r.stdout).hexdigest() == big_sha,
       f'100 MB download over HTTP/2, same SHA-256 ({100 / secs:.0f} MB/s)', r.stderr)

    # Chromium loads a page with a stylesheet, two scripts and an image through tlswatchd
    pages = {'page.html': '<html><head><link rel="stylesheet" href="s.css"><script src="a.js"></script></head>'
                          '<body><p id="x">static</p><img src="i.svg"><script src="b.js"></script></body></html>\n',
             's.css': 'p { color: red; }\n',
             'a.js': 'window.fromA = "a-ran";\n',
             'b.js': 'document.getElementById("x").textContent = window.fromA + " b-ran";\n',
             'i.svg': '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'}
    for name, text in pages.items():
        with open(os.path.join(n.www, name), 'w') as f:
            f.write(text)
    d.settle()
    before = {r['id'] for r in d.rows()}
    with tempfile.TemporaryDirectory() as profile:
        r = run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors',
                 f'--user-data-dir={profile}', '--dump-dom', f'https://localhost:{d.port}/page.html'], timeout=90)
    ok(b'<p id="x">a-ran b-ran</p>' in r.stdout, 'Chromium: the page and both scripts ran, in order',
       r.stdout[-500:] + r.stderr[-1000:])
    d.settle()
    rows = [x for x in d.rows() if x['id'] not in before]
    ok(rows and all(x['outcome'] == 'ok' and x['alpn'] == 'h2' and x['backend_error'] is None for x in rows),
       f'Chromium\'s {len(rows)} connection(s): ok, h2, forwarded', rows)
    ports = {str(x['peer_port']) for x in rows}
    got = sorted(x[4] for x in n.access_log() if len(x) >= 6 and x[1] in ports and x[2] == 'HTTP/2.0' and
                 x[5] == '200' and x[0] == rows[0]['peer_addr'])
    eq(got, sorted('/' + p for p in pages), 'nginx served every resource to Chromium over HTTP/2, from its address')

n.close()
done()

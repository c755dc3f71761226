#!/usr/bin/env python3
"""tlswatchd --backend-protocol http in front of Debian's nginx on a plain HTTP/1.1 port: nginx logs the
X-Forwarded-For, TLS-Attempt-Id and TLS-Prior-Failures it got, as the attempts' rows have them. Real
clients: curl over HTTP/1.1 and --http2 (HTTP/1.1 is all that is offered), h2load with 50 keep-alive
clients, headless Chromium loading a page with a stylesheet, two scripts and an image, a 100 MB download
with its checksum, a large upload that nginx refuses at once (the client gets the 413), and nginx stopped
(502) and started again mid-run."""
import hashlib
import os
import tempfile
import time
import warnings

import requests

from nginxbackend import Nginx
from twlib import Daemon, curl, done, eq, now_us, ok, run

MB = 1 << 20
warnings.filterwarnings('ignore', message='Unverified HTTPS request')


n = Nginx().start()
pages = {'index.html': '<html>hello from nginx</html>\n',
         'page.html': '<html><head><link rel="stylesheet" href="s.css"><script src="a.js"></script></head>'
                      '<body><p id="x">static</p><img src="i.svg"><script src="b.js"></script></body></html>\n',
         's.css': 'p { color: red; }\n',
         'a.js': 'window.fromA = "a-ran";\n',
         'b.js': 'document.getElementById("x").textContent = window.fromA + " b-ran";\n',
         'i.svg': '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'}
for name, text in pages.items():
    with open(os.path.join(n.www, name), 'w') as f:
        f.write(text)
big = os.urandom(MB) * 100
with open(os.path.join(n.www, 'big.bin'), 'wb') as f:
    f.write(big)

with Daemon('--backend', f'127.0.0.1:{n.port3}', '--backend-protocol', 'http', '--journal', 'none') as d:
    d.settle()
    since = now_us()
    r = curl('-k', '-sS', '-w', '\n%{local_port}', f'https://127.0.0.1:{d.port}/index.html')
    body, _, lport = r.stdout.decode().rpartition('\n')
    eq(body, '<html>hello from nginx</html>\n', 'curl through tlswatchd gets nginx\'s page')
    row = d.row_of(int(lport or 0), since)
    log = [x for x in n.access_log() if len(x) >= 9 and x[4] == '/index.html']
    eq(log[-1][2:] if log else None, ['HTTP/1.1', 'GET', '/index.html', '200', '127.0.0.1', str(row.get('id')), '0'],
       'nginx got the request with X-Forwarded-For, TLS-Attempt-Id (the row\'s id) and TLS-Prior-Failures')
    eq((row.get('outcome'), row.get('alpn'), row.get('http_requests'), row.get('backend_error')),
       ('ok', 'http/1.1', 1, None), 'the row: ok, http/1.1, one request, forwarded')
    r = curl('-k', '-sS', '--http2', '-w', '%{http_version}', '-o', '/dev/null', f'https://127.0.0.1:{d.port}/')
    eq(r.stdout, b'1.1', 'curl --http2 speaks HTTP/1.1 (only http/1.1 is offered)')

    # 50 clients at once, 40 keep-alive requests each: all answered, one row per connection
    d.settle()
    before = {x['id'] for x in d.rows()}
    r = run(['h2load', '--h1', '-n', '2000', '-c', '50', f'https://127.0.0.1:{d.port}/index.html'], timeout=120)
    out = r.stdout.decode()
    ok('2000 succeeded, 0 failed, 0 errored, 0 timeout' in out, 'h2load: 50 clients, 2000 requests, all answered',
       out[-800:])
    d.settle()
    rows = [x for x in d.rows() if x['id'] not in before]
    ok(len(rows) == 50 and all(x['outcome'] == 'ok' and x['backend_error'] is None for x in rows) and
       sum(x['http_requests'] for x in rows) == 2000, f'{len(rows)} rows, ok, forwarded, 2000 requests in all',
       rows[:2])

    # Chromium loads a page with a stylesheet, two scripts and an image through tlswatchd
    d.settle()
    before = {x['id'] for x in d.rows()}
    with tempfile.TemporaryDirectory() as profile:
        r = run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors',
                 f'--user-data-dir={profile}', '--dump-dom', f'https://localhost:{d.port}/page.html'], timeout=90)
    ok(b'<p id="x">a-ran b-ran</p>' in r.stdout, 'Chromium: the page and both scripts ran, in order',
       r.stdout[-500:] + r.stderr[-1000:])
    d.settle()
    rows = [x for x in d.rows() if x['id'] not in before]
    ok(rows and all(x['outcome'] == 'ok' and x['alpn'] == 'http/1.1' and x['backend_error'] is None
                    and x['user_agent'] and 'Chrome' in x['user_agent'] for x in rows if x['http_requests']),
       f'Chromium\'s {len(rows)} connection(s): ok, http/1.1, forwarded, its User-Agent', rows)
    ids = {str(x['id']) for x in rows}
    got = sorted(x[4] for x in n.access_log() if len(x) >= 9 and x[7] in ids and x[5] == '200')
    ok(set('/' + p for p in pages if p != 'index.html') <= set(got),
       'nginx served every resource to Chromium, each tagged with its connection\'s attempt id', got)

    # 100 MB download
    t0 = time.monotonic()
    r = curl('-k', '-sS', f'https://127.0.0.1:{d.port}/big.bin', timeout=60)
    secs = time.monotonic() - t0
    ok(hashlib.sha256(r.stdout).digest() == hashlib.sha256(big).digest(),
       f'100 MB from nginx, same SHA-256 ({100 / secs:.0f} MB/s)', r.stderr)

    # a large upload refused early (nginx answers 413 before the body, then reads and drops it): the
    # client, which sends its whole body before it reads, gets the 413, not a reset over it (python
    # requests, as curl waits for the answer first)
    for size in (5 * MB, 40 * MB):
        try:
            got = requests.put(f'https://127.0.0.1:{d.port}/small/up.bin', data=b'u' * size, verify=False,
                               timeout=60).status_code
        except requests.RequestException as e:
            got = repr(e)[:200]
        eq(got, 413, f'a {size // MB} MB upload nginx refuses at once: the client reads the 413')

    # nginx stopped mid-run, then started again
    n.stop()
    since = now_us()
    r = curl('-k', '-sS', '-w', '\n%{http_code} %{local_port}', f'https://127.0.0.1:{d.port}/index.html')
    code, lport = (r.stdout.decode().rpartition('\n')[2].split() + ['', '0'])[:2]
    eq(code, '502', 'nginx stopped: 502')
    eq(d.row_of(int(lport), since).get('backend_error'), f'connect to 127.0.0.1:{n.port3}: Connection refused',
       'the row says why')
    n.start()
    r = curl('-k', '-sS', f'https://127.0.0.1:{d.port}/index.html')
    eq(r.stdout, b'<html>hello from nginx</html>\n', 'nginx started again: served again')
    ok(d.proc.poll() is None, 'tlswatchd kept running')

n.close()
done()

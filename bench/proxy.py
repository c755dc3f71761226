#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tlswatchd --backend (both protocols) against nginx as a TLS-terminating proxy, in the same run, to the
same backend.

    python3 bench/proxy.py [BUILDDIR] [--requests N] [--idle N] [--threads N]

BUILDDIR: a release build (default build-bench: meson setup build-bench -Dbuildtype=release && ninja -C
build-bench). The backend is one nginx instance of its own (temporary prefix, loopback ports) serving the
same files on two ports: with `proxy_protocol` for tlswatchd --backend-protocol proxy-v2, plain for
tlswatchd --backend-protocol http and for the proxy nginx. The proxy nginx
has as many workers as tlswatchd has threads, the same certificate (tlswatchd's generated P-256 one),
TLS 1.3, and keep-alive connections to the backend (upstream keepalive), its best configuration.
tlswatchd records into a database of its own (--journal none), as in production.

Figures, each for tlswatchd (proxy-v2), tlswatchd (http), nginx and the ratios tlswatchd / nginx:
  - requests/s: h2load --h1, 32 keep-alive clients, a 1 KiB file;
  - new connections/s: h2load --h1, one request per connection (handshake + forward + request); also
    tlswatchd serving its own page without --backend, for what forwarding adds to a connection;
  - bulk: MB/s of a 256 MB file downloaded with curl (median of 3), and uploaded (PUT) likewise;
  - RSS per idle forwarded connection: N TLS connections (Python's ssl) that each made one request, held
    open; (RSS with them - RSS before) / N, for tlswatchd and the proxy nginx's workers.
Needs nginx, h2load (nghttp2-client), curl. The machine's other load shows in the absolute figures;
the ratios are what to compare."""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
from twlib import free_port, spawn, wait_for, wait_port  # noqa: E402

NGINX = os.environ.get('NGINX', '/usr/sbin/nginx')
MB = 1 << 20

BACKEND_CONF = '''
worker_processes 1;
daemon off;
pid {p}/backend.pid;
error_log {p}/backend-error.log warn;
events {{ worker_connections 8192; }}
http {{
    client_body_temp_path {p}/tmp/body; proxy_temp_path {p}/tmp/proxy; fastcgi_temp_path {p}/tmp/fcgi;
    uwsgi_temp_path {p}/tmp/uwsgi; scgi_temp_path {p}/tmp/scgi;
    access_log off;
    keepalive_requests 1000000;
    sendfile on;
    client_max_body_size 1g;
    server {{
        listen 127.0.0.1:{pp} proxy_protocol;
        listen 127.0.0.1:{plain};
        root {p}/www;
        dav_methods PUT;
        location /up/ {{ client_body_buffer_size 1m; client_body_in_file_only off; }}
    }}
}}
'''

PROXY_CONF = '''
worker_processes {workers};
daemon off;
pid {p}/proxy.pid;
error_log {p}/proxy-error.log warn;
events {{ worker_connections 8192; }}
http {{
    client_body_temp_path {p}/tmp/pbody; proxy_temp_path {p}/tmp/pproxy; fastcgi_temp_path {p}/tmp/pfcgi;
    uwsgi_temp_path {p}/tmp/puwsgi; scgi_temp_path {p}/tmp/pscgi;
    access_log off;
    keepalive_requests 1000000;
    client_max_body_size 1g;
    upstream backend {{ server 127.0.0.1:{plain}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
'''


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/status') as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def h2load(url, n, c, extra=()):
    r = subprocess.run(['h2load', '--h1', '-n', str(n), '-c', str(c), *extra, url], capture_output=True, text=True,
                       timeout=600)
    m = re.search(r'finished in [\d.]+\w+, ([\d.]+) req/s', r.stdout)
    ok = re.search(r'requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded', r.stdout)
    if not m or not ok or ok.group(1) != ok.group(2) or int(ok.group(2)) != n:
        sys.exit(f'h2load failed against {url}:\n{r.stdout}\n{r.stderr}')
    return float(m.group(1))


def curl_speed(args):
    speeds = []
    for _ in range(3):
        r = subprocess.run(['curl', '-sS', '-k', '-o', '/dev/null', '-w', '%{speed_download} %{speed_upload}',
                            *args], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            sys.exit(f'curl {args} failed: {r.stderr}')
        down, up = (float(x) for x in r.stdout.split())
        speeds.append(max(down, up) / MB)
    return statistics.median(speeds)


def hold_idle(port, n):
    """n TLS connections that each made one request and got its answer; returns them, open."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    socks = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port)), server_hostname='localhost')
        s.sendall(b'GET /small.html HTTP/1.1\r\nHost: localhost\r\n\r\n')
        got = b''
        while not got.endswith(b'x' * 16):
            got += s.recv(65536)
        socks.append(s)
    return socks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('builddir', nargs='?', default='build-bench')
    ap.add_argument('--requests', type=int, default=100000)
    ap.add_argument('--idle', type=int, default=1000)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    tlswatchd = os.path.join(a.builddir, 'daemon', 'tlswatchd')
    if not os.access(tlswatchd, os.X_OK):
        sys.exit(f'{tlswatchd}: not built (meson setup {a.builddir} -Dbuildtype=release && ninja -C {a.builddir})')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tmp = tempfile.mkdtemp(prefix='tlswatch-bench-proxy-')
    os.chmod(tmp, 0o755)
    for d in ('www', 'tmp', 'state', 'www/up'):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
        os.chmod(os.path.join(tmp, d), 0o777)
    with open(os.path.join(tmp, 'www', 'small.html'), 'wb') as f:
        f.write(b'x' * 1024)
    big = os.path.join(tmp, 'www', 'big.bin')
    with open(big, 'wb') as f:
        for _ in range(256):
            f.write(os.urandom(MB))
    pp, plain, tw_port, ngx_port, twh_port = free_port(), free_port(), free_port(), free_port(), free_port()
    with open(os.path.join(tmp, 'backend.conf'), 'w') as f:
        f.write(BACKEND_CONF.format(p=tmp, pp=pp, plain=plain))
    backend = spawn([NGINX, '-p', tmp, '-c', os.path.join(tmp, 'backend.conf')], stderr=subprocess.DEVNULL)
    wait_port('127.0.0.1', pp, proc=backend)

    state = os.path.join(tmp, 'state')
    tw = spawn([tlswatchd, '--listen', f'127.0.0.1:{tw_port}', '--state-directory', state, '--journal', 'none',
                '--threads', str(a.threads), '--max-connections-per-client', '0', '--log-level', 'err',
                '--backend', f'127.0.0.1:{pp}'])
    wait_port('127.0.0.1', tw_port, proc=tw)
    twh = spawn([tlswatchd, '--listen', f'127.0.0.1:{twh_port}', '--state-directory', state, '--database',
                 os.path.join(tmp, 'http.db'), '--journal', 'none', '--threads', str(a.threads),
                 '--max-connections-per-client', '0', '--log-level', 'err', '--backend', f'127.0.0.1:{plain}',
                 '--backend-protocol', 'http', '--max-requests', '1000000'])
    wait_port('127.0.0.1', twh_port, proc=twh)
    if not wait_for(lambda: os.path.exists(os.path.join(state, 'tlswatchd-key.pem')), 10):
        sys.exit('tlswatchd made no certificate')
    with open(os.path.join(tmp, 'proxy.conf'), 'w') as f:
        f.write(PROXY_CONF.format(p=tmp, plain=plain, port=ngx_port, workers=a.threads,
                                  cert=os.path.join(state, 'tlswatchd-cert.pem'),
                                  key=os.path.join(state, 'tlswatchd-key.pem')))
    proxy = spawn([NGINX, '-p', tmp, '-c', os.path.join(tmp, 'proxy.conf')])
    # tlswatchd serving its own page (no --backend): what a new connection costs without forwarding
    page_port = free_port()
    page = spawn([tlswatchd, '--listen', f'127.0.0.1:{page_port}', '--state-directory', state, '--database',
                  os.path.join(tmp, 'page.db'), '--journal', 'none', '--threads', str(a.threads),
                  '--max-connections-per-client', '0', '--log-level', 'err'])
    wait_port('127.0.0.1', page_port, proc=page)
    wait_port('127.0.0.1', ngx_port, proc=proxy)
    time.sleep(0.5)
    targets = {'tlswatchd': tw_port, 'tlswatchd http': twh_port, 'nginx': ngx_port}
    fig = {}
    try:
        print(f'# {a.threads} thread(s)/worker(s); load average {os.getloadavg()[0]:.1f}', flush=True)
        for name, port in targets.items():  # warm up both
            h2load(f'https://127.0.0.1:{port}/small.html', 2000, 8)
        for name, port in targets.items():
            fig[name, 'req/s'] = h2load(f'https://127.0.0.1:{port}/small.html', a.requests, 32)
            fig[name, 'conn/s'] = h2load(f'https://127.0.0.1:{port}/small.html', a.requests // 10, 32,
                                         ('--max-concurrent-streams', '1', '-H', 'Connection: close'))
            fig[name, 'down MB/s'] = curl_speed([f'https://127.0.0.1:{port}/big.bin'])
            fig[name, 'up MB/s'] = curl_speed(['-T', big, f'https://127.0.0.1:{port}/up/b.bin'])
        for name, port in targets.items():
            pids = [tw.pid] if name == 'tlswatchd' else [twh.pid] if name == 'tlswatchd http' else children(proxy.pid)
            before = rss_kib(pids)
            socks = hold_idle(port, a.idle)
            time.sleep(1)
            after = rss_kib(pids)
            fig[name, 'KiB/idle conn'] = (after - before) / a.idle
            for s in socks:
                s.close()
            time.sleep(1)
        fig['page', 'conn/s'] = h2load(f'https://127.0.0.1:{page_port}/', a.requests // 10, 32,
                                       ('--max-concurrent-streams', '1', '-H', 'Connection: close'))
    finally:
        for p in (tw, twh, proxy, backend, page):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'{"":16} {"proxy-v2":>12} {"http":>12} {"nginx":>12} {"v2/nginx":>9} {"http/nginx":>11}')
    for k in ('req/s', 'conn/s', 'down MB/s', 'up MB/s', 'KiB/idle conn'):
        t, h, n = fig['tlswatchd', k], fig['tlswatchd http', k], fig['nginx', k]
        print(f'{k:16} {t:12.1f} {h:12.1f} {n:12.1f} {t / n if n else 0:9.2f} {h / n if n else 0:11.2f}')
    t, p = fig['tlswatchd', 'conn/s'], fig['page', 'conn/s']
    print(f'new connections/s, tlswatchd --backend / tlswatchd serving its page (GET /): {t:.1f} / {p:.1f} = '
          f'{t / p:.2f}')


if __name__ == '__main__':
    main()

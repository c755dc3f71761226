"""Debian's nginx as a backend of tlswatchd --backend: an instance of its own (prefix, configuration, logs,
temporary files in a temporary directory; not the system's), listening on loopback with
`listen ... proxy_protocol` (HTTP/1.1, and HTTP/2 with prior knowledge on a second port; plain HTTP/1.1 on
port3, for --backend-protocol http), serving files
from its www/ and taking PUTs there (the DAV module), under /small/ only up to 1 KiB (a 413 otherwise). Its access log says what the PROXY header told it."""
import os
import subprocess
import tempfile

from twlib import free_port, spawn, wait_port

NGINX = os.environ.get('NGINX', '/usr/sbin/nginx')

CONF = '''
worker_processes 1;
daemon off;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    types {{ text/html html; application/octet-stream bin; }}
    log_format pp '$proxy_protocol_addr $proxy_protocol_port $server_protocol $request_method $uri $status '
                  '$http_x_forwarded_for $http_tls_attempt_id $http_tls_prior_failures';
    access_log {p}/access.log pp;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        listen 127.0.0.1:{port2} http2 proxy_protocol;
        listen 127.0.0.1:{port3};
        root {p}/www;
        client_max_body_size 512m;
        dav_methods PUT;
        create_full_put_path on;
        location /small/ {{ client_max_body_size 1k; }}
    }}
    {extra}
}}
'''


class Nginx:
    def __init__(self, extra=''):
        self.tmp = tempfile.TemporaryDirectory(prefix='tlswatch-nginx-')
        self.prefix = self.tmp.name
        os.chmod(self.prefix, 0o755)  # nginx's workers run as nobody
        for d in ('www', 'tmp', 'logs'):
            os.makedirs(os.path.join(self.prefix, d), mode=0o777, exist_ok=True)
            os.chmod(os.path.join(self.prefix, d), 0o777)
        self.www = os.path.join(self.prefix, 'www')
        self.port, self.port2, self.port3 = free_port(), free_port(), free_port()  # port3: plain HTTP
        self.conf = os.path.join(self.prefix, 'nginx.conf')
        with open(self.conf, 'w') as f:
            f.write(CONF.format(p=self.prefix, port=self.port, port2=self.port2, port3=self.port3, extra=extra))
        self.proc = None

    def start(self):
        self.proc = spawn([NGINX, '-p', self.prefix, '-c', self.conf], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.prefix, 'stderr.log'), 'ab'))
        wait_port('127.0.0.1', self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def close(self):
        self.stop()
        self.tmp.cleanup()

    def access_log(self):
        try:
            with open(os.path.join(self.prefix, 'access.log')) as f:
                return [line.split() for line in f]
        except FileNotFoundError:
            return []

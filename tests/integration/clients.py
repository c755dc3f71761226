"""Real TLS clients from Debian, driven against a tlswatchd on loopback.

Each client runs in one of three variants:
  fail      default certificate verification; against tlswatchd's self-signed certificate it must fail
  trust     the certificate made trusted the way a user of that client would (CA file, env variable,
            trust store)
  insecure  certificate verification switched off (curl -k, verify=False, InsecureSkipVerify, ...)

    import clients
    with clients.Runner() as r:                      # compiles the Java and Go programs once
        res = r.run('curl', 'fail', port, ca=cert_pem)
        res.rc, res.out, res.argv

A missing program raises ClientMissing (never skipped silently); every run is bounded by a timeout.
Only loopback addresses are accepted. `SSLKEYLOGFILE`-style key logs are written when keylog= is given
and the client supports it (Client.keylog)."""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

VARIANTS = ('fail', 'trust', 'insecure')
_SCRUB = re.compile(r'SSL|TLS|CA_BUNDLE|CA_CERT|CAINFO|ROOTS|PROXY|^PERL_LWP|^GIT_', re.I)
LOOPBACK = ('127.0.0.1', '::1', 'localhost')
# Debian's own interpreter, so that python3-requests is the Debian package (not a pyenv/venv python)
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else shutil.which('python3')


class ClientMissing(RuntimeError):
    pass


@dataclass
class Ctx:
    host: str
    port: int
    ca: str           # PEM file of the server's certificate (for the trust variant)
    tmp: str          # scratch directory of this run
    keylog: str = None
    request: bytes = b''

    @property
    def hostport(self):
        return f'[{self.host}]:{self.port}' if ':' in self.host else f'{self.host}:{self.port}'

    @property
    def url(self):
        return f'https://{self.hostport}/'

    @property
    def name_url(self):
        """The URL with 'localhost' for a loopback IP, for clients that match only DNS names."""
        return f'https://localhost:{self.port}/'


@dataclass
class Result:
    client: str
    variant: str
    argv: list
    rc: int           # exit status; None on timeout
    out: str          # tail of stdout+stderr
    seconds: float
    timed_out: bool = False

    @property
    def command(self):
        return ' '.join(shlex.quote(a) for a in self.argv)


@dataclass
class Client:
    name: str
    stack: str
    program: str                      # executable that must exist
    argv: dict                        # variant -> f(ctx, runner) -> argv list
    env: dict = field(default_factory=dict)   # variant -> f(ctx) -> extra environment
    keylog: str = None                # 'env' (SSLKEYLOGFILE), or None; argv builders handle flags
    stdin: bool = False               # feed an HTTP request on stdin (s_client, gnutls-cli)
    timeout: float = 30


def _py(code):
    return lambda c, r: [PYTHON, '-c', code, c.url]


_URLLIB = '''import ssl, sys, urllib.request
ctx = ssl._create_unverified_context() if sys.argv[2:] == ["insecure"] else None
print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=20).status)'''
_REQUESTS = '''import sys, requests, urllib3
urllib3.disable_warnings()
print(requests.get(sys.argv[1], verify=sys.argv[2:] != ["insecure"], timeout=20).status_code)'''
_NODE = '''const https = require("https");
const opts = { rejectUnauthorized: process.argv[2] !== "insecure", timeout: 20000 };
https.get(process.argv[1], opts, (res) => { console.log(res.statusCode); res.resume(); })
  .on("error", (e) => { console.error(e.code, e.message); process.exit(1); });'''
_PERL = '''use LWP::UserAgent; my $ua = LWP::UserAgent->new(timeout => 20);
$ua->ssl_opts(verify_hostname => 0, SSL_verify_mode => 0) if ($ARGV[1] // "") eq "insecure";
my $r = $ua->get($ARGV[0]); print $r->status_line, "\\n"; exit($r->is_success ? 0 : 1);'''
_RUBY = '''require "net/http"; require "openssl"
u = URI(ARGV[0]); h = Net::HTTP.new(u.host.delete("[]"), u.port); h.use_ssl = true
h.verify_mode = OpenSSL::SSL::VERIFY_NONE if ARGV[1] == "insecure"
h.open_timeout = h.read_timeout = 20; puts h.get("/").code'''
_PHP = '''$v = ($argv[2] ?? "") !== "insecure";
$ctx = stream_context_create(["ssl" => ["verify_peer" => $v, "verify_peer_name" => $v]]);
$r = file_get_contents($argv[1], false, $ctx); if ($r === false) exit(1); echo strlen($r), "\\n";'''
_GO = '''package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	cfg := &tls.Config{InsecureSkipVerify: len(os.Args) > 2 && os.Args[2] == "insecure"}
	if f := os.Getenv("SSLKEYLOGFILE"); f != "" {
		w, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0600)
		if err == nil {
			cfg.KeyLogWriter = w
		}
	}
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	res, err := c.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode)
}
'''
_JAVA = '''import java.net.URL;
import java.security.cert.X509Certificate;
import javax.net.ssl.*;

public class TwGet {
    public static void main(String[] a) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL(a[0]).openConnection();
        if (a.length > 1 && a[1].equals("insecure")) {
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, new TrustManager[] { new X509TrustManager() {
                public void checkClientTrusted(X509Certificate[] ch, String t) {}
                public void checkServerTrusted(X509Certificate[] ch, String t) {}
                public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
            } }, null);
            c.setSSLSocketFactory(ctx.getSocketFactory());
            c.setHostnameVerifier((h, s) -> true);
        }
        c.setConnectTimeout(20000);
        c.setReadTimeout(20000);
        System.out.println(c.getResponseCode());
        c.getInputStream().readAllBytes();
    }
}
'''
_CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage',
                   '--disable-background-networking', '--disable-component-update', '--disable-sync',
                   '--disable-default-apps', '--no-default-browser-check', '--use-mock-keychain']
_FIREFOX_PREFS = '''user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("network.dns.disablePrefetch", true);
'''


def _certutil_db(c, d):
    """An NSS database in d that trusts the certificate (Firefox profile / Chromium's ~/.pki/nssdb). P (trusted
    peer) is what Chromium needs for a self-signed CA:FALSE certificate; with C alone it says ERR_CERT_INVALID."""
    os.makedirs(d, exist_ok=True)
    _need('certutil')
    subprocess.run(['certutil', '-N', '-d', f'sql:{d}', '--empty-password'], check=True, capture_output=True,
                   timeout=30)
    subprocess.run(['certutil', '-A', '-d', f'sql:{d}', '-t', 'CP,,', '-n', 'tlswatchd', '-i', c.ca], check=True,
                   capture_output=True, timeout=30)


def _firefox(variant):
    def argv(c, r):
        prof = os.path.join(c.tmp, 'ff-profile')
        os.makedirs(prof, exist_ok=True)
        with open(os.path.join(prof, 'user.js'), 'w') as f:
            f.write(_FIREFOX_PREFS)
        if variant == 'trust':
            _certutil_db(c, prof)
        return ['firefox-esr', '--headless', '--no-remote', '--profile', prof,
                '--screenshot', os.path.join(c.tmp, 'shot.png'), c.url]
    return argv


def _chromium(variant):
    def argv(c, r):
        extra = ['--ignore-certificate-errors'] if variant == 'insecure' else []
        if variant == 'trust':  # Chromium on Linux trusts what is in $HOME/.pki/nssdb
            _certutil_db(c, os.path.join(c.tmp, 'home', '.pki', 'nssdb'))
        if c.keylog:
            extra.append(f'--ssl-key-log-file={c.keylog}')
        return (['chromium'] + _CHROMIUM_FLAGS + extra +
                [f'--user-data-dir={os.path.join(c.tmp, "chrome-profile")}', '--dump-dom', c.url])
    return argv


def _java_truststore(c):
    ks = os.path.join(c.tmp, 'trust.p12')
    if not os.path.exists(ks):
        subprocess.run(['keytool', '-importcert', '-noprompt', '-alias', 'tlswatchd', '-file', c.ca, '-keystore', ks,
                        '-storetype', 'PKCS12', '-storepass', 'changeit'], check=True, capture_output=True,
                       timeout=60)
    return ks


def _three(fn):
    """fn(ctx, runner, variant) -> argv, for every variant."""
    return {v: (lambda v: lambda c, r: fn(c, r, v))(v) for v in VARIANTS}


def _ssl_cert_file(c):
    return {'SSL_CERT_FILE': c.ca}


CLIENTS = [
    Client('curl', 'OpenSSL', 'curl', {
        'fail': lambda c, r: ['curl', '-sS', '-o', '/dev/null', '--max-time', '20', c.url],
        'trust': lambda c, r: ['curl', '-sS', '-o', '/dev/null', '--max-time', '20', '--cacert', c.ca, c.url],
        'insecure': lambda c, r: ['curl', '-sS', '-o', '/dev/null', '--max-time', '20', '-k', c.url]},
        keylog='env'),
    Client('openssl-s_client', 'OpenSSL', 'openssl', _three(lambda c, r, v: (
        ['openssl', 's_client', '-connect', c.hostport, '-quiet', '-ign_eof'] +
        (['-keylogfile', c.keylog] if c.keylog else []) +
        {'fail': ['-verify_return_error'], 'trust': ['-verify_return_error', '-CAfile', c.ca],
         'insecure': []}[v])), stdin=True),
    Client('python3-urllib', 'OpenSSL', PYTHON, _three(lambda c, r, v: [PYTHON, '-c', _URLLIB, c.url] + (
        ['insecure'] if v == 'insecure' else [])),
        env={'trust': _ssl_cert_file}, keylog='env'),
    Client('python3-requests', 'OpenSSL', PYTHON, _three(lambda c, r, v: [PYTHON, '-c', _REQUESTS, c.url] + (
        ['insecure'] if v == 'insecure' else [])),
        env={'trust': lambda c: {'REQUESTS_CA_BUNDLE': c.ca}}, keylog='env'),
    Client('w3m', 'OpenSSL', 'w3m', _three(lambda c, r, v: ['w3m', '-dump'] + {
        'fail': [], 'trust': ['-o', f'ssl_ca_file={c.ca}'], 'insecure': ['-o', 'ssl_verify_server=0']}[v] +
        [c.name_url])),  # w3m checks dNSName SANs only: an IP URL fails in every variant
    Client('perl-lwp', 'OpenSSL', 'perl', _three(lambda c, r, v: ['perl', '-e', _PERL, c.url] + (
        ['insecure'] if v == 'insecure' else [])),
        env={'trust': lambda c: {'PERL_LWP_SSL_CA_FILE': c.ca}}),
    Client('ruby-net-http', 'OpenSSL', 'ruby', _three(lambda c, r, v: ['ruby', '-e', _RUBY, c.url] + (
        ['insecure'] if v == 'insecure' else [])), env={'trust': _ssl_cert_file}),
    Client('php', 'OpenSSL', 'php', _three(lambda c, r, v: ['php'] + (
        ['-d', f'openssl.cafile={c.ca}'] if v == 'trust' else []) + ['-r', _PHP, '--', c.url] + (
        ['insecure'] if v == 'insecure' else []))),
    Client('node-https', 'OpenSSL (Node bundled)', 'node', _three(lambda c, r, v: ['node'] + (
        [f'--tls-keylog={c.keylog}'] if c.keylog else []) + ['-e', _NODE, c.url] + (
        ['insecure'] if v == 'insecure' else [])), env={'trust': lambda c: {'NODE_EXTRA_CA_CERTS': c.ca}}),
    Client('gnutls-cli', 'GnuTLS', 'gnutls-cli', _three(lambda c, r, v: ['gnutls-cli', '-p', str(c.port)] + {
        'fail': [], 'trust': ['--x509cafile', c.ca], 'insecure': ['--insecure']}[v] + [c.host]),
        stdin=True, keylog='env'),
    Client('wget', 'GnuTLS', 'wget', _three(lambda c, r, v: ['wget', '-nv', '-O', '/dev/null', '-T', '20',
                                                             '--tries=1'] + {
        'fail': [], 'trust': [f'--ca-certificate={c.ca}'], 'insecure': ['--no-check-certificate']}[v] + [c.url]),
        keylog='env'),
    # git speaks HTTP to a server that is not a git server: the succeeding variants end in "not found" (rc 128)
    Client('git', 'GnuTLS (libcurl-gnutls)', 'git', _three(lambda c, r, v: ['git'] + {
        'fail': [], 'trust': ['-c', f'http.sslCAInfo={c.ca}'], 'insecure': ['-c', 'http.sslVerify=false']}[v] +
        ['ls-remote', c.url + 'repo.git']),
        env={v: (lambda c: {'GIT_TERMINAL_PROMPT': '0', 'GIT_CONFIG_NOSYSTEM': '1'}) for v in VARIANTS},
        keylog='env'),
    # Lynx's trust variant (SSL_CERT_FILE) still fails: Lynx does not accept the CA:FALSE self-signed
    # certificate as a trust anchor; FORCE_SSL_PROMPT:yes (insecure) answers its "Continue?" prompt with yes
    Client('lynx', 'GnuTLS', 'lynx', _three(lambda c, r, v: ['lynx', '-dump', '-noredir'] + (
        ['-cfg', r.file('lynx-insecure.cfg', 'INCLUDE:/etc/lynx/lynx.cfg\nFORCE_SSL_PROMPT:yes\n')]
        if v == 'insecure' else []) + [c.url]), env={'trust': _ssl_cert_file}, keylog='env'),
    # ELinks does not verify certificates by default (connection.ssl.cert_verify = 0): its "fail" and
    # "trust" variants switch verification on, "insecure" is the default
    Client('elinks', 'GnuTLS', 'elinks', _three(lambda c, r, v: ['elinks', '-no-home', '-dump'] + {
        'fail': ['-eval', 'set connection.ssl.cert_verify = 1'],
        'trust': ['-eval', 'set connection.ssl.cert_verify = 1',
                  '-eval', f'set connection.ssl.trusted_ca_file = "{c.ca}"'],
        'insecure': []}[v] + [c.url]), keylog='env'),
    Client('go-net-http', 'Go crypto/tls', 'go', _three(lambda c, r, v: [r.go_binary(), c.url] + (
        ['insecure'] if v == 'insecure' else [])), env={'trust': _ssl_cert_file}, keylog='env'),
    Client('java-httpsurlconnection', 'Java JSSE', 'java', _three(lambda c, r, v: ['java'] + (
        [f'-Djavax.net.ssl.trustStore={_java_truststore(c)}', '-Djavax.net.ssl.trustStorePassword=changeit']
        if v == 'trust' else []) + ['-cp', r.java_classes(), 'TwGet', c.url] + (
        ['insecure'] if v == 'insecure' else [])), timeout=60),
    # Firefox has no switch to turn verification off (users click through the exception page). Its
    # --screenshot never returns on the certificate error page: the fail variant ends by its timeout.
    Client('firefox-esr', 'NSS', 'firefox-esr', {'fail': _firefox('fail'), 'trust': _firefox('trust')},
           env={v: (lambda c: {'MOZ_HEADLESS': '1'}) for v in ('fail', 'trust')}, keylog='env', timeout=20),
    Client('chromium', 'BoringSSL', 'chromium', {v: _chromium(v) for v in VARIANTS},
           env={v: (lambda c: {'HOME': os.path.join(c.tmp, 'home')}) for v in VARIANTS}, timeout=90),
]
BY_NAME = {c.name: c for c in CLIENTS}


def _need(prog):
    path = prog if os.path.isabs(prog) else shutil.which(prog)
    if not path or not os.access(path, os.X_OK):
        raise ClientMissing(f'{prog} is not installed (scripts/setup-debian.sh test installs the clients)')
    return path


class Runner:
    """Runs clients; owns a scratch directory and the compiled Go and Java programs."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='tlswatch-clients-')
        self.dir = self._tmp.name
        self._go = self._java = None
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._tmp.cleanup()

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def _compile(self, compiler, sources, argv, **kw):
        """Writes sources ({name: text}) into a directory of their own and runs argv there (offline)."""
        _need(compiler)
        d = os.path.join(self.dir, compiler + '-src')
        os.makedirs(d, exist_ok=True)
        for name, text in sources.items():
            with open(os.path.join(d, name), 'w') as f:
                f.write(text)
        p = subprocess.run(argv, cwd=d, capture_output=True, timeout=300, **kw)
        if p.returncode:
            raise RuntimeError(f'{compiler} failed: {p.stderr.decode(errors="replace")}')
        return d

    def go_binary(self):
        if self._go is None:
            env = dict(os.environ, GOCACHE=os.path.join(self.dir, 'gocache'), GOPATH=os.path.join(self.dir, 'gopath'),
                       GOFLAGS='-mod=mod', GOTOOLCHAIN='local', GOPROXY='off', CGO_ENABLED='0')
            out = os.path.join(self.dir, 'twget')
            self._compile('go', {'main.go': _GO, 'go.mod': 'module twget\n\ngo 1.19\n'}, ['go', 'build', '-o', out, '.'],
                          env=env)
            self._go = out
        return self._go

    def java_classes(self):
        if self._java is None:
            self._java = self._compile('javac', {'TwGet.java': _JAVA}, ['javac', '-d', '.', 'TwGet.java'])
        return self._java

    def variants(self, name):
        return [v for v in VARIANTS if v in BY_NAME[name].argv]

    def run(self, name, variant, port, ca, host='127.0.0.1', keylog=None, timeout=None, tail=2000):
        """Runs one client variant; returns a Result. Raises ClientMissing / KeyError for what cannot run."""
        if host not in LOOPBACK:
            raise ValueError(f'{host}: clients only talk to loopback')
        cl = BY_NAME[name]
        if variant not in cl.argv:
            raise KeyError(f'{name} has no {variant} variant (its variants: {", ".join(cl.argv)})')
        _need(cl.program)
        self._n += 1
        tmp = os.path.join(self.dir, f'run{self._n}-{name}-{variant}')
        os.makedirs(os.path.join(tmp, 'home'), exist_ok=True)
        req = f'GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n'.encode()
        c = Ctx(host=host, port=port, ca=os.path.abspath(ca), tmp=tmp, keylog=keylog, request=req)
        argv = cl.argv[variant](c, self)
        env = dict(os.environ, HOME=os.path.join(tmp, 'home'), LC_ALL='C.UTF-8')
        for k in list(env):  # trust settings and proxies of the calling environment would skew the variants
            if _SCRUB.search(k):
                del env[k]
        env['no_proxy'] = env['NO_PROXY'] = '*'
        if keylog and cl.keylog == 'env':
            env['SSLKEYLOGFILE'] = keylog
        if variant in cl.env:
            env.update(cl.env[variant](c))
        timeout = timeout or cl.timeout
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if cl.stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp,
                             start_new_session=True)
        try:
            out, _ = p.communicate(req if cl.stdin else None, timeout=timeout)
            rc, timed_out = p.returncode, False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, _ = p.communicate()
            rc, timed_out = None, True
        return Result(name, variant, argv, rc, out.decode(errors='replace')[-tail:], time.monotonic() - t0,
                      timed_out)

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Journal entries of attempts, end to end, under a standalone systemd-journald.

Starts its own journald in a private mount namespace with a private /run (the host's journal is never
touched), sends real attempt records
through the daemon's JournalSink (tests/journal-send.c) with --journal all, failures and none, reads them
back with journalctl -o json, and checks MESSAGE, MESSAGE_ID, PRIORITY, every TLSWATCH_* field byte for
byte, and that journalctl -x shows the text of units/tlswatch.catalog compiled into a private catalog
database. TAP output. Usage: journal-fields.py JOURNAL_SEND_BINARY CATALOG_FILE
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

INNER_ENV = "TLSWATCH_JOURNAL_TEST_INNER"
JOURNALD = "/usr/lib/systemd/systemd-journald"
OUTER_TIMEOUT = 50

ID_OK = "b865240ac5e245e1a456c8849da3ab5b"
ID_FAILED = "14502e3cce2d4b15a6d9fc9ca932feb5"

T0 = 1764201600000000
SNI_HOSTILE = b"evil\x1b[31m\n\x00\xff\xfe.example"
ALPN_HOSTILE = b"h2\x00\x01\x80\xc3\x28\r\n"
UA_HOSTILE = b"Mozilla\r\nX-Evil: \x00\x07\xe2\x80\xae\xc3"
JA4 = b"t13d1517h2_8daaf6152771_cb7bf5808d99"


def common(port, peer=b"127.0.0.1", **kw):
    f = {
        "STARTED_US": str(T0 + port).encode(),
        "ENDED_US": str(T0 + port + 25000).encode(),
        "PEER_ADDR": peer,
        "PEER_PORT": str(port).encode(),
        "LOCAL_ADDR": peer,
        "LOCAL_PORT": b"8443",
        "HELLO_RETRY": b"0",
        "RESUMED": b"0",
        "BYTES_IN": b"0",
        "BYTES_OUT": b"0",
        "HTTP_REQUESTS": b"0",
    }
    f.update({k: v if isinstance(v, bytes) else str(v).encode() for k, v in kw.items()})
    return {"TLSWATCH_" + k: v for k, v in f.items()}


# What tests/journal-send.c sends, written down independently: peer port -> (ok?, MESSAGE, fields).
EXPECTED = {
    40001: (True,
            "TLS handshake from 127.0.0.1:40001 completed (TLSv1.3, TLS1-3-AES-256-GCM-SHA384, ALPN h2, "
            "resumed, JA4 t13d1517h2_8daaf6152771_cb7bf5808d99)",
            common(40001, ID=7, OUTCOME="ok", STATE_REACHED="done", OFFERED_VERSIONS="TLSv1.3,TLSv1.2",
                   VERSION="TLSv1.3", CIPHER="TLS1-3-AES-256-GCM-SHA384", SNI="localhost",
                   ALPN_OFFERED="h2,http/1.1", ALPN="h2", JA3="0123456789abcdef0123456789abcdef",
                   JA3_FULL="771,4866-4867,0-23-65281,29-23,0", JA4=JA4,
                   JA4_R="t13d1517h2_002f,0035_0000,000a", JA4_O="t13d1517h2_acb858a92679_0a1b2c3d4e5f",
                   JA4_RO="t13d1517h2_1301,1302_0000,000a", JA4_STABLE="t13d15_8daaf6152771_e5627efa2ab1",
                   RESUMED=1, BYTES_IN=2345, BYTES_OUT=6789, HTTP_REQUESTS=2, USER_AGENT="curl/7.88.1")),
    40002: (False,
            "TLS handshake from 127.0.0.1:40002 failed: client sent alert certificate_unknown(46) after our "
            "certificate (TLSv1.3, JA4 t13d1517h2_8daaf6152771_cb7bf5808d99)",
            common(40002, OUTCOME="peer_alert", STATE_REACHED="server_flight", ALERT_RECEIVED=46,
                   TLS_ERROR=-30592, ERROR_TEXT="fatal alert received", VERSION="TLSv1.3", JA4=JA4,
                   BYTES_IN=1800, BYTES_OUT=1100)),
    40003: (False,
            "TLS handshake from 127.0.0.1:40003 failed: no TLS version in common: client offers only TLSv1.0; "
            "we sent alert protocol_version(70)",
            common(40003, OUTCOME="tls_error", STATE_REACHED="client_hello", ALERT_SENT=70, TLS_ERROR=-28288,
                   OFFERED_VERSIONS="TLSv1.0", BYTES_IN=180, BYTES_OUT=7)),
    40004: (False,
            "TLS handshake from 127.0.0.1:40004 failed: connection closed without sending any data",
            common(40004, OUTCOME="no_data", STATE_REACHED="connected", TLS_ERROR=-29312)),
    40005: (False,
            "TLS handshake from [::1]:40005 failed: handshake timed out waiting for the rest of the ClientHello",
            common(40005, peer=b"::1", OUTCOME="timeout", STATE_REACHED="connected", BYTES_IN=3)),
    40006: (False,
            "TLS handshake from 127.0.0.1:40006 failed: client closed the connection after its ClientHello, "
            "before our certificate",
            common(40006, OUTCOME="peer_closed", STATE_REACHED="client_hello", SNI=SNI_HOSTILE,
                   ALPN_OFFERED=ALPN_HOSTILE)),
    40007: (True,
            "TLS handshake from 127.0.0.1:40007 completed (TLSv1.2, TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256, "
            "ALPN h2\\x00\\x01\\x80\\xc3(\\x0d\\x0a, after HelloRetryRequest)",
            common(40007, OUTCOME="ok", STATE_REACHED="done", VERSION="TLSv1.2",
                   CIPHER="TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", SNI=SNI_HOSTILE, ALPN_OFFERED=ALPN_HOSTILE,
                   ALPN=ALPN_HOSTILE, HELLO_RETRY=1, HTTP_REQUESTS=1, USER_AGENT=UA_HOSTILE)),
    40008: (True,
            "TLS handshake from 127.0.0.1:40008 completed",
            common(40008, OUTCOME="ok", STATE_REACHED="done", HTTP_REQUESTS=1,
                   USER_AGENT=bytes(k & 0xff for k in range(16384)))),
    # completed, but its request was refused: logged also with --journal failures, at info
    40009: (True,
            "TLS handshake from 127.0.0.1:40009 completed; request refused (400): a bare LF in "
            "the head",
            common(40009, OUTCOME="ok", STATE_REACHED="done",
                   BACKEND_ERROR="request refused (400): a bare LF in the head")),
}
NOT_FORWARDED = {40009}

n_tests = 0
n_failed = 0


def ok(cond, name, detail=None):
    global n_tests, n_failed
    n_tests += 1
    print(f"{'' if cond else 'not '}ok {n_tests} - {name}")
    if not cond:
        n_failed += 1
        if detail:
            for line in str(detail).splitlines():
                print(f"#   {line}")
    sys.stdout.flush()
    return cond


def diag(msg):
    for line in str(msg).splitlines():
        print(f"# {line}")
    sys.stdout.flush()


def field_bytes(v):
    """journalctl -o json: text fields are strings, binary ones arrays of byte values."""
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, list) and all(isinstance(b, int) for b in v):
        return bytes(v)
    raise ValueError(f"field repeated or unreadable: {v!r}")


def has_control(s):
    return any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
               for c in s)


def die_with_parent():
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=15, **kw)


def journal_read(pid):
    r = run(["journalctl", "-D", "/run/log/journal", "-o", "json", "--all", "--no-pager", f"_PID={pid}"])
    if r.returncode != 0:
        raise RuntimeError(f"journalctl failed: {r.stderr.decode(errors='replace')}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def check_entry(mode, e):
    port = int(field_bytes(e.get("TLSWATCH_PEER_PORT", "0")))
    if not ok(port in EXPECTED, f"{mode}: entry has a known TLSWATCH_PEER_PORT ({port})"):
        return
    success, message, fields = EXPECTED[port]
    what = f"{mode}: port {port}"
    ok(e.get("MESSAGE") == message, f"{what}: MESSAGE", f"got  {e.get('MESSAGE')!r}\nwant {message!r}")
    ok(isinstance(e.get("MESSAGE"), str) and not has_control(e["MESSAGE"]),
       f"{what}: MESSAGE is text without control characters")
    ok(e.get("MESSAGE_ID") == (ID_OK if success else ID_FAILED), f"{what}: MESSAGE_ID")
    ok(e.get("PRIORITY") == ("7" if success and port not in NOT_FORWARDED else "6"),
       f"{what}: PRIORITY {e.get('PRIORITY')}")
    ok(e.get("SYSLOG_IDENTIFIER") == "tlswatchd", f"{what}: SYSLOG_IDENTIFIER")
    got = {k: field_bytes(v) for k, v in e.items() if k.startswith("TLSWATCH_")}
    missing = sorted(set(fields) - set(got))
    extra = sorted(set(got) - set(fields))
    ok(not missing and not extra, f"{what}: exactly the non-NULL columns as TLSWATCH_* fields",
       f"missing {missing}, unexpected {extra}")
    wrong = [f"{k}: got {got[k]!r}, want {v!r}" for k, v in fields.items() if k in got and got[k] != v]
    ok(not wrong, f"{what}: every TLSWATCH_* value byte for byte ({len(fields)} fields)", "\n".join(wrong))


def check_catalog(tmp, catalog, pid):
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "usr/lib/systemd/catalog"))
    shutil.copy(catalog, os.path.join(root, "usr/lib/systemd/catalog/tlswatch.catalog"))
    r = run(["journalctl", f"--root={root}", "--update-catalog"])
    db = os.path.join(root, "var/lib/systemd/catalog/database")
    if not ok(r.returncode == 0 and os.path.exists(db) and not r.stderr.strip(),
              "journalctl --update-catalog compiles units/tlswatch.catalog without complaint",
              r.stderr.decode(errors="replace")):
        return
    if not os.path.isdir("/var/lib/systemd/catalog"):
        diag("no /var/lib/systemd/catalog to mount over; journalctl -x not checked")
        return
    # Private mount namespace: only this process tree sees our database in the place journalctl reads.
    subprocess.run(["mount", "--bind", os.path.dirname(db), "/var/lib/systemd/catalog"], check=True)
    r = run(["journalctl", f"--root={root}", "--list-catalog"])
    listed = r.stdout.decode(errors="replace")
    ok(ID_OK in listed and ID_FAILED in listed, "--list-catalog shows both MESSAGE_IDs", listed)
    for port, subject, text in (
            (40002, "Subject: TLS handshake failed",
             'A TLS handshake from 127.0.0.1 port 40002 to tlswatchd on 127.0.0.1 port 8443 failed. '
             'The outcome was "peer_alert"; the furthest handshake step reached was "server_flight".'),
            (40001, "Subject: TLS handshake completed",
             "A client at 127.0.0.1 port 40001 completed a TLS handshake with tlswatchd on 127.0.0.1 port 8443.")):
        r = run(["journalctl", "-D", "/run/log/journal", "-x", "--no-pager", f"_PID={pid}",
                 f"TLSWATCH_PEER_PORT={port}"])
        out = r.stdout.decode(errors="replace")
        # catalog lines are prefixed "-- " (or "\u2591\u2591 " in a UTF-8 locale)
        flat = " ".join(re.sub(r"^(--|\u2591\u2591)( |$)", "", line) for line in out.splitlines())
        flat = " ".join(flat.split())
        ok(subject in flat and text in flat and "tlsreport --since today" in flat,
           f"journalctl -x explains port {port} with the catalog text, fields substituted", out)


def inner(send, catalog):
    tmp = tempfile.mkdtemp(prefix="tlswatch-journal-")
    journald = None
    try:
        # Private /run: our journald's sockets and volatile journal live there, invisible to the host.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"], check=True)
        os.makedirs("/run/systemd/journal")
        os.makedirs("/run/systemd/journald.conf.d")
        with open("/run/systemd/journald.conf.d/test.conf", "w") as f:
            f.write("[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitIntervalSec=0\nForwardToSyslog=no\n"
                    "ForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nAudit=no\n")
        # Before journald runs: sd_journal_sendv() drops entries silently when there is no journal socket,
        # so the daemon keeps working without journald.
        r = run([send, "all"])
        ok(r.returncode == 0 and r.stdout.strip() == b"sent 9" and not r.stderr,
           "without journald, sending is a silent no-op", f"rc {r.returncode}, {r.stdout!r}, {r.stderr!r}")

        log = open(os.path.join(tmp, "journald.log"), "wb")
        journald = subprocess.Popen([JOURNALD], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    preexec_fn=die_with_parent)
        for _ in range(100):
            if os.path.exists("/run/systemd/journal/socket"):
                break
            time.sleep(0.05)
        if not ok(os.path.exists("/run/systemd/journal/socket"), "standalone journald is listening"):
            diag(open(os.path.join(tmp, "journald.log"), errors="replace").read())
            return

        pids = {}
        want_sent = {"all": 9, "failures": 6, "none": 0}
        for mode in ("all", "failures", "none"):
            p = subprocess.Popen([send, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=15)
            pids[mode] = p.pid
            ok(p.returncode == 0 and out.decode().strip() == f"sent {want_sent[mode]}",
               f"journal-send {mode}: {out.decode().strip()}", err.decode(errors="replace"))

        run(["journalctl", "--sync"])
        entries = {}
        for _ in range(50):
            entries = {mode: journal_read(pid) for mode, pid in pids.items()}
            if all(len(entries[m]) >= want_sent[m] for m in pids):
                break
            time.sleep(0.1)

        for mode, want_ports in (("all", set(EXPECTED)),
                                 ("failures", {p for p, (s, _, _) in EXPECTED.items()
                                               if not s or p in NOT_FORWARDED}),
                                 ("none", set())):
            got_ports = sorted(int(field_bytes(e.get("TLSWATCH_PEER_PORT", "0"))) for e in entries[mode])
            ok(got_ports == sorted(want_ports), f"--journal {mode}: one entry for each wanted attempt, no other",
               f"got ports {got_ports}, want {sorted(want_ports)}")
            for e in entries[mode]:
                check_entry(mode, e)

        hostile = [e for e in entries["all"] if e.get("TLSWATCH_PEER_PORT") == "40006"]
        ok(hostile and isinstance(hostile[0].get("TLSWATCH_SNI"), list),
           "binary SNI is stored as binary (journalctl shows an array of bytes)")

        check_catalog(tmp, catalog, pids["all"])
    finally:
        if journald:
            journald.terminate()
            try:
                journald.wait(timeout=5)
            except subprocess.TimeoutExpired:
                journald.kill()
                journald.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} JOURNAL_SEND_BINARY CATALOG_FILE", file=sys.stderr)
        return 2
    send, catalog = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if os.environ.get(INNER_ENV) == "1":
        try:
            inner(send, catalog)
        except Exception as e:  # a crash is a failed test, not a silent pass
            ok(False, f"test ran to completion: {type(e).__name__}: {e}")
        print(f"1..{n_tests}")
        return 1 if n_failed or n_tests == 0 else 0

    if os.geteuid() != 0:
        print("1..0 # SKIP needs root (mount namespace, tmpfs on /run)")
        return 0
    for prog in (JOURNALD, shutil.which("unshare"), shutil.which("journalctl")):
        if not prog or not os.access(prog, os.X_OK):
            print(f"1..0 # SKIP missing {prog or 'unshare/journalctl'}")
            return 0
    env = dict(os.environ, **{INNER_ENV: "1"})
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", sys.executable,
                          os.path.abspath(__file__), send, catalog], env=env, start_new_session=True)
    try:
        return p.wait(timeout=OUTER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        print(f"Bail out! timed out after {OUTER_TIMEOUT} s")
        return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tlsreport end to end on a real SQLite database (made by bench/gen-attempts from the embedded schema,
plus hand-written hostile rows): exit codes and messages, every command in every format (JSON parsed,
CSV parsed per RFC 4180, no raw control byte in table output), filters, time options, and reading while
another connection holds a write transaction. TAP output.

usage: test-tlsreport.py TLSREPORT GEN_ATTEMPTS"""
import csv
import fcntl
import io
import json
import os
import pty
import re
import shutil
import sqlite3
import subprocess
import struct
import sys
import tempfile
import termios
import unicodedata

TLSREPORT, GEN = sys.argv[1], sys.argv[2]
DAY = 1795737600  # 2026-11-27 00:00 UTC
n = 0
failed = 0


def ok(cond, what):
    global n, failed
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
    if not cond:
        failed += 1
    return cond


def report(*args, env=None):
    e = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
    e.pop("NO_COLOR", None)
    e.update(env or {})
    return subprocess.run([TLSREPORT, *args], capture_output=True, env=e, timeout=120)


def control_free(b, allow=b"\n"):
    return all(c >= 0x20 and c != 0x7f or c in allow for c in b)


tmp = tempfile.mkdtemp(prefix="tlsreport-test-")
db = os.path.join(tmp, "t.db")
subprocess.run([GEN, db, "3000", str(DAY), "7"], check=True, capture_output=True)

# hostile rows: a client with control bytes, NUL, invalid UTF-8 and a bidi override in SNI, ALPN and UA
con = sqlite3.connect(db)
cols = ("started_us, ended_us, peer_addr, peer_port, local_addr, local_port, outcome, state_reached,"
        " alert_received, sni, alpn_offered, ja4, ja4_stable, user_agent")
evil_sni = "ev\x1b]0;pwned\x07il\x00\u202e,\"q\""
evil = [
    (DAY * 10**6 + 3600 * 10**6, "peer_alert", "server_flight", 46, None),
    (DAY * 10**6 + 3600 * 10**6 + 30000, "ok", "done", None, "Evil\r\n\x1b[2J/6.6 \u202e"),
]
for t, outcome, state, alert, ua in evil:
    con.execute(
        f"INSERT INTO attempts ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (t, t + 5000, "2001:db8:aa:bb::1", 50000, "::1", 8443, outcome, state, alert,
         evil_sni, "h2\x00x",
         "t13d0101h1_aaaaaaaaaaaa_bbbbbbbbbbbb", "t13d01_aaaaaaaaaaaa_bbbbbbbbbbbb",
         ua))
# a raw invalid UTF-8 byte, stored as SQLite stores what the daemon binds (text with any bytes)
con.execute("UPDATE attempts SET sni = CAST(X'6576FF696C1B5B33316D00' AS TEXT) || sni WHERE peer_addr = '2001:db8:aa:bb::1'")
con.commit()
con.close()

# --- errors and exit codes ---
r = report("--database", os.path.join(tmp, "nope.db"))
ok(r.returncode != 0, "missing database: non-zero exit")
ok(b"no database at" in r.stderr.lower() and b"is tlswatchd running" in r.stderr and b"--database" in r.stderr,
   "missing database: clear message")
r = report("--database", db, "--since", "last tuesday")
ok(r.returncode != 0 and b"--since" in r.stderr and b"yesterday" in r.stderr, "bad --since: message lists the forms")
r = report("--database", db, "-o", "xml")
ok(r.returncode != 0 and b"xml" in r.stderr, "bad output format refused")
r = report("--database", db, "frobnicate")
ok(r.returncode != 0 and b"frobnicate" in r.stderr, "unknown command refused")
r = report("--database", db, "--burst-gap", "-1")
ok(r.returncode != 0, "negative burst gap refused")
r = report("--database", db, "--since", "2026-11-28", "--until", "2026-11-27")
ok(r.returncode != 0, "since after until refused")
# --client: an address or ADDRESS/PREFIX; anything else is a usage error naming the value and the forms
for bad in ("not-an-ip", "::1/129", "192.0.2.1/33", "192.0.2.1/", "192.0.2.1/x", "2001:db8::/-1", "2001:db8::1%lo"):
    r = report("--database", db, "--all", "--client", bad)
    ok(r.returncode == 1 and f'--client "{bad}"'.encode() in r.stderr and b"0-32 for IPv4" in r.stderr and
       b"0-128 for IPv6" in r.stderr and r.stdout == b"", f"--client {bad} refused: " + r.stderr.decode().strip())
notdb = os.path.join(tmp, "not.db")
with open(notdb, "w") as f:
    f.write("hello, I am not a database\n" * 100)
r = report("--database", notdb)
ok(r.returncode != 0 and b"not a tlswatch database" in r.stderr, "a non-database file is refused clearly")
# a database another process keeps locked: "locked", not "not a tlswatch database" (in rollback-journal
# mode an exclusive transaction keeps readers out; tlsreport waits 5 s, then says so)
locked = os.path.join(tmp, "locked.db")
shutil.copy(db, locked)
holder = sqlite3.connect(locked, isolation_level=None)
holder.execute("PRAGMA journal_mode=DELETE")
holder.execute("BEGIN EXCLUSIVE")
holder.execute("UPDATE attempts SET peer_port = peer_port WHERE id = 1")
r = report("--database", locked)
holder.execute("ROLLBACK")
holder.close()
ok(r.returncode != 0 and b"locked by another process" in r.stderr and b"not a tlswatch" not in r.stderr,
   "a locked database is said to be locked: " + r.stderr.decode(errors="replace").strip())
r = report("--database", db, "--since", "2030-01-01")
ok(r.returncode == 0 and b"No attempts matched" in r.stderr and r.stdout == b"", "nothing matched: exit 0, note on stderr")
r = report("--help")
ok(r.returncode == 0 and b"--since" in r.stdout, "--help")

# --- every command in every format ---
for cmd in ("sequences", "attempts", "clients", "summary"):
    for fmt in ("table", "json", "json-pretty", "csv"):
        r = report("--database", db, "-o", fmt, "--all", cmd)
        good = ok(r.returncode == 0 and len(r.stdout) > 0, f"{cmd} -o {fmt} runs")
        if not good:
            print("# " + r.stderr.decode(errors="replace"))
            continue
        out = r.stdout
        if fmt == "table":
            ok(control_free(out), f"{cmd} table: no raw control bytes")
        elif fmt == "json":
            try:
                objs = [json.loads(line) for line in out.decode("utf-8").splitlines()]
                ok(len(objs) > 0, f"{cmd} json: every line parses ({len(objs)})")
            except ValueError as e:
                ok(False, f"{cmd} json parses: {e}")
        elif fmt == "json-pretty":
            dec, text, pos, count = json.JSONDecoder(), out.decode("utf-8"), 0, 0
            try:
                while pos < len(text):
                    while pos < len(text) and text[pos].isspace():
                        pos += 1
                    if pos < len(text):
                        _, pos = dec.raw_decode(text, pos)
                        count += 1
                ok(count > 0, f"{cmd} json-pretty: {count} objects parse")
            except ValueError as e:
                ok(False, f"{cmd} json-pretty parses: {e}")
        else:
            ok(control_free(out, b"\r\n"), f"{cmd} csv: no raw control bytes")
            ok(b"\n" not in out.replace(b"\r\n", b""), f"{cmd} csv: CRLF line ends only")
            rows = list(csv.reader(io.StringIO(out.decode("utf-8"), newline="")))
            ok(len(rows) > 1 and all(len(row) == len(rows[0]) for row in rows), f"{cmd} csv: {len(rows)} rows, same width")

# --- contents ---
r = report("--database", db, "-o", "json", "--all")
seqs = [json.loads(line) for line in r.stdout.decode().splitlines()]
pinned = {"client", "sni", "ja4", "key", "first_us", "last_us", "attempts", "failures", "outcome", "pattern",
          "diagnosis", "attempt_ids"}
ok(all(pinned <= set(s) for s in seqs), "every sequence has the pinned JSON fields")
ok({s["outcome"] for s in seqs} <= {"ok", "abandoned", "open"}, "sequence outcomes from the closed set")
ok(any(s["pattern"] == "cert_rejected_then_ok" and s["label"] == "Chrome/156 (Linux)" for s in seqs),
   "Chromium sequences are cert_rejected_then_ok and labelled by their User-Agent")
ok(sum(s["attempts"] for s in seqs) == 3000 + 2 or sum(s["attempts"] for s in seqs) >= 3002,
   "every attempt is in a sequence")
firsts = [s["first_us"] for s in seqs]
ok(firsts == sorted(firsts), "sequences in order of their start")
evil_seq = [s for s in seqs if s["client"] == "2001:db8:aa:bb::/64"]
ok(len(evil_seq) == 1 and evil_seq[0]["attempts"] == 2, "the hostile client's two attempts form one /64 sequence")

r = report("--database", db, "-o", "json")
ok(all(json.loads(line)["failures"] > 0 for line in r.stdout.decode().splitlines()), "without --all only sequences with failures")

r = report("--database", db, "-o", "json", "--client", "2001:db8:aa:bb::1234", "--all")
lines = r.stdout.decode().splitlines()
ok(len(lines) == 1 and json.loads(lines[0])["client"] == "2001:db8:aa:bb::/64", "--client with an IPv6 address selects its /64")
for prefix, want in (("2001:db8:aa:bb::/64", 2), ("2001:db8:aa::/48", 2), ("2001:db8:aa:bb::1/128", 2),
                     ("2001:db8:aa:bb::2/128", 0), ("2001:db8:ab::/48", 0)):
    r = report("--database", db, "-o", "json", "--client", prefix, "--all", "attempts")
    got = [json.loads(line) for line in r.stdout.decode().splitlines()]
    ok(r.returncode == 0 and len([a for a in got if a["peer_addr"] == "2001:db8:aa:bb::1"]) == want and
       all(a["peer_addr"] == "2001:db8:aa:bb::1" for a in got if ":" in a["peer_addr"]),
       f"--client {prefix}: {want} attempts of 2001:db8:aa:bb::1")
r = report("--database", db, "-o", "json", "--client", "::/0", "--all", "attempts")
v6 = [json.loads(line)["peer_addr"] for line in r.stdout.decode().splitlines()]
ok(len(v6) > 2 and all(":" in a for a in v6), f"--client ::/0: every IPv6 client and no IPv4 one ({len(v6)})")
r = report("--database", db, "-o", "json", "--client", "10.0.0.0/24", "--all", "attempts")
v4 = [json.loads(line)["peer_addr"] for line in r.stdout.decode().splitlines()]
ok(len(v4) > 0 and all(a.startswith("10.0.0.") for a in v4), f"--client 10.0.0.0/24: only 10.0.0.x ({len(v4)})")
r = report("--database", db, "-o", "json", "--client", "0.0.0.0/0", "--all", "attempts")
all4 = [json.loads(line)["peer_addr"] for line in r.stdout.decode().splitlines()]
ok(len(all4) > len(v4) and not any(":" in a for a in all4), "--client 0.0.0.0/0: every IPv4 client")
r = report("--database", db, "-o", "json", "--ja4", "t13d01_aaaaaaaaaaaa_bbbbbbbbbbbb", "--all")
ok(len(r.stdout.decode().splitlines()) == 1, "--ja4 with the stable JA4")
r = report("--database", db, "-o", "json", "--ja4", "t13d0101h1_aaaaaaaaaaaa_bbbbbbbbbbbb", "--all", "attempts")
ok(len(r.stdout.decode().splitlines()) == 2, "--ja4 with the full JA4 (attempts)")
r = report("--database", db, "-o", "json", "--ja4", "t13d0101h1_aaaaaaaaaaaa_bbbbbbbbbbbb", "--all")
lines = r.stdout.decode().splitlines()
ok(len(lines) == 1 and json.loads(lines[0])["attempts"] == 2, "--ja4 with the full JA4 (sequences: ja4 is read for it)")
r = report("--database", db, "-o", "json", "--sni", "localhost", "--all")
ok(r.returncode == 0 and all(json.loads(line)["sni"] == "localhost" for line in r.stdout.decode().splitlines()),
   "--sni filters")
r = report("--database", db, "-o", "json", "attempts", "--since", "2026-11-27 01:00", "--until", "@1795741200.030001")
ats = [json.loads(line) for line in r.stdout.decode().splitlines()]
ok(all(1795741200 * 10**6 <= a["started_us"] < 1795741200 * 10**6 + 30001 for a in ats) and len(ats) >= 2,
   "--since/--until bound the attempts (until is exclusive)")

r = report("--database", db, "-o", "json", "summary")
s = json.loads(r.stdout)
ok(s["attempts"] == 3002, "summary counts every attempt")
ok(sum(s["outcomes"].values()) == s["attempts"], "summary outcomes add up")
ok(sum(s["attempts_to_success"].values()) == s["sequence_outcomes"]["ok"], "retry distribution covers the ok sequences")

r = report("--database", db, "attempts")
table = r.stdout
ok(b"\\x1b" in table and b"\x1b" not in table and b"\\xff" in table,
   "attempts table shows escaped ESC and invalid bytes, never raw ones (no pager, no colour off a TTY)")
r = report("--database", db)
ok(b"sequences" in r.stdout.splitlines()[-1], "sequences table ends with a short summary")
r = report("--database", db, "--all", "--color=always")
ok(b"\x1b[31m" in r.stdout, "--color=always colours")
r = report("--database", db, "--all", "--color=always", "attempts")
ok(b"\x1b]0;" not in r.stdout and b"\x07" not in r.stdout, "colour does not let client bytes through")

# --- the table fits the width (issue 14) ---
ANSI = re.compile(rb"\x1b\[[0-9;]*m")


def display_width(line):
    text = ANSI.sub(b"", line).decode("utf-8")
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def widest(out):
    return max((display_width(line) for line in out.split(b"\n")), default=0)


seqs_all = [json.loads(line) for line in report("--database", db, "-o", "json").stdout.decode().splitlines()]
for width in (60, 80, 120, 200):
    for cmd in ("sequences", "attempts", "clients", "summary"):
        for color in ("never", "always"):
            r = report("--database", db, cmd, f"--color={color}", env={"COLUMNS": str(width)})
            w = widest(r.stdout)
            ok(r.returncode == 0 and 0 < w <= width and control_free(ANSI.sub(b"", r.stdout)),
               f"COLUMNS={width} {cmd} --color={color}: the widest line is {w} columns")
    # the diagnoses, put together from their wrapped lines, are the sentences whole (wrapped between words)
    r = report("--database", db, env={"COLUMNS": str(width)})
    texts, cur = [], None
    for line in r.stdout.decode().split("\n"):
        m = re.match(r"^  \[(\d+)\] (.*)$", line)
        if m:
            cur = [m.group(2)]
            texts.append(cur)
        elif cur is not None and line.startswith("      ") and not line.startswith("       "):
            cur.append(line.strip())
        else:
            cur = None
    joined = {" ".join(t) for t in texts}
    wanted = {s["diagnosis"] for s in seqs_all}
    ok(len(joined) > 3 and joined <= wanted,
       f"COLUMNS={width}: {len(joined)} diagnoses word-wrapped whole under their first sequence")
    rows = [line for line in r.stdout.decode().split("\n") if re.match(r"^\d\d:\d\d:\d\d ", line)]
    ok(all(re.search(r" \[\d+\]$", row) for row in rows), f"COLUMNS={width}: every row's note number whole")
    ok(len(rows) == len(seqs_all) and len(joined) < len(rows) / 4,
       f"COLUMNS={width}: one row per sequence ({len(rows)}), a diagnosis written once and referred to "
       f"({len(joined)} written)")
r = report("--database", db)  # a pipe and no COLUMNS: no limit, nothing shortened
ok(widest(r.stdout) > 200 and "\u2026".encode() not in r.stdout, "not a terminal, no COLUMNS: nothing shortened")
r = report("--database", db, "--full", env={"COLUMNS": "80"})
out = r.stdout.decode()
ok(r.returncode == 0 and all(s["diagnosis"] in out for s in seqs_all) and
   all(s["ja4"] in out for s in seqs_all if s["ja4"]) and "\u2026" not in out,
   "--full: every sequence's whole diagnosis and stable JA4, nothing shortened, whatever COLUMNS says")
r = report("--database", db, "-l", "attempts", env={"COLUMNS": "80"})
ok(r.returncode == 0 and b"t13d0101h1_aaaaaaaaaaaa_bbbbbbbbbbbb" in r.stdout and b"Evil\\x0d\\x0a" in r.stdout,
   "-l attempts: the whole JA4 and the whole User-Agent, escaped")
r = report("--database", db, "--full", "--color=always")
ok(b"\x1b]0;" not in r.stdout and b"\x07" not in r.stdout and b"\\x1b]0;pwned" in r.stdout,
   "--full with colour: the hostile SNI whole and escaped, never raw")
r = report("--database", db, "-o", "json", "--full")
ok([json.loads(line) for line in r.stdout.decode().splitlines()] == seqs_all, "--full does not change JSON")


# outside a UTF-8 locale a terminal takes the bytes 0x80-0x9f for C1 controls, also inside a character
# (U+045B is d1 9b, and 0x9b is CSI): the table is ASCII then, client strings' other bytes escaped
c1db = os.path.join(tmp, "c1.db")
shutil.copy(db, c1db)
con = sqlite3.connect(c1db)
con.execute(f"INSERT INTO attempts ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (DAY * 10**6 + 9000 * 10**6, DAY * 10**6 + 9000 * 10**6, "192.0.2.77", 1, "127.0.0.1", 8443,
             "peer_alert", "server_flight", 46, "\u045b2J\u65e5.example", None, None, None, "x/1 \u045b2J"))
con.commit()
con.close()
for args in (["sequences"], ["attempts"], ["attempts", "--full"], ["sequences", "--full"]):
    for columns in ("80", ""):
        r = report("--database", c1db, *args, env={"LC_ALL": "C", "COLUMNS": columns})
        ok(r.returncode == 0 and max(r.stdout) < 0x80 and b"\\xd1" in r.stdout,
           f"LC_ALL=C {' '.join(args)} COLUMNS={columns or '(none)'}: ASCII only, the SNI's UTF-8 escaped")


r = report("--database", c1db, "--client", "192.0.2.77", "--all", env={"COLUMNS": "80"})
ok(b"\n1 sequence, 1 shown; 1 attempt, 1 failed: " in r.stdout, "the footer of one sequence in the singular")


def on_terminal(columns, env):
    """tlsreport on a pseudo-terminal of this many columns (COLUMNS unset): its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    e = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8", TERM="xterm", **env)
    e.pop("COLUMNS", None)
    e.pop("NO_COLOR", None)
    p = subprocess.Popen([TLSREPORT, "--database", db], stdout=slave, stderr=subprocess.DEVNULL, env=e)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=60)
    os.close(master)
    return out.replace(b"\r\n", b"\n")


out = on_terminal(90, {"TLSREPORT_PAGER": "cat"})
ok(b"\x1b[" in out and 80 < widest(out) <= 90, f"a 90-column terminal, no pager: {widest(out)} columns at most")
# a pager process (sh -c "cat -"): stdout is its pipe, the width is the terminal's, asked before
out = on_terminal(100, {"TLSREPORT_PAGER": "cat -"})
ok(b"\x1b[" in out and 90 < widest(out) <= 100,
   f"a 100-column terminal through a pager: {widest(out)} columns at most")

# --- reading while a writer holds a transaction (WAL) ---
w = sqlite3.connect(db, isolation_level=None)
w.execute("PRAGMA journal_mode=WAL")
w.execute("BEGIN IMMEDIATE")
w.execute(f"INSERT INTO attempts ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
          (DAY * 10**6 + 7200 * 10**6, DAY * 10**6 + 7200 * 10**6, "192.0.2.99", 1, "127.0.0.1", 8443, "ok",
           "done", None, None, None, None, None, None))
r = report("--database", db, "-o", "json", "summary")
ok(r.returncode == 0 and json.loads(r.stdout)["attempts"] == 3002, "reads while a writer holds an open transaction")
w.execute("COMMIT")
w.close()
r = report("--database", db, "-o", "json", "summary")
ok(json.loads(r.stdout)["attempts"] == 3003, "sees the committed row")
before = os.stat(db).st_mtime_ns
report("--database", db, "summary")
ok(os.stat(db).st_mtime_ns == before, "the database file is not modified")

# A database that the daemon has not migrated to schema 3 yet (tlsreport opens read-only and cannot): read
# over the time index instead of migration 3's covering indexes, with the same output byte for byte.
os.makedirs(os.path.join(tmp, "schema2"))
old_db = os.path.join(tmp, "schema2", "t.db")  # the same file name: the same host (no table meta)
shutil.copyfile(db, old_db)
c = sqlite3.connect(old_db)
c.execute("DROP INDEX attempts_started_grouping")
c.execute("DROP INDEX attempts_ok_started_labels")
c.execute("PRAGMA user_version = 2")
c.commit()
c.close()
for args in (["-o", "json", "--all"], ["-o", "csv"], ["summary", "-o", "json"], ["clients", "-o", "json"],
             ["--all", "--color=never", "--no-pager"]):
    new, old = report("--database", db, *args), report("--database", old_db, *args)
    ok(new.returncode == 0 and old.returncode == 0 and new.stdout == old.stdout and len(new.stdout) > 100,
       f"schema 2 and schema 3 databases give the same output: {' '.join(args)}")

# A database lacking a column that its schema version has is not read as if the column were NULL; one of
# schema 3 lacks only what migration 4 adds (closed_us, close_kind) and is read.
bad_db = os.path.join(tmp, "lacking.db")
c = sqlite3.connect(bad_db)
c.execute("CREATE TABLE attempts (id INTEGER PRIMARY KEY, started_us INTEGER, ended_us INTEGER, "
          "peer_addr TEXT, outcome TEXT)")
c.execute("PRAGMA user_version = 1")
c.commit()
c.close()
r = report("--database", bad_db, "attempts")
ok(r.returncode != 0 and b"not a tlswatch database" in r.stderr,
   "a schema-1 database without peer_port is refused")
v3_db = os.path.join(tmp, "schema3.db")
shutil.copyfile(db, v3_db)
c = sqlite3.connect(v3_db)
for stmt in ("DROP VIEW IF EXISTS " + v for v in
             [row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'view'")]):
    c.execute(stmt)
c.execute("DROP INDEX attempts_started_grouping")
c.execute("ALTER TABLE attempts DROP COLUMN close_kind")
c.execute("ALTER TABLE attempts DROP COLUMN closed_us")
c.execute("PRAGMA user_version = 3")
c.commit()
c.close()
r = report("--database", v3_db, "-o", "json", "summary")
ok(r.returncode == 0 and json.loads(r.stdout)["attempts"] == 3003,
   "a schema-3 database (no closed_us, close_kind) is read")

print(f"1..{n}")
sys.exit(1 if failed else 0)

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Assertions on what tlswatchd recorded for one client run (TAP lines, unnumbered).

    check-attempts.py KIND DB FIRST_ID [options]

KIND: chromium-proceed (FLOW = flow.js output), chromium-trusted, firefox, single.
Only rows with id >= FIRST_ID are looked at. --tlsreport PATH is the tlsreport to check the
sequences with."""

import argparse
import json
import sqlite3
import subprocess
import sys

results = []


def check(cond, desc, detail=None):
    results.append(bool(cond))
    print("%s - %s" % ("ok" if cond else "not ok", desc))
    if not cond and detail:
        for line in str(detail).splitlines()[:30]:
            print("# " + line)


def skip(desc, why):
    print("ok - %s # SKIP %s" % (desc, why))


def rows_of(db, first_id):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    con.row_factory = sqlite3.Row
    return [dict(r) for r in con.execute("SELECT * FROM attempts WHERE id >= ? ORDER BY id", (first_id,))]


def brief(rows):
    return "\n".join("%d %s %s alert=%s %s resumed=%s ja4=%s" % (
        r["id"], r["outcome"], r["state_reached"], r["alert_received"], r["version"], r["resumed"], r["ja4"])
        for r in rows)


def sequences(tlsreport, db, rows):
    ids = {r["id"] for r in rows}
    out = subprocess.run([tlsreport, "--database", db, "--since", "today", "--all", "-o", "json"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("tlsreport failed: %s" % out.stderr.strip())
    seqs = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    return [s for s in seqs if set(s["attempt_ids"]) & ids]


def check_fingerprints(rows, what):
    ja4s = {r["ja4_stable"] for r in rows}
    check(len(ja4s) == 1 and None not in ja4s, "%s: one stable JA4 across all its attempts" % what, ja4s)
    fresh = [r for r in rows if not r["resumed"]]
    fresh_ja4 = {r["ja4"] for r in fresh}
    check(1 <= len(fresh_ja4) <= 2, "%s: at most two JA4 values (full and PSK hello)" % what, fresh_ja4)
    ja3s = {r["ja3"] for r in rows}
    check(len(rows) > 1 and len(ja3s) >= len(rows) - 1,
          "%s: JA3 varies (%d distinct over %d attempts: extension order permuted)" % (what, len(ja3s), len(rows)))


def chromium_proceed(a, rows):
    events = [json.loads(l) for l in open(a.flow) if l.startswith("{")]
    ev = {}
    for e in events:
        ev.setdefault(e["event"], e)
    check("error" not in ev and "timeout" not in ev, "flow.js ran to the end", ev.get("error") or ev.get("timeout"))
    first = ev.get("load_failed", {})
    check("ERR_CERT_AUTHORITY_INVALID" in first.get("error", ""), "the first load hits the certificate error", first)
    check(ev.get("interstitial", {}).get("title") == "Privacy error", "Chromium shows its interstitial")
    after = [e for e in events if e["event"] == "loaded" and e.get("status") == 200]
    check(len(after) >= a.loads, "after Proceed every load succeeds (%d of %d)" % (len(after), a.loads))
    proceed_us = ev.get("proceed", {}).get("t_us", 0)

    pre = [r for r in rows if r["started_us"] < proceed_us]
    check(pre and all(r["outcome"] != "ok" for r in pre),
          "before Proceed: %d attempts, all failed" % len(pre), brief(pre))
    fails = [r for r in rows if r["outcome"] != "ok"]
    oks = [r for r in rows if r["outcome"] == "ok"]
    alert46 = [r for r in fails if r["alert_received"] == 46]
    resets = [r for r in fails if r["outcome"] == "peer_reset" and r["state_reached"] != "connected"]
    check(alert46, "failed attempts rejected with alert 46: %d" % len(alert46))
    check(len(alert46) + len(resets) == len(fails),
          "every failure is alert 46 (or a reset after the alert, TLS 1.2): %d + %d of %d" % (
              len(alert46), len(resets), len(fails)), brief(fails))
    # Chromium sends alert 46 only after it has read our Certificate (or, resuming, our Finished). TLS 1.2:
    # its alert and FIN may arrive while we still write ServerKeyExchange (the write fails with -0x50),
    # and the record still says the certificate went out.
    after_flight = ("server_flight", "client_flight")
    check(all(r["state_reached"] in after_flight for r in alert46),
          "alert 46 comes after our flight (state_reached server_flight): %d" % len(alert46), brief(alert46))
    # keep-alive: later loads may reuse the connection, so at least one success, not one per load
    check(oks and all(r["started_us"] >= proceed_us for r in oks),
          "successful attempts, all after Proceed: %d" % len(oks), brief(rows))
    check(all("Chrome" in (r["user_agent"] or "") for r in oks), "successful attempts carry Chrome's User-Agent")
    vers = {r["version"] for r in rows if r["version"]}
    check(vers == {a.version}, "negotiated %s" % a.version, vers)
    check_fingerprints(rows, "Chromium")
    # Resumption: TLS 1.3 hellos offering a PSK (extension 0x0029 in JA4_r's extension list) and
    # sessions the daemon resumed. Without a bypass on the socket, Chromium rejects them too.
    psk = [r for r in rows if r["ja4_r"] and "0029" in r["ja4_r"].split("_")[2].split(",")]
    resumed = [r for r in rows if r["resumed"]]
    tried = {r["id"]: r for r in psk + resumed}.values()
    failed_tried = [r for r in tried if r["outcome"] != "ok"]
    if failed_tried:
        check(all(r["alert_received"] == 46 for r in failed_tried),
              "resumption attempts (PSK offered or resumed) are rejected with alert 46 too: %d" % len(
                  failed_tried), brief(failed_tried))
    else:
        skip("resumption attempts are rejected too", "no failed resumption attempt in this run (%d tried)"
             % len(tried))
    seqs = sequences(a.tlsreport, a.db, rows)
    then_ok = [s for s in seqs if s["pattern"] == "cert_rejected_then_ok"]
    check(then_ok, "tlsreport: %d cert_rejected_then_ok sequences" % len(then_ok), json.dumps(seqs, indent=1))
    check(all(s["outcome"] == "ok" and s["failures"] >= 1 and s["attempts"] == s["failures"] + 1
              for s in then_ok), "tlsreport: each is failures then one success", json.dumps(then_ok))
    ended_ok = [s for s in seqs if s["outcome"] == "ok"]
    check(len(ended_ok) == len(oks), "tlsreport: one sequence ends with each of the %d successes" % len(oks),
          json.dumps(seqs, indent=1))
    check(all(s["pattern"] in ("cert_rejected_then_ok", "clean") for s in ended_ok),
          "tlsreport: those are cert_rejected_then_ok (or clean)", [s["pattern"] for s in ended_ok])
    covered = sorted(i for s in seqs for i in s["attempt_ids"])
    check(covered == sorted(r["id"] for r in rows), "tlsreport: every attempt in exactly one sequence",
          "%s\n%s" % (covered, [r["id"] for r in rows]))
    check(len({s["ja4"] for s in seqs}) == 1, "tlsreport: one client key (stable JA4) for all of them")


def chromium_trusted(a, rows):
    check(rows, "the trusted browser made %d attempts" % len(rows))
    check(all(r["outcome"] == "ok" for r in rows), "with the certificate trusted no handshake fails",
          brief(rows))
    seqs = sequences(a.tlsreport, a.db, rows)
    check(seqs and all(s["pattern"] == "clean" for s in seqs), "tlsreport: every sequence is clean",
          json.dumps(seqs, indent=1))


def firefox(a, rows):
    check(rows, "Firefox made %d attempts" % len(rows))
    bad_cert = [r for r in rows if r["alert_received"] == 42]
    resets = [r for r in rows if r["outcome"] == "peer_reset" and r["state_reached"] != "connected"]
    check(bad_cert, "Firefox rejects with alert 42 (bad_certificate): %d of %d" % (len(bad_cert), len(rows)),
          brief(rows))
    check(len(bad_cert) + len(resets) == len(rows), "Firefox: no other outcome than alert 42 (or a reset "
          "while we still wrote our flight): %d + %d of %d" % (len(bad_cert), len(resets), len(rows)), brief(rows))
    check(len({r["ja3"] for r in rows}) == 1, "Firefox keeps one JA3")


def single(a, rows):
    check(len(rows) == 1, "%s: exactly one attempt (%d)" % (a.what, len(rows)), brief(rows))
    check(rows and rows[0]["outcome"] == "ok", "%s: it succeeded" % a.what, brief(rows))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["chromium-proceed", "chromium-trusted", "firefox", "single"])
    p.add_argument("db")
    p.add_argument("first_id", type=int)
    p.add_argument("--flow")
    p.add_argument("--loads", type=int, default=2)
    p.add_argument("--version", default="TLSv1.3")
    p.add_argument("--tlsreport")
    p.add_argument("--what", default="client")
    a = p.parse_args()
    rows = rows_of(a.db, a.first_id)
    print("# %s: %d attempts: %s" % (a.kind, len(rows), " ".join(
        "%s%s" % (r["outcome"], "/%d" % r["alert_received"] if r["alert_received"] is not None else "") for r in rows)))
    try:
        {"chromium-proceed": chromium_proceed, "chromium-trusted": chromium_trusted, "firefox": firefox,
         "single": single}[a.kind](a, rows)
    except Exception as e:  # a crash is a failed check, with the reason
        check(False, "%s checks ran" % a.kind, repr(e))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()

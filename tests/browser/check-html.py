#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks of the HTML timelines as Chromium loaded and drew them (html-page.js's JSON and screenshot),
against the SQLite database the pages were made from. Prints TAP lines ("ok - ..." / "not ok - ..."),
numbered by test-html-report.sh.

  check-html.py report DB PAGE.json PAGE.png [--binned]   tlsreport -o html of DB
  check-html.py self DB PAGE.json PAGE.png JA4 SELF_ID    the daemon's GET / page
  check-html.py controls CSP.json NET.json                the detectors detect

The screenshot is decoded here (zlib, no PIL): in the box of each timeline, the colour of every outcome
its family has in the database must be drawn."""
import json
import sqlite3
import struct
import sys
import zlib

# timeline.c's outcome colours
COLORS = {
    'ok': (0x2c, 0xa0, 0x2c),
    'peer_alert': (0xd6, 0x27, 0x28),
    'peer_reset': (0xff, 0x7f, 0x0e),
    'peer_closed': (0x94, 0x67, 0xbd),
    'no_data': (0xbc, 0xbd, 0x22),
    'timeout': (0x8c, 0x56, 0x4b),
    'not_tls': (0x1f, 0x77, 0xb4),
    'tls_error': (0xe3, 0x77, 0xc2),
    'server_error': (0x17, 0xbe, 0xcf),
}
OUTCOMES = list(COLORS)
# the families of attempts without a ClientHello (sequence_no_hello_kind())
NO_HELLO = ('no_data', 'idle', 'not_tls', 'partial', '-')  # in the enum's order: the database stores the index


def tap(ok, what, detail=None):
    print(('ok - ' if ok else 'not ok - ') + what)
    if not ok and detail:
        for line in str(detail).splitlines():
            print('# ' + line)
    return ok


def png_decode(path):
    """(width, height, rows of bytes, bytes per pixel) of an 8-bit, non-interlaced RGB(A) PNG."""
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, ihdr = 8, [], None
    while pos < len(d):
        n, kind = struct.unpack('>I4s', d[pos:pos + 8])
        body = d[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, 'PNG type %r' % (ihdr,)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif f == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xff
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def colours_in_box(img, box, dpr):
    """{outcome: number of pixels of its colour} in the box (CSS px)."""
    w, h, rows, bpp = img
    x0, y0 = int(box['x'] * dpr), int(box['y'] * dpr)
    x1, y1 = min(w, int((box['x'] + box['width']) * dpr)), min(h, int((box['y'] + box['height']) * dpr))
    exact = {c: o for o, c in COLORS.items()}
    found = {}
    for y in range(max(0, y0), y1):
        row = rows[y]
        for x in range(max(0, x0), x1):
            px = tuple(row[x * bpp:x * bpp + 3])
            o = exact.get(px)
            if o:
                found[o] = found.get(o, 0) + 1
    return found


def family_outcomes(db):
    """{family key: {outcome: count}} of the database; attempts without a stable JA4 under None."""
    c = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    res = {}
    for ja4, outcome, n in c.execute(
            "SELECT NULLIF(ja4_stable, ''), outcome, count(*) FROM attempts GROUP BY 1, 2"):
        name = outcome if isinstance(outcome, str) else OUTCOMES[outcome]
        res.setdefault(ja4, {})[name] = n
    return res


def check_report(db, page, png, binned):
    d = json.load(open(page))
    ok = tap(d['status'] in (0, 200, None), 'the report loads (status %r)' % d['status'])
    tap(d['console'] == [], 'no console message, log entry (CSP violation) or exception', d['console'])
    tap(d['requests'] == [], 'no network request but the file itself', d['requests'])
    db_fam = family_outcomes(db)
    tls = [t for t in d['timelines'] if t['family'] not in NO_HELLO]
    other = [t for t in d['timelines'] if t not in tls]
    tap(len(d['timelines']) > 0, '%d timelines drawn' % len(d['timelines']))
    # each family with a ClientHello: its marks (or bins) are its attempts in the database
    bad = []
    for t in tls:
        want = db_fam.get(t['family'], {})
        drawn = len(t['marks']) + t['bins']
        if drawn != sum(want.values()) or t['attempts'] != drawn:
            bad.append('%s: drawn %d, section says %d, database %d'
                       % (t['family'], drawn, t['attempts'], sum(want.values())))
        if t['bins'] == 0:
            got = {}
            for o in t['marks']:
                got[o] = got.get(o, 0) + 1
            if got != want:
                bad.append('%s: marks by outcome %r, database %r' % (t['family'], got, want))
        if t['spans'] == 0:
            bad.append('%s: no sequence drawn' % t['family'])
    tap(not bad, 'every family\'s marks are its attempts in the database, by outcome (%d families)'
        % len(tls), '\n'.join(bad))
    nohello = sum(sum(v.values()) for k, v in db_fam.items() if k is None)
    drawn = sum(len(t['marks']) + t['bins'] for t in other)
    if len(d['timelines']) < 16:  # else some may be in the table without a timeline
        tap(drawn == nohello, 'attempts without a ClientHello: %d drawn, database %d' % (drawn, nohello))
    tap(any(t['bins'] > 0 for t in d['timelines']) == binned,
        'attempts drawn as time bins: %s (expected %s)'
        % (any(t['bins'] > 0 for t in d['timelines']), binned))
    # the screenshot: in each timeline's box, the colour of each of its family's outcomes
    img = png_decode(png)
    print('# screenshot %dx%d' % (img[0], img[1]))
    bad = []
    for t in d['timelines']:
        outcomes = set(t['marks']) if t['bins'] == 0 else set(db_fam.get(t['family'], {}))
        found = colours_in_box(img, t['box'], d['dpr'])
        for o in outcomes:
            if found.get(o, 0) < 6:
                bad.append('%s: %s drawn in %d pixels (all: %r)' % (t['id'], o, found.get(o, 0), found))
    tap(not bad, 'the screenshot shows every outcome\'s colour in its timeline', '\n'.join(bad))
    return ok


def check_self(db, page, png, ja4, self_id):
    d = json.load(open(page))
    t = [t for t in d['timelines'] if t['id'] == 'self-timeline']
    if not tap(len(t) == 1, 'the self page has its timeline'):
        return
    t = t[0]
    # the browser's own /favicon.ico request gets a 404: no fault of the page
    favicon = all(u.endswith('/favicon.ico') for u in d['requests'])
    noise = [e for e in d['console'] if not (favicon and e.get('source') == 'network')]
    tap(noise == [] and favicon, 'no console message, exception or request but /favicon.ico on the self page',
        d['console'] + d['requests'])
    c = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    rows = [OUTCOMES[o] if isinstance(o, int) else o for (o,) in c.execute(
        'SELECT outcome FROM attempts WHERE ja4_stable = ? AND id <= ? ORDER BY started_us, id',
        (ja4, self_id))]
    print('# database, the visitor\'s attempts up to its page load: %r' % rows)
    print('# marks: %r, rows of the earlier-attempts table: %d' % (t['marks'], d['earlier_rows']))
    tap(len(t['marks']) == d['earlier_rows'] + 1,
        'a mark per earlier attempt of the sequence and one for this connection')
    tap(t['marks'] == rows and 'peer_alert' in rows,
        'the marks are the visitor\'s attempts in the database, in order, with its failures')
    img = png_decode(png)
    found = colours_in_box(img, t['box'], d['dpr'])
    tap(all(found.get(o, 0) >= 6 for o in set(t['marks'])),
        'the screenshot shows the self timeline\'s colours (%r)' % found)


def check_controls(csp, net):
    c, n = json.load(open(csp)), json.load(open(net))
    tap(any('Content Security Policy' in (e.get('text') or '') for e in c['console'])
        and any(b['reason'] == 'csp' for b in c['blocked']) and c['requests'],
        'control: an image under the report\'s CSP is a request, blocked, and a violation reported', c)
    tap(any('127.0.0.1:9' in u for u in n['requests']),
        'control: an image without the CSP is a network request that the test sees', n)


if __name__ == '__main__':
    a = sys.argv[1:]
    if a[0] == 'report':
        check_report(a[1], a[2], a[3], '--binned' in a)
    elif a[0] == 'self':
        check_self(a[1], a[2], a[3], a[4], int(a[5]))
    elif a[0] == 'controls':
        check_controls(a[1], a[2])
    else:
        sys.exit('unknown check %s' % a[0])

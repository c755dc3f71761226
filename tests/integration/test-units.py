#!/usr/bin/env python3
"""The shipped units pass `systemd-analyze verify` without a word and `systemd-analyze security` rates
the service at most 2.0. Checked on copies whose ExecStart= points at the built binary (verify insists
that it exists); everything else is the unit as installed."""
import os
import re
import subprocess
import sys
import tempfile

from twlib import TLSWATCHD, done, eq, ok

service_in, socket_unit = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as tmp:
    with open(service_in) as f:
        service = f.read()
    ok('ExecStart=' in service, 'service has ExecStart=')
    service = re.sub(r'^ExecStart=.*$', f'ExecStart={os.path.abspath(TLSWATCHD)}', service, flags=re.M)
    paths = {'tlswatchd.service': service, 'tlswatchd.socket': open(socket_unit).read()}
    for name, text in paths.items():
        with open(os.path.join(tmp, name), 'w') as f:
            f.write(text)
    units = [os.path.join(tmp, n) for n in paths]
    r = subprocess.run(['systemd-analyze', 'verify', '--man=no'] + units, capture_output=True, text=True,
                       cwd=tmp, timeout=60)
    eq((r.returncode, r.stderr.strip(), r.stdout.strip()), (0, '', ''), 'systemd-analyze verify is clean')
    r = subprocess.run(['systemd-analyze', 'security', '--offline=yes', units[0]], capture_output=True,
                       text=True, cwd=tmp, timeout=60)
    m = re.search(r'Overall exposure level for tlswatchd.service: ([0-9.]+)', r.stdout)
    ok(m is not None, 'systemd-analyze security rates the service', r.stdout[-500:] + r.stderr)
    if m:
        ok(float(m.group(1)) <= 2.0, f'exposure {m.group(1)} is at most 2.0')
    for want in ('Type=notify', 'DynamicUser=yes', 'StateDirectory=tlswatch', 'LimitNOFILE=', 'WatchdogSec='):
        ok(want in service, f'service has {want}')
    sock = paths['tlswatchd.socket']
    ok('Accept=no' in sock and '0.0.0.0:8443' in sock and '[::]:8443' in sock,
       'socket: port 8443 on IPv4 and IPv6, Accept=no')
done()

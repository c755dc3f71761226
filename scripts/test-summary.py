#!/usr/bin/env python3
"""Prints one line "N passed, N failed[, N skipped]" from meson's test logs (testlog.json, one JSON
object per test), adding up every log given. A test that timed out or errored counts as failed."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                result = json.loads(line).get('result')
                if result in ('OK', 'EXPECTEDFAIL'):
                    passed += 1
                elif result == 'SKIP':
                    skipped += 1
                else:
                    failed += 1
    except FileNotFoundError:
        print(f'test-summary: no test log at {path}', file=sys.stderr)
        failed += 1
print(f'{passed} passed, {failed} failed' + (f', {skipped} skipped' if skipped else ''))

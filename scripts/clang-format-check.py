#!/usr/bin/env python3
"""Fails when a C file of the source tree is not formatted as .clang-format says (ninja clang-format-check).
Reads the file tree itself (a source tarball has no .git): every *.c and *.h under the source root, except
build directories and hidden ones."""
import os
import subprocess
import sys

clang_format, root = sys.argv[1], sys.argv[2]

# The tree is formatted with Debian 12's clang-format 14; other versions format some constructs
# differently, so they cannot judge it: skip (exit 77) instead of failing on a newer Debian.
FORMATTED_WITH = 14
version = subprocess.run([clang_format, '--version'], capture_output=True, text=True).stdout
major = next((int(w.split('.')[0]) for w in version.split() if w[:1].isdigit()), None)
if major != FORMATTED_WITH:
    print(f'clang-format {major} is not clang-format {FORMATTED_WITH}, which the tree is formatted with: skipped')
    sys.exit(77)


def source_files(top):
    for d, dirs, names in os.walk(top):
        # build trees (meson's, any name: they hold meson-info/) and hidden directories are not source
        dirs[:] = sorted(x for x in dirs if not x.startswith('.') and
                         not os.path.exists(os.path.join(d, x, 'meson-info')))
        for n in sorted(names):
            if n.endswith(('.c', '.h')):
                yield os.path.relpath(os.path.join(d, n), top)


files = list(source_files(root))
if not files:
    print(f'no C file under {root}')
    sys.exit(1)
bad = [f for f in files
       if subprocess.run([clang_format, '--dry-run', '-Werror', f], cwd=root,
                         capture_output=True).returncode != 0]
for f in bad:
    print(f'not formatted: {f}  (fix: clang-format -i {f})')
sys.exit(1 if bad else 0)

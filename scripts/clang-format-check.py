#!/usr/bin/env python3
"""Fails when a tracked C file is not formatted as .clang-format says (ninja clang-format-check)."""
import subprocess
import sys

clang_format, root = sys.argv[1], sys.argv[2]
files = subprocess.run(['git', '-C', root, 'ls-files', '*.c', '*.h'], check=True,
                       capture_output=True, text=True).stdout.split()
bad = [f for f in files
       if subprocess.run([clang_format, '--dry-run', '-Werror', f], cwd=root,
                         capture_output=True).returncode != 0]
for f in bad:
    print(f'not formatted: {f}  (fix: clang-format -i {f})')
sys.exit(1 if bad else 0)

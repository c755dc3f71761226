#!/bin/sh
# scdoc-tbl.sh SCDOC: scdoc from stdin to stdout, after the line '\" t that tells man(1) (and groff
# checkers such as lintian) to run tbl(1) on the page: scdoc writes tables (.TS/.TE) but not that line.
cat <<'LINE'
'\" t
LINE
exec "$1"

#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs test-store-full (TAP) on a 16 MiB tmpfs mounted in a private mount namespace (unshare -m),
# so that no mount is left behind, whatever happens. Skips when mount namespaces are not available.
set -u
prog="$1"

if ! unshare -m --propagation private true 2>/dev/null; then
        echo "1..0 # SKIP needs unshare -m (root or CAP_SYS_ADMIN)"
        exit 0
fi
dir=$(mktemp -d /tmp/test-store-full-XXXXXX) || exit 1
trap 'rmdir "$dir"' EXIT
unshare -m --propagation private sh -c '
        mount -t tmpfs -o size=16m,mode=0700 tlswatch-test "$1" || { echo "Bail out! cannot mount tmpfs"; exit 1; }
        exec "$2" "$1"
' sh "$dir" "$prog"

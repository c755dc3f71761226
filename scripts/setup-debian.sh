#!/bin/sh
# Installs what tlswatch needs to build and test on Debian 12 (bookworm) or 13 (trixie).
# Idempotent: installs only what is missing and says nothing when everything is there.
# Usage: scripts/setup-debian.sh [build|test]   (build: compiler and libraries; test: also the clients)
set -eu

want=${1:-test}
[ "$(id -u)" -eq 0 ] || { echo "setup-debian.sh: run as root (it installs Debian packages)" >&2; exit 1; }
. /etc/os-release
case "${VERSION_CODENAME:-}" in
bookworm | trixie) ;;
*) echo "setup-debian.sh: Debian 12 or 13 expected, found ${PRETTY_NAME:-unknown}; continuing" >&2 ;;
esac

build_pkgs="gcc clang meson ninja-build pkg-config libsystemd-dev libsqlite3-dev sqlite3 scdoc
        clang-format python3 openssl"
# test: also the clients the tests drive, and what bench/run-all.sh needs (time, libssl-dev for loadgen)
# and bench/soak.sh (wget, python3-requests; python3-matplotlib for its plot)
test_pkgs="curl gnutls-bin tshark systemd systemd-container valgrind clang-tidy cppcheck
        chromium firefox-esr nginx nghttp2-client iproute2 procps psmisc xxd util-linux
        faketime time libssl-dev
        wget git lynx w3m elinks libwww-perl liblwp-protocol-https-perl ruby php-cli python3-requests
        nodejs golang-go default-jdk-headless libnss3-tools python3-matplotlib
        debhelper lintian systemd-journal-remote"
# debhelper and lintian: tests/system/test-deb.sh builds and checks the Debian package.
# systemd-journal-remote: the fleet (issue 15): the collector in tests/system/test-fleet.sh and
# test-journal-namespace.sh, bench/fleet-journal.sh.
pkgs=$build_pkgs
[ "$want" = test ] && pkgs="$pkgs $test_pkgs"

missing=""
for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done

# npm (for playwright-core, the browser tests' DevTools client): any npm will do, e.g. one that comes
# with a nodejs from elsewhere; Debian's package only where there is none.
if [ "$want" = test ] && ! command -v npm >/dev/null 2>&1; then
        missing="$missing npm"
fi

# Mbed TLS 3.6: Debian 12 ships 2.28, so take libmbedtls-dev (only it) from trixie with a low pin.
mbed_ok=0
if pkg-config --atleast-version=3.6 mbedtls 2>/dev/null; then mbed_ok=1; fi

[ -z "$missing" ] && [ "$mbed_ok" = 1 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
apt_q() { apt-get -q -y -o Dpkg::Use-Pty=0 "$@" >/tmp/tlswatch-setup.log 2>&1 || {
        cat /tmp/tlswatch-setup.log >&2; echo "setup-debian.sh: apt-get $* failed" >&2; exit 1; }; }

if [ "$mbed_ok" = 0 ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
        if [ ! -f /etc/apt/sources.list.d/tlswatch-trixie.sources ]; then
                cat >/etc/apt/sources.list.d/tlswatch-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
                cat >/etc/apt/preferences.d/tlswatch-trixie <<'PIN'
# tlswatch: only libmbedtls-dev 3.6 is taken from trixie (apt-get install -t trixie libmbedtls-dev)
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
        fi
fi

echo "setup-debian.sh: installing:${missing}$([ "$mbed_ok" = 0 ] && echo ' libmbedtls-dev (3.6)')" >&2
apt_q update
[ -n "$missing" ] && apt_q install --no-install-recommends $missing
if [ "$mbed_ok" = 0 ]; then
        if [ "${VERSION_CODENAME:-}" = bookworm ]; then
                apt_q install --no-install-recommends -t trixie libmbedtls-dev
        else
                apt_q install --no-install-recommends libmbedtls-dev
        fi
fi
pkg-config --atleast-version=3.6 mbedtls || { echo "setup-debian.sh: Mbed TLS >= 3.6 still missing" >&2; exit 1; }

#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs every tlswatch benchmark (issue 7) on loopback and prints one table of figures.
#
#   bench/run-all.sh [--quick] [--large] [--page-cost-only] [BUILDDIR]   (default BUILDDIR: build-bench)
#
# Build first, in release mode:  meson setup build-bench -Dbuildtype=release && ninja -C build-bench
# --quick: fewer and shorter rounds, 2,000 held connections, report databases up to 10^5 rows (~6 min).
# default: 5 rounds, 10,000 held connections, report databases of 10^5 and 10^6 rows, store rounds of
# 10^6 records (~17 min).
# --large: also report databases of 10^7 attempts, over 10 days and in one day (generated once into
#          $BENCH_CACHE: 5.4 GB and ~4 min each here, bounded to 15 min; then ~2 more minutes per run).
# --page-cost-only: only the page's cost (section 2 below and its instruction counts; ~1.5 min quick).
# The load is what a user's connection does: loadgen makes a full handshake, then GET / (HTTP/1.1,
# Connection: close), reads the whole response and the server's close (loadgen --request /); the bare
# Mbed TLS server answers it with a fixed body of the size of tlswatchd's page. Rows marked "hang-up"
# use the old load (close_notify right after the handshake), which tlswatchd records as a rejection
# after the handshake; the --lite client (scaling, the handshake's split) can only hang up.
# The machine may be shared: every figure that matters is a ratio against a baseline measured in
# the same run, rounds interleaved, and reported as median [min-max] over the rounds.
# Needs: python3, nginx (Debian package nginx), sqlite3 and /usr/bin/time for the report part.
# Only 127.0.0.1 is used. Nothing is a pass/fail test: the figures are printed next to the targets.
set -euo pipefail

quick=0
large=0
page_only=0
builddir=
for a in "$@"; do
        case $a in
        --quick) quick=1 ;;
        --large) large=1 ;;
        --page-cost-only) page_only=1 ;;
        -h | --help)
                sed -n '3,25p' "$0"
                exit 0
                ;;
        -*)
                echo "unknown option $a" >&2
                exit 2
                ;;
        *) builddir=$a ;;
        esac
done
src=$(cd "$(dirname "$0")/.." && pwd)
builddir=${builddir:-$src/build-bench}
builddir=$(cd "$builddir" && pwd)
cache=${BENCH_CACHE:-/var/tmp/tlswatch-bench}

if ((quick)); then
        rounds=3 secs=2 hold=2000 hold_secs=3 store_n=200000 store_paced_n=500000 sizes="100000:0.1" cg_n=10
        pc_rounds=8 pc_n=1000
else
        rounds=5 secs=4 hold=10000 hold_secs=5 store_n=1000000 store_paced_n=1000000 sizes="100000:0.1 1000000:1" cg_n=40
        pc_rounds=10 pc_n=2000
fi
# report databases, ATTEMPTS:DAYS: 10^6 attempts a day, so that the bigger ones cover more days at the same
# density (what a retry window holds stays the same); --large adds 10^7 over 10 days and 10^7 in one day
((large)) && sizes="$sizes 10000000:10 10000000:1"
clients=16
# the load: a user's connection (see above); the page-cost section also requests a path that is not there
page_path=/
missing_path=/nonexistent
load=(--request "$page_path")

tlswatchd=$builddir/daemon/tlswatchd
tlsreport=$builddir/tools/tlsreport
loadgen=$builddir/bench/loadgen
baseline=$builddir/bench/mbedtls-baseline-server
floor=$builddir/bench/crypto-floor
crypto_time=$builddir/bench/crypto-time.so
for f in "$tlswatchd" "$tlsreport" "$baseline" "$floor" "$builddir/bench/bench-store" \
        "$builddir/bench/bench-fingerprint" "$builddir/bench/gen-attempts" "$builddir/bench/tcp-floor"; do
        [ -x "$f" ] || {
                echo "missing $f: build with meson setup $builddir -Dbuildtype=release && ninja -C $builddir" >&2
                exit 1
        }
done
have_loadgen=1
[ -x "$loadgen" ] || {
        have_loadgen=0
        echo "NOTE: $loadgen not built (OpenSSL's libssl-dev missing): handshake benchmarks skipped" >&2
}
have_nginx=1
command -v nginx >/dev/null || {
        have_nginx=0
        echo "NOTE: nginx not installed: the nginx comparison is skipped" >&2
}

tmp=$(mktemp -d /tmp/tlswatch-bench.XXXXXX)
results=$tmp/results # lines: SECTION<TAB>METRIC<TAB>ROUND<TAB>VALUE
: >"$results"
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        for p in "${pids[@]}"; do
                wait "$p" 2>/dev/null || true
        done
        rm -rf "$tmp" "${www:-}"
}
trap cleanup EXIT
stop() { # PID...: stops servers this script started
        local p q keep
        for p in "$@"; do
                kill "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
                keep=()
                for q in "${pids[@]}"; do
                        [ "$q" = "$p" ] || keep+=("$q")
                done
                pids=("${keep[@]}")
        done
}
start_s=$(date +%s)

note() { printf '== %s (%ss)\n' "$*" "$(($(date +%s) - start_s))" >&2; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$results"; }
kv() { # KEY LINE: the value of KEY=... in a loadgen line
        sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"
}
wait_port() { # PORT: until something accepts on 127.0.0.1:PORT (5 s at most)
        local i
        for i in $(seq 50); do
                (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
                sleep 0.1
        done
        echo "nothing listens on port $1" >&2
        return 1
}
base=$((20000 + RANDOM % 20000))
port() { echo $((base + $1)); }

# tlswatchd's generated certificate (ECDSA P-256) is used by every server.
state=$tmp/state
mkdir -p "$state"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
start_tlswatchd() { # INDEX THREADS EXTRA-ARGS...: starts tlswatchd on port(INDEX), sets $started
        local i=$1 t=$2
        shift 2
        mkdir -p "$tmp/tw$i"
        "$tlswatchd" --listen "127.0.0.1:$(port "$i")" --state-directory "$state" --database "$tmp/tw$i/db" \
                --threads "$t" --log-level err "$@" &
        started=$!
        pids+=("$started")
        wait_port "$(port "$i")"
}
start_tlswatchd 0 2 --no-record
stop "$started"
cert=$state/tlswatchd-cert.pem
key=$state/tlswatchd-key.pem
[ -s "$cert" ] && [ -s "$key" ]

{
        echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
        echo "memory: $(free -m | awk '/^Mem:/ {print $2}') MiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "mbedtls: $(pkg-config --modversion mbedtls 2>/dev/null || echo ?), openssl: $(openssl version 2>/dev/null | cut -d' ' -f2)," \
                "nginx: $( (nginx -v 2>&1 || true) | sed 's/.*nginx\///'), sqlite: $(pkg-config --modversion sqlite3)"
        echo "mode: $( ((quick)) && echo quick || echo full)$( ((page_only)) && echo ', page cost only'), rounds=$rounds, seconds per measurement=$secs, clients=$clients, page cost: $pc_rounds rounds of $pc_n connections per load"
        echo "load: every connection a full handshake, then GET $page_path (HTTP/1.1, Connection: close), the whole response and the server's close, unless marked hang-up"
} >"$tmp/header"
cat "$tmp/header" >&2

# PORT-INDEX: fills tlswatchd's list of recent attempts from 127.0.0.1 (at most 50 in 10 minutes: every
# page of a busy benchmark lists 50), then prints the size of its page's body (the mean of 20 pages)
page_bytes_of() {
        local line
        "$loadgen" --connect "127.0.0.1:$(port "$1")" --request "$page_path" --clients 4 --count 100 --seconds 60 >/dev/null
        line=$("$loadgen" --connect "127.0.0.1:$(port "$1")" --request "$page_path" --clients 2 --count 20 --seconds 60)
        kv body_bytes "$line"
}

# ---------------------------------------------------------------------------------------------------
# The page's cost: tlswatchd's CPU per connection when every connection requests the page (GET /) and
# when it requests a path that is not there (404: the handshake, its recording and a trivial answer),
# against the bare Mbed TLS server doing the same (its fixed page the size of tlswatchd's); one process
# each, the four loads interleaved and rotated each round, a fixed number of connections each.
if ((have_loadgen)); then
        note "page cost: tlswatchd and the Mbed TLS baseline, GET $page_path vs GET $missing_path, $pc_rounds rounds of $pc_n connections"
        start_tlswatchd 20 2
        pid_pc_tw=$started
        page_bytes=$(page_bytes_of 20)
        echo "tlswatchd's page: $page_bytes bytes" >&2
        "$baseline" --listen "127.0.0.1:$(port 21)" --cert "$cert" --key "$key" --threads 2 --body-bytes "$page_bytes" &
        pid_pc_mb=$!
        pids+=("$pid_pc_mb")
        wait_port "$(port 21)"
        "$loadgen" --connect "127.0.0.1:$(port 21)" --request "$page_path" --clients 2 --seconds 0.3 >/dev/null
        loads=("tw_page:20:$pid_pc_tw:$page_path:200" "tw_404:20:$pid_pc_tw:$missing_path:404"
                "mb_page:21:$pid_pc_mb:$page_path:200" "mb_404:21:$pid_pc_mb:$missing_path:404")
        for r in $(seq "$pc_rounds"); do
                for i in 0 1 2 3; do
                        # A B A B, the order turned each round: (page, 404) then (404, page), the two
                        # servers alternating first
                        j=$(((r % 2 ? i : (i ^ 1)) ^ (r % 4 >= 2 ? 2 : 0)))
                        IFS=: read -r name idx pid path status <<<"${loads[$j]}"
                        sleep 0.3 # tlswatchd's store commits the previous load's records (every 0.2 s)
                        line=$("$loadgen" --connect "127.0.0.1:$(port "$idx")" --request "$path" --expect "$status" \
                                --clients "$clients" --count "$pc_n" --seconds 300 --pid "$pid")
                        echo "round $r page cost $name (GET $path): $line" >&2
                        record pc "${name}_cpu" "$r" "$(kv server_cpu_ms_per_hs "$line")"
                        record pc "${name}_hs" "$r" "$(kv hs_per_s "$line")"
                        record pc "${name}_err" "$r" "$(kv errors "$line")"
                        record pc "${name}_bytes" "$r" "$(kv body_bytes "$line")"
                        record pc "${name}_conn_p50" "$r" "$(kv conn_p50_ms "$line")"
                done
        done
        stop "$pid_pc_tw" "$pid_pc_mb"
        records=$(sqlite3 "$tmp/tw20/db" "SELECT outcome || '=' || count(*) FROM attempts GROUP BY outcome" 2>/dev/null | tr '\n' ' ' || true)
        echo "tlswatchd recorded (page cost): $records" >&2
        echo "$records" >"$tmp/pc_records"
fi

# ---------------------------------------------------------------------------------------------------
# 1. Full-handshake throughput, CPU per connection, crypto floor, recording cost; 2 worker threads each.
if ((have_loadgen && !page_only)); then
        note "handshake throughput (each connection: handshake + GET $page_path): tlswatchd, tlswatchd --no-record, Mbed TLS baseline, nginx; TLS 1.3 and 1.2; then hang-up"
        start_tlswatchd 1 2
        pid_tw=$started
        start_tlswatchd 2 2 --no-record
        pid_twn=$started
        page_bytes=$(page_bytes_of 1)
        echo "tlswatchd's page: $page_bytes bytes" >&2
        body=(--body-bytes "$page_bytes")
        "$baseline" --listen "127.0.0.1:$(port 3)" --cert "$cert" --key "$key" --threads 2 "${body[@]}" &
        pid_mb=$!
        pids+=("$pid_mb")
        wait_port "$(port 3)"
        "$baseline" --listen "127.0.0.1:$(port 4)" --cert "$cert" --key "$key" --threads 2 --groups x25519,p256 "${body[@]}" &
        pid_mbp=$!
        pids+=("$pid_mbp")
        wait_port "$(port 4)"
        "$baseline" --listen "127.0.0.1:$(port 5)" --cert "$cert" --key "$key" --threads 2 --no-tickets "${body[@]}" &
        pid_mbt=$!
        pids+=("$pid_mbt")
        wait_port "$(port 5)"
        ng_pids=()
        if ((have_nginx)); then
                ng=$tmp/nginx
                mkdir -p "$ng/logs" "$ng/tmp"
                # the same page as the baseline's, of the size of tlswatchd's: a static file, in a directory
                # of its own that its workers (user nobody when started as root) can read, unlike $tmp
                www=$(mktemp -d /tmp/tlswatch-bench-www.XXXXXX)
                chmod 755 "$www"
                head -c "$page_bytes" /dev/zero | tr '\0' x >"$www/index.html"
                chmod 644 "$www/index.html"
                cat >"$ng/nginx.conf" <<EOF
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/logs/error.log error;
events { worker_connections 4096; }
http {
        access_log off;
        client_body_temp_path $ng/tmp; proxy_temp_path $ng/tmp; fastcgi_temp_path $ng/tmp;
        uwsgi_temp_path $ng/tmp; scgi_temp_path $ng/tmp;
        server {
                listen 127.0.0.1:$(port 6) ssl;
                ssl_certificate $cert;
                ssl_certificate_key $key;
                ssl_protocols TLSv1.2 TLSv1.3;
                ssl_ecdh_curve X25519:prime256v1;
                ssl_session_cache off;
                root $www;
                location = / { try_files /index.html =404; }
                location / { return 404; }
        }
}
EOF
                nginx -p "$ng" -c "$ng/nginx.conf" -g 'daemon off;' 2>"$ng/logs/stderr" &
                pid_ng=$!
                pids+=("$pid_ng")
                wait_port "$(port 6)"
                sleep 0.5 # the workers
                mapfile -t ng_pids < <(echo "$pid_ng"; pgrep -P "$pid_ng")
        fi

        servers="tw twn mb mbp mbt"
        ((have_nginx)) && servers="$servers ng"
        server_port() { case $1 in tw) port 1 ;; twn) port 2 ;; mb) port 3 ;; mbp) port 4 ;; mbt) port 5 ;; ng) port 6 ;; esac }
        server_pidargs() {
                case $1 in
                tw) echo "--pid $pid_tw" ;;
                twn) echo "--pid $pid_twn" ;;
                mb) echo "--pid $pid_mb" ;;
                mbp) echo "--pid $pid_mbp" ;;
                mbt) echo "--pid $pid_mbt" ;;
                ng) for p in "${ng_pids[@]}"; do echo "--pid $p"; done ;;
                esac
        }
        # one warm-up handshake burst each
        for s in $servers; do
                "$loadgen" --connect "127.0.0.1:$(server_port "$s")" "${load[@]}" --clients 2 --seconds 0.3 >/dev/null
        done
        for r in $(seq "$rounds"); do
                out=$("$floor" 1 100)
                record floor mbedtls_us "$r" "$(sed -n 's/^floor_mbedtls_us=\([^ ]*\).*/\1/p' <<<"$out")"
                record floor mbedtls_p256_us "$r" "$(sed -n 's/^floor_mbedtls_p256_us=\([^ ]*\).*/\1/p' <<<"$out")"
                record floor openssl_us "$r" "$(sed -n 's/^floor_openssl_us=\([^ ]*\).*/\1/p' <<<"$out")"
                record floor mbedtls_over_openssl "$r" "$(sed -n 's/.*ratio_mbedtls_over_openssl=\([^ ]*\).*/\1/p' <<<"$out")"
                # rotate the order of the servers each round
                read -ra list <<<"$servers"
                n=${#list[@]}
                for v in 1.3 1.2; do
                        for i in $(seq 0 $((n - 1))); do
                                s=${list[$(((i + r) % n))]}
                                # shellcheck disable=SC2046
                                line=$("$loadgen" --connect "127.0.0.1:$(server_port "$s")" --tls "$v" "${load[@]}" \
                                        --clients "$clients" --seconds "$secs" $(server_pidargs "$s"))
                                echo "round $r TLS $v $s: $line" >&2
                                record "tls$v" "${s}_hs" "$r" "$(kv hs_per_s "$line")"
                                record "tls$v" "${s}_cpu" "$r" "$(kv server_cpu_ms_per_hs "$line")"
                                record "tls$v" "${s}_err" "$r" "$(kv errors "$line")"
                                record "tls$v" "${s}_client_cpu" "$r" "$(kv client_cpu_ms_per_hs "$line")"
                        done
                done
                # hang-up: the old load, close_notify right after the handshake (tlswatchd records a
                # rejection after the handshake); TLS 1.3, tlswatchd, --no-record and the baseline
                for i in 0 1 2; do
                        s=$(cut -d' ' -f$(((i + r) % 3 + 1)) <<<"tw twn mb")
                        # shellcheck disable=SC2046
                        line=$("$loadgen" --connect "127.0.0.1:$(server_port "$s")" --tls 1.3 \
                                --clients "$clients" --seconds "$secs" $(server_pidargs "$s"))
                        echo "round $r TLS 1.3 hang-up $s: $line" >&2
                        record hangup "${s}_hs" "$r" "$(kv hs_per_s "$line")"
                        record hangup "${s}_cpu" "$r" "$(kv server_cpu_ms_per_hs "$line")"
                        record hangup "${s}_err" "$r" "$(kv errors "$line")"
                done
        done
        # shellcheck disable=SC2086
        stop $pid_tw $pid_twn $pid_mb $pid_mbp $pid_mbt ${ng_pids[0]:-}
        records=$(sqlite3 "$tmp/tw1/db" "SELECT outcome || '=' || count(*) FROM attempts GROUP BY outcome" 2>/dev/null | tr '\n' ' ' || true)
        echo "tlswatchd recorded: $records" >&2
        echo "$records" >"$tmp/tw_records"

        # ---------------------------------------------------------------------------------------------
        note "scaling: 1 vs 2 worker threads (tlswatchd --no-record and the Mbed TLS baseline), TLS 1.3, loadgen --lite (hang-up)"
        start_tlswatchd 7 1 --no-record
        pid_t1=$started
        start_tlswatchd 8 2 --no-record
        pid_t2=$started
        "$baseline" --listen "127.0.0.1:$(port 9)" --cert "$cert" --key "$key" --threads 1 &
        pid_b1=$!
        pids+=("$pid_b1")
        "$baseline" --listen "127.0.0.1:$(port 10)" --cert "$cert" --key "$key" --threads 2 &
        pid_b2=$!
        pids+=("$pid_b2")
        wait_port "$(port 9)"
        wait_port "$(port 10)"
        for r in $(seq "$rounds"); do
                for s in t1:7:$pid_t1 t2:8:$pid_t2 b1:9:$pid_b1 b2:10:$pid_b2; do
                        IFS=: read -r name idx pid <<<"$s"
                        # The lite client spends 0.2-0.3 ms of CPU per handshake (OpenSSL's: 0.85), which the
                        # servers' second thread would otherwise have to share with it.
                        line=$("$loadgen" --connect "127.0.0.1:$(port "$idx")" --lite --clients 8 --seconds "$secs" --pid "$pid")
                        echo "round $r scaling $name: $line" >&2
                        record scaling "${name}_hs" "$r" "$(kv hs_per_s "$line")"
                        record scaling "${name}_cores" "$r" "$(kv server_cores "$line")"
                        record scaling "${name}_cpu" "$r" "$(kv server_cpu_ms_per_hs "$line")"
                        record scaling "${name}_client_cpu" "$r" "$(kv client_cpu_ms_per_hs "$line")"
                done
                # What the machine itself gives: the crypto floor alone, then two at once. Its two vCPUs
                # are not always equal (one ran the floor 1.7x slower for seconds at a time here).
                f1=$("$floor" 1 300 | sed -n 's/^floor_mbedtls_us=\([^ ]*\).*/\1/p')
                "$floor" 1 300 >"$tmp/floor-par" &
                f2=$("$floor" 1 300 | sed -n 's/^floor_mbedtls_us=\([^ ]*\).*/\1/p')
                wait $!
                f3=$(sed -n 's/^floor_mbedtls_us=\([^ ]*\).*/\1/p' "$tmp/floor-par")
                echo "round $r scaling floor: alone $f1 us, two at once $f2 and $f3 us" >&2
                record scaling floor1_us "$r" "$f1"
                record scaling floor2_us "$r" "$(awk -v a="$f2" -v b="$f3" 'BEGIN { printf "%.1f", (a + b) / 2 }')"
        done
        stop "$pid_t1" "$pid_t2" "$pid_b1" "$pid_b2"

        # ---------------------------------------------------------------------------------------------
        note "latency: one client, saturation ($clients clients), half of saturation (tlswatchd, TLS 1.3, handshake + GET $page_path); the split with one --lite client (hang-up)"
        start_tlswatchd 11 2
        pid_l=$started
        for r in $(seq "$rounds"); do
                one=$("$loadgen" --connect "127.0.0.1:$(port 11)" "${load[@]}" --clients 1 --seconds "$secs" --pid "$pid_l")
                sat=$("$loadgen" --connect "127.0.0.1:$(port 11)" "${load[@]}" --clients "$clients" --seconds "$secs" --pid "$pid_l")
                rate=$(awk -v x="$(kv hs_per_s "$sat")" 'BEGIN { printf "%.0f", x / 2 }')
                half=$("$loadgen" --connect "127.0.0.1:$(port 11)" "${load[@]}" --clients "$clients" --seconds "$secs" --rate "$rate" --pid "$pid_l")
                echo "round $r latency: one: $one" >&2
                echo "round $r latency: saturated: $sat" >&2
                echo "round $r latency: half ($rate/s): $half" >&2
                record latency one_p50 "$r" "$(kv p50_ms "$one")"
                record latency one_p99 "$r" "$(kv p99_ms "$one")"
                record latency one_conn_p50 "$r" "$(kv conn_p50_ms "$one")"
                record latency one_cpu "$r" "$(kv server_cpu_ms_per_hs "$one")"
                record latency sat_hs "$r" "$(kv hs_per_s "$sat")"
                record latency sat_p99 "$r" "$(kv p99_ms "$sat")"
                record latency half_hs "$r" "$(kv hs_per_s "$half")"
                record latency half_p50 "$r" "$(kv p50_ms "$half")"
                record latency half_p99 "$r" "$(kv p99_ms "$half")"
                out=$("$floor" 1 100)
                record latency floor_us "$r" "$(sed -n 's/^floor_mbedtls_us=\([^ ]*\).*/\1/p' <<<"$out")"
                # Where a handshake's CPU time goes: the public-key operations timed inside tlswatchd's
                # handshakes (crypto-time.so), and the kernel's work for the same loopback TCP exchange
                # without TLS (tcp-floor).
                # One client keeps a server's CPU per handshake steady (no load generator competing for
                # the CPUs): recording's share is also measured here, against --no-record, both with the
                # module loaded.
                if [ -e "$crypto_time" ]; then
                        # pin: server and client on one CPU, so that neither wakes the other across CPUs
                        # (the cheapest the kernel's part gets here)
                        for c in rec:16 norec:17 pin:18; do
                                IFS=: read -r name idx <<<"$c"
                                mkdir -p "$tmp/tw$idx"
                                extra=() pin=()
                                [ "$name" = norec ] && extra=(--no-record)
                                [ "$name" = pin ] && pin=(taskset -c 1)
                                CRYPTO_TIME_FILE=$tmp/crypto-time LD_PRELOAD=$crypto_time "${pin[@]}" "$tlswatchd" \
                                        --listen "127.0.0.1:$(port "$idx")" --state-directory "$state" \
                                        --database "$tmp/tw$idx/db" --threads 1 --log-level err "${extra[@]}" &
                                pid_c=$!
                                pids+=("$pid_c")
                                wait_port "$(port "$idx")"
                                ct=$("${pin[@]}" "$loadgen" --connect "127.0.0.1:$(port "$idx")" --lite --clients 1 \
                                        --seconds "$secs" --pid "$pid_c")
                                stop "$pid_c"
                                echo "round $r split $name: one lite client, crypto-time.so: $ct; $(cat "$tmp/crypto-time")" >&2
                                record split "${name}_cpu" "$r" "$(kv server_cpu_ms_per_hs "$ct")"
                                record split "${name}_sys" "$r" "$(kv server_sys_ms_per_hs "$ct")"
                                # no signature timed: Mbed TLS no longer calls these through the dynamic linker
                                if [ "$(kv signatures "$(cat "$tmp/crypto-time")")" -gt 0 ]; then
                                        record split "${name}_crypto_us" "$r" "$(kv crypto_us_per_signature "$(cat "$tmp/crypto-time")")"
                                else
                                        echo "crypto-time.so timed no signature: the split is skipped" >&2
                                fi
                        done
                        record split floor_us "$r" "$(sed -n 's/^floor_mbedtls_us=\([^ ]*\).*/\1/p' <<<"$out")"
                fi
                # each side works as long as it does in a handshake: the server its crypto floor, the
                # client what the lite client spent (0.2 ms if not measured)
                work_s=$(sed -n 's/^floor_mbedtls_us=\([0-9]*\).*/\1/p' <<<"$out")
                work_c=$(awk -v c="$(kv client_cpu_ms_per_hs "${ct:-}")" 'BEGIN { printf "%.0f", (c > 0 ? c : 0.2) * 1000 }')
                tf=$("$builddir/bench/tcp-floor" 1 2000 "${work_s:-1300}" "$work_c" 2>/dev/null)
                tfp=$(taskset -c 1 "$builddir/bench/tcp-floor" 1 2000 "${work_s:-1300}" "$work_c" 2>/dev/null)
                echo "round $r split: $tf; on one CPU: $tfp" >&2
                record split tcp_us "$r" "$(kv tcp_floor_us "$tf")"
                record split tcp_pin_us "$r" "$(kv tcp_floor_us "$tfp")"
        done
        stop "$pid_l"

        # ---------------------------------------------------------------------------------------------
        note "concurrency: $hold connections held after the server flight (tlswatchd, recording on)"
        start_tlswatchd 12 2 --handshake-timeout 3600 --max-connections $((hold + 100)) --max-connections-per-client 0
        pid_h=$started
        if out=$("$loadgen" --connect "127.0.0.1:$(port 12)" --hold "$hold" --seconds "$hold_secs" --pid "$pid_h"); then
                echo "$out" >&2
                un=$(grep '^unloaded:' <<<"$out")
                lo=$(grep '^loaded:' <<<"$out")
                record hold reached 1 "$(kv reached_server_flight "$out")"
                record hold setup_s 1 "$(kv setup_seconds "$out")"
                record hold rss_kib_per_conn 1 "$(kv per_connection_kib "$out")"
                record hold rss_held_kib 1 "$(kv held_kib "$out")"
                record hold unloaded_p50 1 "$(kv p50_ms "$un")"
                record hold loaded_p50 1 "$(kv p50_ms "$lo")"
                record hold unloaded_p99 1 "$(kv p99_ms "$un")"
                record hold loaded_p99 1 "$(kv p99_ms "$lo")"
        else
                echo "hold benchmark failed" >&2
        fi
        stop "$pid_h"
fi

# ---------------------------------------------------------------------------------------------------
# Mass disconnect (issue 17): $hold connections holding a partial ClientHello close at once: tlswatchd's
# CPU for it, a fresh client's handshake + GET / latency during it against unloaded, and the memory
# returned to the system after the peak (bench/mass-close.py starts its own tlswatchd).
if ((!page_only)); then
        note "mass close: $hold held handshakes closing at once; memory after the peak"
        if out=$(python3 "$src/bench/mass-close.py" --connections "$hold" --rounds $((quick ? 2 : 4)) --idle 8 "$builddir"); then
                echo "$out" >&2
                sum=$(grep '^summary:' <<<"$out")
                for k in cpu_s close_wall_s unloaded_p50_ms unloaded_p99_ms during_p50_ms during_p99_ms during_max_ms \
                        rss_start_mib rss_peak_mib rss_full_peak_mib rss_idle_mib trim_ms; do
                        record mclose "$k" 1 "$(kv "$k" "$sum")"
                done
        else
                echo "mass close benchmark failed" >&2
        fi
fi

# ---------------------------------------------------------------------------------------------------
# Instruction counts (valgrind --tool=callgrind): deterministic where CPU times on a shared machine
# are not; one worker thread; the counters are dumped after a warm-up and after cg_n connections. The
# load is the same (handshake + GET /); TLS 1.3 also with GET /nonexistent (tw4, twn4), for the page's
# cost and recording's own. tlswatchd's warm-up fills its list of recent attempts (50 on every page).
if ((have_loadgen)) && command -v callgrind_control >/dev/null; then
        note "instructions per connection (callgrind, $cg_n connections each): tlswatchd, --no-record, baseline, crypto floor"
        cg_ir() { sed -n 's/^summary: //p' "$1"; }
        cg_server() { # NAME TLS-VERSION PORT-INDEX WARM-UP PATH STATUS COMMAND...: records Ir per connection
                local name=$1 v=$2 idx=$3 warm=$4 path=$5 status=$6 p
                shift 6
                valgrind --tool=callgrind --callgrind-out-file="$tmp/cg-$name-$v.%p" "$@" 2>"$tmp/cg-$name-$v.log" &
                p=$!
                pids+=("$p")
                for _ in $(seq 300); do
                        (exec 3<>"/dev/tcp/127.0.0.1/$(port "$idx")") 2>/dev/null && break
                        sleep 0.1
                done
                "$loadgen" --connect "127.0.0.1:$(port "$idx")" --tls "$v" --request "$page_path" --count "$warm" --seconds 300 >/dev/null
                sleep 1
                callgrind_control -d "$p" >/dev/null
                line=$("$loadgen" --connect "127.0.0.1:$(port "$idx")" --tls "$v" --request "$path" --expect "$status" \
                        --count "$cg_n" --seconds 600)
                sleep 1 # the store's batch
                callgrind_control -d "$p" >/dev/null
                stop "$p"
                n=$(kv handshakes "$line")
                ir=$(cg_ir "$tmp/cg-$name-$v.$p.2")
                echo "callgrind $name TLS $v (GET $path): $n connections ($(kv errors "$line") errors), $ir instructions" >&2
                record "cg$v" "$name" 1 "$(awk -v a="$ir" -v b="$n" 'BEGIN { printf "%.0f", a / b }')"
        }
        cg_tw() { # NAME TLS-VERSION PORT-INDEX PATH STATUS [--no-record]
                local name=$1 v=$2 idx=$3 path=$4 status=$5 db=(--database "$tmp/cg-$1-$2.db")
                shift 5
                [ "${1:-}" = --no-record ] && db=()
                cg_server "$name" "$v" "$idx" 60 "$path" "$status" "$tlswatchd" --listen "127.0.0.1:$(port "$idx")" \
                        --state-directory "$state" "${db[@]}" --threads 1 --log-level err "$@"
        }
        versions="1.3 1.2"
        ((page_only)) && versions=1.3
        for v in $versions; do
                cg_tw tw "$v" 13 "$page_path" 200
                [ "$v" = 1.3 ] && cg_tw tw4 "$v" 22 "$missing_path" 404
                if ((!page_only)); then
                        cg_tw twn "$v" 14 "$page_path" 200 --no-record
                        [ "$v" = 1.3 ] && cg_tw twn4 "$v" 23 "$missing_path" 404 --no-record
                fi
                cg_server mb "$v" 15 5 "$page_path" 200 "$baseline" --listen "127.0.0.1:$(port 15)" --cert "$cert" \
                        --key "$key" --threads 1 --body-bytes "${page_bytes:-9500}"
        done
        valgrind --tool=callgrind --callgrind-out-file="$tmp/cg-floor1" "$floor" --count 1 >/dev/null 2>&1
        valgrind --tool=callgrind --callgrind-out-file="$tmp/cg-floorn" "$floor" --count $((cg_n + 1)) >/dev/null 2>&1
        record cg floor 1 "$(awk -v a="$(cg_ir "$tmp/cg-floorn")" -v b="$(cg_ir "$tmp/cg-floor1")" -v n="$cg_n" \
                'BEGIN { printf "%.0f", (a - b) / n }')"
fi

if ((!page_only)); then
# ---------------------------------------------------------------------------------------------------
note "store: bench-store $store_n records x 3 rounds, then $store_paced_n offered at 50,000/s x 2 rounds"
# bench-store exits 2 when its target is missed: the figure is what matters here. In $cache, on disk like
# the state directory (/tmp may be a tmpfs); bench-store makes and removes its own directory there.
mkdir -p "$cache"
"$builddir/bench/bench-store" "$store_n" 3 "$cache" >"$tmp/store" || echo "(bench-store exit status $?)" >>"$tmp/store"
"$builddir/bench/bench-store" "$store_paced_n" 2 "$cache" 50000 >>"$tmp/store" 2>/dev/null ||
        echo "(bench-store exit status $?)" >>"$tmp/store"
cat "$tmp/store" >&2

# ---------------------------------------------------------------------------------------------------
note "parser: bench-fingerprint over the corpus"
corpus=$src/tests/fixtures/clienthello
if [ -d "$corpus" ]; then
        "$builddir/bench/bench-fingerprint" "$corpus" >"$tmp/parser" || echo "(bench-fingerprint exit status $?)" >>"$tmp/parser"
        cat "$tmp/parser" >&2
else
        echo "corpus $corpus not found: skipped" | tee "$tmp/parser" >&2
fi

# ---------------------------------------------------------------------------------------------------
# tlsreport on generated databases (gen-attempts, ending today), cached in $cache.
command -v sqlite3 >/dev/null && [ -x /usr/bin/time ] && have_report=1 || have_report=0
mkdir -p "$cache"
# The schema version is in the name: a database cached by an older build lacks the report indexes.
schema_v=$(find "$src/schema" -name '[0-9]*.sql' | wc -l)
if ((have_report)); then
        for sd in $sizes; do
                IFS=: read -r size days <<<"$sd"
                # the first day, local midnight: the last one is today
                first=$(date -d "$(date -d "-$(awk -v d="$days" 'BEGIN { n = int(d); if (n < d) n++; print n - 1 }') days" +%F)" +%s)
                db=$cache/gen-$size-${days}d-v$schema_v-$(date +%Y%m%d).db
                if [ ! -e "$db" ]; then
                        note "generating $size attempts over $days days into $db"
                        rm -f "$db.tmp"
                        if ! (cd "$cache" && timeout 900 "$builddir/bench/gen-attempts" "$db.tmp" "$size" "$first" 0 "$days" >/dev/null); then
                                echo "generation of $size attempts failed or took over 15 min: skipped" >&2
                                rm -f "$db.tmp"*
                                continue
                        fi
                        mv "$db.tmp" "$db"
                fi
                note "tlsreport on $size attempts over $days days"
                rr=3
                ((size >= 10000000)) && rr=1
                for r in $(seq $rr); do
                        for c in sequences summary json; do
                                case $c in
                                sequences) args=(sequences -o table) ;;
                                summary) args=(summary) ;;
                                json) args=(-o json) ;;
                                esac
                                /usr/bin/time -f '%e %M' -o "$tmp/time" "$tlsreport" --database "$db" --since "@$first" \
                                        --no-pager "${args[@]}" >/dev/null
                                read -r s kib <"$tmp/time"
                                record "report$sd" "${c}_s" "$r" "$s"
                                record "report$sd" "${c}_kib" "$r" "$kib"
                        done
                        /usr/bin/time -f '%e %M' -o "$tmp/time" sqlite3 "$db" 'SELECT * FROM attempts' >/dev/null
                        read -r s kib <"$tmp/time"
                        record "report$sd" sqlite3_s "$r" "$s"
                done
        done
else
        echo "sqlite3 CLI or /usr/bin/time missing: tlsreport benchmark skipped" >&2
fi
fi # page_only

note "done"
cp "$results" "$cache/last-results.tsv"
# ---------------------------------------------------------------------------------------------------
echo
cat "$tmp/header"
echo
python3 - "$results" "$tmp" "$hold" "$sizes" <<'EOF'
import collections, os, statistics, sys

path, tmp, hold, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
data = collections.defaultdict(dict)  # (section, metric) -> {round: value}
for line in open(path):
    sec, metric, rnd, value = line.rstrip("\n").split("\t")
    try:
        data[(sec, metric)][rnd] = float(value)
    except ValueError:
        pass

def series(sec, metric):
    return data.get((sec, metric), {})

def ratio(a, b, sec_b=None, op=lambda x, y: x / y):
    """per-round ratio of two series"""
    sa, sb = a, b
    return {r: op(sa[r], sb[r]) for r in sa if r in sb and sb[r] != 0}

def fmt(vals, digits=2):
    v = sorted(vals.values()) if isinstance(vals, dict) else sorted(vals)
    if not v:
        return "n/a"
    m = statistics.median(v)
    if len(v) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{v[0]:.{digits}f}-{v[-1]:.{digits}f}]"

rows = []
def row(what, value, target=""):
    rows.append((what, value, target))

pc = lambda m: series("pc", m)
if pc("tw_page_cpu"):
    cost = lambda a, b: fmt(ratio(pc(a), pc(b), op=lambda x, y: 100 * (x - y) / y), 1) + " %"
    row("page cost: tlswatchd CPU per connection, (GET / - GET /nonexistent) / GET /nonexistent (% of a handshake)",
        cost("tw_page_cpu", "tw_404_cpu"), "< 5 %")
    row("  the same for the bare Mbed TLS server (a fixed page of the same size)", cost("mb_page_cpu", "mb_404_cpu"))
    row("  server CPU ms/conn: tlswatchd GET / / GET /nonexistent; baseline GET / / GET /nonexistent",
        " / ".join(fmt(pc(s + "_cpu"), 3) for s in ("tw_page", "tw_404")) + "; " +
        " / ".join(fmt(pc(s + "_cpu"), 3) for s in ("mb_page", "mb_404")))
    row("  tlswatchd GET / CPU per connection / baseline's GET /", fmt(ratio(pc("tw_page_cpu"), pc("mb_page_cpu"))))
    row("  tlswatchd / baseline, connections/s, GET /", fmt(ratio(pc("tw_page_hs"), pc("mb_page_hs"))), ">= 0.95")
    row("  tlswatchd / baseline, connections/s, GET /nonexistent", fmt(ratio(pc("tw_404_hs"), pc("mb_404_hs"))), ">= 0.95")
    row("  tlswatchd / baseline capacity (baseline CPU/conn / tlswatchd's), GET / ; GET /nonexistent",
        fmt(ratio(pc("mb_page_cpu"), pc("tw_page_cpu"))) + " ; " + fmt(ratio(pc("mb_404_cpu"), pc("tw_404_cpu"))), ">= 0.95")
    row("  connections/s: tlswatchd GET / / GET /nonexistent; baseline GET / / GET /nonexistent",
        " / ".join(fmt(pc(s + "_hs"), 0) for s in ("tw_page", "tw_404")) + "; " +
        " / ".join(fmt(pc(s + "_hs"), 0) for s in ("mb_page", "mb_404")))
    row("  page body (bytes): tlswatchd / baseline", fmt(pc("tw_page_bytes"), 0) + " / " + fmt(pc("mb_page_bytes"), 0))
    row("  failed connections (all four loads, all rounds)",
        f"{sum(sum(pc(s + '_err').values()) for s in ('tw_page', 'tw_404', 'mb_page', 'mb_404')):.0f}")
fl = series("floor", "mbedtls_us")
if fl:
    row("crypto floor, Mbed TLS: P-256 sign + X25519 gen + agree (ms)", fmt({r: v / 1000 for r, v in fl.items()}, 3))
    row("crypto floor with P-256 ECDHE instead of X25519 (ms)", fmt({r: v / 1000 for r, v in series("floor", "mbedtls_p256_us").items()}, 3))
    row("crypto floor, OpenSSL, same operations (ms)", fmt({r: v / 1000 for r, v in series("floor", "openssl_us").items()}, 3))
    row("Mbed TLS / OpenSSL, same operations", fmt(series("floor", "mbedtls_over_openssl"), 1) + " x")
for v in ("1.3", "1.2"):
    sec = "tls" + v
    if not series(sec, "tw_hs"):
        continue
    hs = lambda s: series(sec, s + "_hs")
    cpu = lambda s: series(sec, s + "_cpu")
    row(f"TLS {v} connections (handshake + GET /)/s: tlswatchd / tlswatchd --no-record / baseline / nginx",
        " / ".join(fmt(hs(s), 0) for s in ("tw", "twn", "mb", "ng")))
    row(f"TLS {v} tlswatchd / Mbed TLS baseline (hs/s)", fmt(ratio(hs("tw"), hs("mb"))), ">= 0.95")
    row(f"TLS {v} tlswatchd --no-record / baseline (hs/s)", fmt(ratio(hs("twn"), hs("mb"))))
    row(f"TLS {v} tlswatchd / baseline capacity (baseline CPU/hs / tlswatchd CPU/hs)", fmt(ratio(cpu("mb"), cpu("tw"))), ">= 0.95")
    row(f"TLS {v} nginx / Mbed TLS baseline (hs/s, client-bound)", fmt(ratio(hs("ng"), hs("mb"))))
    row(f"TLS {v} server CPU ms/hs: tlswatchd / --no-record / baseline / nginx",
        " / ".join(fmt(cpu(s), 3) for s in ("tw", "twn", "mb", "ng")))
    row(f"TLS {v} recording + the page's recent attempts: (cpu tlswatchd - cpu --no-record) / cpu tlswatchd",
        fmt(ratio(cpu("tw"), cpu("twn"), op=lambda x, y: 100 * (x - y) / x), 1) + " %", "<= 2 %")
    row(f"TLS {v} tlswatchd CPU/hs / crypto floor (16 clients)", fmt(ratio(cpu("tw"), {r: x / 1000 for r, x in fl.items()})), "<= 1.15")
    row(f"TLS {v} baseline CPU/hs / crypto floor (16 clients)", fmt(ratio(cpu("mb"), {r: x / 1000 for r, x in fl.items()})))
    row(f"TLS {v} nginx CPU/hs / baseline CPU/hs", fmt(ratio(cpu("ng"), cpu("mb"))))
    row(f"TLS {v} baseline with X25519 first / P-256 first (tls.c's order) (CPU/hs)", fmt(ratio(cpu("mbp"), cpu("mb"))))
    row(f"TLS {v} baseline without tickets / with tickets (CPU/hs)", fmt(ratio(cpu("mbt"), cpu("mb"))))
    errs = sum(sum(series(sec, s + "_err").values()) for s in ("tw", "twn", "mb", "mbp", "mbt", "ng"))
    row(f"TLS {v} failed connections (all servers, all rounds)", f"{errs:.0f}")
hu = lambda s: series("hangup", s)
if hu("tw_hs"):
    row("hang-up (close_notify after the handshake; tlswatchd records a rejection), TLS 1.3, hs/s: tlswatchd / --no-record / baseline",
        " / ".join(fmt(hu(s + "_hs"), 0) for s in ("tw", "twn", "mb")))
    row("  hang-up: tlswatchd / baseline (hs/s); capacity (baseline CPU/hs / tlswatchd's)",
        fmt(ratio(hu("tw_hs"), hu("mb_hs"))) + " ; " + fmt(ratio(hu("mb_cpu"), hu("tw_cpu"))))
    row("  hang-up: server CPU ms/hs: tlswatchd / --no-record / baseline", " / ".join(fmt(hu(s + "_cpu"), 3) for s in ("tw", "twn", "mb")))
    row("  hang-up: recording a rejection: (cpu tlswatchd - cpu --no-record) / cpu tlswatchd",
        fmt(ratio(hu("tw_cpu"), hu("twn_cpu"), op=lambda x, y: 100 * (x - y) / x), 1) + " %")
    row("  hang-up: failed handshakes (all rounds)", f"{sum(sum(hu(s + '_err').values()) for s in ('tw', 'twn', 'mb')):.0f}")
cgf = series("cg", "floor").get("1")
cg3 = lambda s: series("cg1.3", s).get("1")
if cg3("tw") and cg3("tw4"):
    row("page cost in instructions, TLS 1.3: tlswatchd (GET / - GET /nonexistent) / GET /nonexistent",
        f"{100 * (cg3('tw') - cg3('tw4')) / cg3('tw4'):.2f} %  ({cg3('tw') / 1e6:.2f} M / {cg3('tw4') / 1e6:.2f} M)", "< 5 %")
if cg3("tw4") and cg3("twn4"):
    row("recording cost in instructions, TLS 1.3, GET /nonexistent: (tlswatchd - --no-record) / tlswatchd",
        f"{100 * (cg3('tw4') - cg3('twn4')) / cg3('tw4'):.2f} %", "<= 2 %")
for v in ("1.3", "1.2"):
    c = lambda s: series("cg" + v, s).get("1")
    if not c("tw") or not c("twn") or not c("mb") or not cgf:
        continue
    row(f"TLS {v} instructions/connection, GET / (M): tlswatchd / --no-record / baseline / floor",
        " / ".join(f"{x / 1e6:.2f}" for x in (c("tw"), c("twn"), c("mb"), cgf)))
    row(f"TLS {v} recording + the page's recent attempts, instructions, GET /: (tlswatchd - --no-record) / tlswatchd",
        f"{100 * (c('tw') - c('twn')) / c('tw'):.2f} %")
    row(f"TLS {v} tlswatchd / crypto floor with X25519 (instructions)" + (" (TLS 1.2 uses P-256)" if v == "1.2" else ""),
        f"{c('tw') / cgf:.2f}", "<= 1.15")
    row(f"TLS {v} tlswatchd / baseline (instructions)", f"{c('tw') / c('mb'):.3f}")
if series("scaling", "t1_hs"):
    sc = lambda s: series("scaling", s)
    row("tlswatchd --no-record hs/s, 2 threads / 1 thread (loadgen --lite)", fmt(ratio(sc("t2_hs"), sc("t1_hs"))), ">= 1.8")
    row("  the same per server CPU second (scaling efficiency)",
        fmt(ratio(ratio(sc("t2_hs"), sc("t1_hs")), ratio(sc("t2_cores"), sc("t1_cores")))))
    if sc("floor2_us"):
        machine = {r: 2 * sc("floor1_us")[r] / v for r, v in sc("floor2_us").items() if r in sc("floor1_us") and v}
        row("  the machine: crypto floors/s, two at once / one alone", fmt(machine))
        row("  tlswatchd's 2 / 1 threads relative to the machine's", fmt(ratio(ratio(sc("t2_hs"), sc("t1_hs")), machine)))
    row("  server cores used, 1 thread / 2 threads", fmt(sc("t1_cores")) + " / " + fmt(sc("t2_cores")))
    row("  CPU ms/hs, 1 thread / 2 threads", fmt(sc("t1_cpu"), 3) + " / " + fmt(sc("t2_cpu"), 3))
    # The load generator runs on the same two CPUs: at the server's one-thread CPU per handshake and the
    # client's own, two CPUs cannot make more than 2 / (server + client) handshakes per ms.
    bound = {r: 2000 / (sc("t1_cpu")[r] + sc("t2_client_cpu")[r]) / v for r, v in sc("t1_hs").items()
             if r in sc("t1_cpu") and r in sc("t2_client_cpu") and v}
    row("  the most two CPUs allow with the load generator on them: 2 / (server + client CPU/hs) / 1-thread hs/s", fmt(bound))
    row("  client CPU ms/hs (loadgen --lite, 2 threads)", fmt(sc("t2_client_cpu"), 3))
    row("Mbed TLS baseline hs/s, 2 threads / 1 thread", fmt(ratio(sc("b2_hs"), sc("b1_hs"))))
    row("  server cores used, 1 thread / 2 threads", fmt(sc("b1_cores")) + " / " + fmt(sc("b2_cores")))
if series("latency", "one_p50"):
    la = lambda s: series("latency", s)
    row("latency, one client: handshake p50 / p99; whole connection with GET / p50 (ms)",
        fmt(la("one_p50")) + " / " + fmt(la("one_p99")) + "; " + fmt(la("one_conn_p50")))
    row("tlswatchd CPU/hs with one client / crypto floor", fmt(ratio(la("one_cpu"), {r: x / 1000 for r, x in la("floor_us").items()})), "<= 1.15")
    sp = lambda s: series("split", s)
    if sp("rec_crypto_us"):
        rest = {r: sp("rec_cpu")[r] - sp("rec_sys")[r] - v / 1000 for r, v in sp("rec_crypto_us").items()
                if r in sp("rec_cpu") and r in sp("rec_sys")}
        row("  split, one --lite client (ms/hs): all / public-key operations inside it / system / the rest",
            " / ".join((fmt(sp("rec_cpu"), 3), fmt({r: v / 1000 for r, v in sp("rec_crypto_us").items()}, 3),
                        fmt(sp("rec_sys"), 3), fmt(rest, 3))))
        row("  public-key operations inside tlswatchd's handshakes / crypto floor", fmt(ratio(sp("rec_crypto_us"), sp("floor_us"))))
        row("  tlswatchd CPU/hs / crypto floor, one --lite client, 1 thread (user+sys / sys ms per hs)",
            fmt(ratio(sp("rec_cpu"), {r: x / 1000 for r, x in sp("floor_us").items()})) +
            f"  ({fmt(sp('rec_cpu'), 3)} / {fmt(sp('rec_sys'), 3)} ms)", "<= 1.15")
    if sp("norec_cpu"):
        row("  recording's share, CPU time, one --lite client: (tlswatchd - --no-record) / tlswatchd (ms/hs)",
            fmt(ratio(sp("rec_cpu"), sp("norec_cpu"), op=lambda x, y: 100 * (x - y) / x), 1) + " %" +
            f"  ({fmt(sp('rec_cpu'), 3)} / {fmt(sp('norec_cpu'), 3)})", "<= 2 %")
        # The crypto timed inside each run measures how fast the CPU ran during that run (the vCPUs' speed
        # drifts here by more than the figure): CPU/hs per crypto time does not depend on it.
        rel = lambda n: ratio(sp(n + "_cpu"), {r: v / 1000 for r, v in sp(n + "_crypto_us").items()})
        row("  the same, each run's CPU/hs divided by its own crypto time (speed drift removed)",
            fmt(ratio(rel("rec"), rel("norec"), op=lambda x, y: 100 * (x - y) / x), 1) + " %", "<= 2 %")
    if sp("tcp_us"):
        row("  TCP floor: the same loopback exchange without TLS, each side working as long, server CPU (ms) / crypto floor",
            fmt({r: v / 1000 for r, v in sp("tcp_us").items()}, 3) + " / " + fmt(ratio(sp("tcp_us"), sp("floor_us")), 3))
    if sp("pin_cpu"):
        fl_ms = {r: x / 1000 for r, x in sp("floor_us").items()}
        row("  the same, server and client on one CPU: CPU/hs / floor (system ms/hs)",
            fmt(ratio(sp("pin_cpu"), fl_ms)) + f"  ({fmt(sp('pin_sys'), 3)})", "<= 1.15")
    if sp("tcp_pin_us"):
        row("  TCP floor on one CPU (ms) / crypto floor",
            fmt({r: v / 1000 for r, v in sp("tcp_pin_us").items()}, 3) + " / " + fmt(ratio(sp("tcp_pin_us"), sp("floor_us")), 3))
    if sp("rec_crypto_us") and sp("tcp_us"):
        low = {r: (v + sp("tcp_us")[r]) / sp("floor_us")[r] for r, v in sp("rec_crypto_us").items() if r in sp("tcp_us") and r in sp("floor_us")}
        row("  lower bound for CPU/hs / floor: (operations inside + TCP floor) / floor", fmt(low))
    # A run's CPU per handshake divided by the public-key time measured inside that same run does not depend
    # on how fast the vCPU ran meanwhile (here it drifts by up to 2x within minutes).
    own = lambda n: ratio(sp(n + "_cpu"), {r: v / 1000 for r, v in sp(n + "_crypto_us").items()})
    if sp("pin_crypto_us"):
        row("  CPU/hs / the public-key time inside it (drift-free): one CPU / two CPUs",
            fmt(own("pin")) + " / " + fmt(own("rec")))
        row("  lower bound for CPU/hs / floor: (CPU/hs / public-key time, one CPU) x (public-key time / floor)",
            fmt([statistics.median(own("pin").values()) * statistics.median(ratio(sp("rec_crypto_us"), sp("floor_us")).values())])
            + " (medians)" if own("pin") and ratio(sp("rec_crypto_us"), sp("floor_us")) else "n/a")
    row("saturation (16 clients, hs/s) / its p99 (ms)", fmt(la("sat_hs"), 0) + " / " + fmt(la("sat_p99")))
    row("half of saturation: hs/s achieved / p50 / p99 (ms)", fmt(la("half_hs"), 0) + " / " + fmt(la("half_p50")) + " / " + fmt(la("half_p99")))
    row("p99 at half saturation / one-client p50", fmt(ratio(la("half_p99"), la("one_p50"))), "<= 3")
if series("hold", "reached"):
    h = lambda s: series("hold", s)
    row(f"held mid-handshake (of {hold}) / set-up time (s)", fmt(h("reached"), 0) + " / " + fmt(h("setup_s"), 1))
    row("tlswatchd RSS per held connection (KiB)", fmt(h("rss_kib_per_conn"), 1), "<= 64")
    row("fresh client p50 while held / unloaded", fmt(ratio(h("loaded_p50"), h("unloaded_p50"))) +
        f"  ({fmt(h('loaded_p50'))} / {fmt(h('unloaded_p50'))} ms)", "<= 3")
    row("fresh client p99 while held / unloaded", fmt(ratio(h("loaded_p99"), h("unloaded_p99"))))
if series("mclose", "cpu_s"):
    m = lambda s: series("mclose", s)
    row(f"mass close of {hold} held handshakes: tlswatchd CPU (s) / until all closed (s)",
        fmt(m("cpu_s"), 3) + " / " + fmt(m("close_wall_s"), 2), "< 0.5 s CPU")
    row("fresh client (handshake + GET /) p99 during the mass close / unloaded",
        fmt(ratio(m("during_p99_ms"), m("unloaded_p99_ms"))) +
        f"  ({fmt(m('during_p99_ms'))} / {fmt(m('unloaded_p99_ms'))} ms)", "<= 3")
    row("fresh client p50 during the mass close / unloaded", fmt(ratio(m("during_p50_ms"), m("unloaded_p50_ms"))))
    row("fresh client's longest wait during the mass close (ms)", fmt(m("during_max_ms"), 0))
    row("tlswatchd RSS (MiB) start / peak (partial ClientHellos) / peak (whole ones) / idle after; one trim (ms)",
        " / ".join(fmt(m(k), 0) for k in ("rss_start_mib", "rss_peak_mib", "rss_full_peak_mib", "rss_idle_mib")) +
        "; " + fmt(m("trim_ms"), 1))
for sd in sizes:
    size, days = sd.split(":")
    sec = "report" + sd
    if not series(sec, "json_s"):
        continue
    for c in ("sequences", "summary", "json"):
        row(f"tlsreport {c} on {int(size):.0e} attempts over {days} d: s / peak RSS MiB",
            fmt(series(sec, c + "_s")) + " / " + fmt({r: x / 1024 for r, x in series(sec, c + "_kib").items()}, 1),
            "<= 1 s at 1e6" if size == "1000000" else "")
    row(f"sqlite3 'SELECT * FROM attempts' on {int(size):.0e} over {days} d (s, baseline)", fmt(series(sec, "sqlite3_s")))

w = max(len(r[0]) for r in rows) if rows else 10
print(f"{'figure (median [min-max] over rounds)':<{w}}  {'value':<44} target")
for what, value, target in rows:
    print(f"{what:<{w}}  {value:<44} {target}")
for name, title in (("pc_records", "tlswatchd recorded, page cost (outcomes)"), ("tw_records", "tlswatchd recorded (outcomes)"), ("store", "store (bench-store)"), ("parser", "parser (bench-fingerprint)")):
    p = os.path.join(tmp, name)
    if os.path.exists(p):
        print(f"\n{title}:")
        print(open(p).read().rstrip())
EOF

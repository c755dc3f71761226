/* SPDX-License-Identifier: MIT */
/* Generates journal entries of a fleet of tlswatchd hosts (--journal all) in systemd's Journal Export
 * Format, for the fleet benchmark (bench/fleet-journal.sh turns the stream into journal files with
 * systemd-journal-remote):
 *
 *   gen-journal-export [--hosts N] [--attempts M] [--host I] [--seed S] [--start EPOCH] [--days D]
 *
 * N hosts (default 1) named host0001..; M attempts per host (default 100000, exactly); only host I
 * (1-based) with --host, else every host, one after the other. The attempts are gen-attempts' episodes
 * (gen-episodes.h: retry sequences, the mix of outcomes), each host with its own draw of clients from one
 * address space (a client may visit several hosts), over D days (default 1) from EPOCH (default: D days
 * before now). Each entry holds what tlswatchd sends (journal.c: MESSAGE, MESSAGE_ID, PRIORITY,
 * SYSLOG_IDENTIFIER, every non-NULL TLSWATCH_<COLUMN>, TLSWATCH_ID numbered per host) and what journald
 * adds for a service in the namespace tlswatch (_HOSTNAME, _BOOT_ID, _MACHINE_ID, _PID, _UID, _GID, _COMM,
 * _EXE, _CMDLINE, _SYSTEMD_*, _TRANSPORT, _NAMESPACE), with __REALTIME_TIMESTAMP (when the attempt ended,
 * non-decreasing per host) and __MONOTONIC_TIMESTAMP (since the host's boot). A value that is not
 * printable ASCII goes in the format's binary form (one in twenty TLS 1.1 scanners sends a hostile SNI). */
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <time.h>

#include "attempt.h"
#include "journal.h"

static uint64_t n_rows, target;
static FILE *out;

typedef struct Host {
        unsigned index; /* 1-based */
        char name[32];
        char boot_id[33], machine_id[33], invocation_id[33];
        unsigned pid;
        int64_t boot_us;     /* realtime of the boot */
        int64_t last_rt_us;  /* the previous entry's __REALTIME_TIMESTAMP */
        int64_t next_row_id; /* TLSWATCH_ID, as the host's store numbers its rows */
} Host;

static Host host;

#include "gen-episodes.h"

static bool needs_binary(const char *v, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) v[i] < 0x20 || (unsigned char) v[i] >= 0x7f)
                        return true;
        return false;
}

/* One field: NAME=value, or the binary form: NAME, newline, the size as 64-bit little endian, the bytes,
 * newline. */
static void put_field(const char *name, size_t name_len, const char *v, size_t len) {
        if (!needs_binary(v, len)) {
                fwrite(name, 1, name_len, out);
                fputc('=', out);
                fwrite(v, 1, len, out);
                fputc('\n', out);
                return;
        }
        uint8_t size[8];

        for (unsigned i = 0; i < 8; i++)
                size[i] = (uint8_t) ((uint64_t) len >> (8 * i));
        fwrite(name, 1, name_len, out);
        fputc('\n', out);
        fwrite(size, 1, sizeof size, out);
        fwrite(v, 1, len, out);
        fputc('\n', out);
}

static void put_str(const char *name, const char *v) {
        put_field(name, strlen(name), v, strlen(v));
}

static void put_u64(const char *name, uint64_t v) {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%" PRIu64, v);

        put_field(name, strlen(name), buf, (size_t) n);
}

static void hex_id(char ret[static 33]) {
        for (unsigned i = 0; i < 32; i++)
                ret[i] = "0123456789abcdef"[rnd() & 15];
        ret[32] = 0;
}

static const char hostile_sni[] = "scan\x00\x1b[31m\n\xff\xfe.example";

static CloseKind close_kind_of(const Attempt *a) {
        switch (a->outcome) {
        case OUTCOME_OK: return CLOSE_CLOSE_NOTIFY;
        case OUTCOME_PEER_ALERT: return CLOSE_ALERT;
        case OUTCOME_NO_DATA: return CLOSE_FIN;
        default: return CLOSE_SERVER;
        }
}

/* The entry of one row, as journald would export it. */
static int insert(const Row *r) {
        JournalFields f = {};
        Attempt a;
        int64_t rt;

        if (n_rows >= target)
                return -ECANCELED;
        gen_row_to_attempt(r, &a);
        a.id = host.next_row_id++;
        a.closed_us = a.ended_us + (a.outcome == OUTCOME_OK ? 20000 : 0) + 1;
        a.close_kind = close_kind_of(&a);
        if (a.outcome == OUTCOME_TLS_ERROR) /* the version mismatch gen-episodes.h means */
                a.offered_versions = (char *) "TLSv1.1,TLSv1.0";
        if (a.outcome == OUTCOME_TLS_ERROR && rnd_below(20) == 0)
                a.sni = (RawString){.data = (char *) hostile_sni, .len = sizeof hostile_sni - 1};
        if (journal_fields_build(&a, &f) < 0)
                return -ENOMEM;

        /* journald stamps an entry when it arrives: a little after the attempt was recorded */
        rt = a.ended_us + 50 + (int64_t) rnd_below(400);
        if (rt <= host.last_rt_us)
                rt = host.last_rt_us + 1;
        host.last_rt_us = rt;
        put_u64("__REALTIME_TIMESTAMP", (uint64_t) rt);
        put_u64("__MONOTONIC_TIMESTAMP", (uint64_t) (rt - host.boot_us));
        put_str("_BOOT_ID", host.boot_id);
        for (size_t i = 0; i < f.n; i++) {
                const char *p = f.iov[i].iov_base, *eq = memchr(p, '=', f.iov[i].iov_len);

                put_field(p, (size_t) (eq - p), eq + 1, f.iov[i].iov_len - (size_t) (eq - p) - 1);
        }
        put_str("_TRANSPORT", "journal");
        put_u64("_PID", host.pid);
        put_u64("_UID", 61873);
        put_u64("_GID", 61873);
        put_str("_COMM", "tlsw-journal");
        put_str("_EXE", "/usr/sbin/tlswatchd");
        put_str("_CMDLINE", "/usr/sbin/tlswatchd --journal all");
        put_str("_CAP_EFFECTIVE", "0");
        put_str("_SYSTEMD_CGROUP", "/system.slice/tlswatchd.service");
        put_str("_SYSTEMD_UNIT", "tlswatchd.service");
        put_str("_SYSTEMD_SLICE", "system.slice");
        put_str("_SYSTEMD_INVOCATION_ID", host.invocation_id);
        put_str("_MACHINE_ID", host.machine_id);
        put_str("_HOSTNAME", host.name);
        put_str("_NAMESPACE", "tlswatch");
        fputc('\n', out);
        journal_fields_done(&f);
        n_rows++;
        return 0;
}

static int host_run(unsigned index, uint64_t seed, int64_t start_us, double days) {
        int64_t step = (int64_t) (86400 * USEC_PER_SEC * days * 1.9 / (double) target);

        step = MIN(step, (int64_t) (UINT_MAX / 2)); /* rnd_below() takes an unsigned */

        rng_state = 88172645463325252ULL ^ ((seed * 1000003 + index) * 0x9e3779b97f4a7c15ULL);
        for (unsigned i = 0; i < 16; i++)
                (void) rnd();
        host = (Host){.index = index, .next_row_id = 1};
        (void) snprintf(host.name, sizeof host.name, "host%04u", index);
        hex_id(host.boot_id);
        hex_id(host.machine_id);
        hex_id(host.invocation_id);
        host.pid = 300 + rnd_below(30000);
        host.boot_us = start_us - (int64_t) rnd_below(86400) * USEC_PER_SEC;
        n_rows = 0;
        for (int64_t t = start_us + (int64_t) rnd_below((unsigned) step + 1); n_rows < target;
             t += 1 + (int64_t) rnd_below((unsigned) (2 * step))) {
                int r = episode(t);

                if (n_rows >= target) /* insert() refused the rest of the last episode */
                        break;
                if (r < 0)
                        return r;
        }
        return ferror(out) ? -EIO : 0;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
                return -EINVAL;
        *ret = v;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                {"hosts", required_argument, NULL, 'n'},
                {"attempts", required_argument, NULL, 'm'},
                {"host", required_argument, NULL, 'i'},
                {"seed", required_argument, NULL, 's'},
                {"start", required_argument, NULL, 't'},
                {"days", required_argument, NULL, 'd'},
                {}};
        uint64_t n_hosts = 1, only = 0, seed = 1, start = 0, v;
        double days = 1;
        static char buf[1 << 20];
        int c;

        target = 100000;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                int r = 0;

                switch (c) {
                case 'n': r = parse_u64(optarg, 1, 1000000, &n_hosts); break;
                case 'm': r = parse_u64(optarg, 1, UINT64_C(1) << 40, &target); break;
                case 'i': r = parse_u64(optarg, 1, 1000000, &only); break;
                case 's': r = parse_u64(optarg, 0, UINT64_MAX / 2000006, &seed); break;
                case 't': r = parse_u64(optarg, 1, UINT64_C(1) << 40, &start); break;
                case 'd':
                        if (parse_u64(optarg, 1, 3650, &v) < 0)
                                r = -EINVAL;
                        days = (double) v;
                        break;
                default: r = -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr,
                                "usage: %s [--hosts N] [--attempts M] [--host I] [--seed S] [--start EPOCH] "
                                "[--days D]\n",
                                argv[0]);
                        return EXIT_FAILURE;
                }
        }
        if (optind != argc || only > n_hosts) {
                fprintf(stderr, "%s: unexpected arguments, or --host beyond --hosts\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (start == 0)
                start = (uint64_t) time(NULL) - (uint64_t) (days * 86400);

        out = stdout;
        setvbuf(out, buf, _IOFBF, sizeof buf);
        for (uint64_t i = only ? only : 1; i <= (only ? only : n_hosts); i++)
                if (host_run((unsigned) i, seed, (int64_t) start * USEC_PER_SEC, days) < 0) {
                        fprintf(stderr, "%s: failed to write host %" PRIu64 ": %m\n", argv[0], i);
                        return EXIT_FAILURE;
                }
        if (fflush(out) != 0) {
                fprintf(stderr, "%s: failed to write: %m\n", argv[0]);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

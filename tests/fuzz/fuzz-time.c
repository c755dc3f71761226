/* SPDX-License-Identifier: MIT */
/* libFuzzer target: tlsreport's --since/--until parser (report-time.c), the input as a C string (up to its
 * first NUL, as argv gives it) on an exactly sized copy, at several "now"s in a time zone with summer
 * time. A result is within 1970..9999, the same when parsed twice, left alone on an error; relative forms
 * lie on their side of now and "X ago" is "-X"; a parsed time formatted as tlsreport prints it (local, ms)
 * parses back to the same millisecond (or, in the repeated hour when summer time ends, to the other
 * instant printed alike), and formatted exactly ("@S.ffffff", "YYYY-MM-DD HH:MM:SS.ffffff UTC", "...Z")
 * parses back to the same microsecond. Built with -Dfuzz=true (clang); fuzz-replay.c replays the corpus
 * as an ordinary test. */

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "macro.h"
#include "report-time.h"

#include "fuzz.h"

#define EPOCH_SEC_MAX INT64_C(253402300799) /* 9999-12-31 23:59:59 UTC */
#define US_MAX (EPOCH_SEC_MAX * USEC_PER_SEC + USEC_PER_SEC - 1)
#define UNSET INT64_C(-424242)

static const int64_t nows[] = {
        INT64_C(1795771815500000),   /* 2026-11-27 09:30:15.5 UTC */
        INT64_C(1774747800000000),   /* 2026-03-29 01:30 UTC, the morning summer time starts */
        INT64_C(1792887600000000),   /* 2026-10-25 00:20 UTC, the night it ends */
        0,                           /* the epoch: "today" (local midnight) is before it */
        EPOCH_SEC_MAX *USEC_PER_SEC, /* the last second: "tomorrow" is after it */
};

static int parse(const char *s, int64_t now, int64_t *ret) {
        int64_t t1 = UNSET, t2 = UNSET;
        int r1, r2;

        r1 = report_time_parse(s, now, &t1);
        r2 = report_time_parse(s, now, &t2);
        check(r1 == r2 && t1 == t2);
        check(r1 == 0 || r1 == -EINVAL || r1 == -ERANGE);
        if (r1 < 0)
                check(t1 == UNSET);
        else
                check(t1 >= 0 && t1 <= US_MAX);
        *ret = t1;
        return r1;
}

static void check_round_trips(int64_t t, int64_t now) {
        char f[32], f2[32], exact[64];
        int64_t t2, ms = t - t % USEC_PER_MSEC;
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        int r;

        /* as tlsreport prints it: local time, milliseconds */
        report_time_format(t, f);
        r = parse(f, now, &t2);
        if (strspn(f, "0123456789") > 4)
                check(r == -EINVAL); /* 10000-01-01 local, the last hour of 9999 in UTC: no such form */
        else {
                check(r == 0);
                if (t2 != ms) {
                        /* the hour that comes twice when summer time ends */
                        report_time_format(t2, f2);
                        check(streq(f, f2) &&
                              (t2 - ms == 3600 * USEC_PER_SEC || ms - t2 == 3600 * USEC_PER_SEC));
                }
        }

        /* exact forms */
        (void) snprintf(exact, sizeof exact, "@%" PRId64 ".%06" PRId64, t / USEC_PER_SEC, t % USEC_PER_SEC);
        check(parse(exact, now, &t2) == 0 && t2 == t);
        check(gmtime_r(&sec, &tm));
        for (int z = 0; z < 2; z++) {
                (void) snprintf(
                        exact,
                        sizeof exact,
                        "%04d-%02d-%02d%c%02d:%02d:%02d.%06" PRId64 "%s",
                        tm.tm_year + 1900,
                        tm.tm_mon + 1,
                        tm.tm_mday,
                        z ? 'T' : ' ',
                        tm.tm_hour,
                        tm.tm_min,
                        tm.tm_sec,
                        t % USEC_PER_SEC,
                        z ? "Z" : " UTC");
                check(parse(exact, now, &t2) == 0 && t2 == t);
        }
}

static void check_one(const char *s, size_t len, int64_t now) {
        int64_t t, t2;
        int r;

        r = parse(s, now, &t);
        if (streq(s, "now"))
                check(r == 0 && t == now);
        if (r < 0)
                return;
        if (s[0] == '-')
                check(t <= now);
        else if (s[0] == '+')
                check(t >= now);
        else if (len > 4 && streq(s + len - 4, " ago") && len - 4 < 64) {
                /* "X ago" is "-X" */
                char *minus = malloc(len - 2);

                if (!minus)
                        abort();
                minus[0] = '-';
                memcpy(minus + 1, s, len - 4);
                minus[len - 3] = '\0';
                check(parse(minus, now, &t2) == 0 && t2 == t);
                check(t <= now);
                free(minus);
        }
        check_round_trips(t, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool initialized = false;
        size_t len = strnlen((const char *) data, size);
        char *s;

        if (!initialized) {
                /* Europe/Berlin's rule, spelled out so that no zone file is needed */
                setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
                tzset();
                initialized = true;
        }
        if (len > 256) /* an option's value: longer ones exercise nothing new */
                return 0;
        s = malloc(len + 1);
        if (!s)
                abort();
        memcpy(s, data, len);
        s[len] = '\0';
        FOREACH_ARRAY(now, nows, ELEMENTSOF(nows))
                check_one(s, len, *now);
        free(s);
        return 0;
}

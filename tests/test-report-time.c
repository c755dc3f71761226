/* SPDX-License-Identifier: MIT */
/* journalctl-style time specifications, in an explicit time zone (Europe/Berlin: UTC+1 in winter, +2 in
 * summer, DST starts 2026-03-29 02:00 local). */
#include <time.h>

#include "macro.h"

#include "report-time.h"
#include "tap.h"

#define S(x) ((int64_t) (x) *1000000)
/* 2026-11-27 10:30:15.5 in Berlin = 09:30:15.5 UTC */
#define NOW (S(1795771815) + 500000)
#define MIDNIGHT S(1795734000) /* 2026-11-27 00:00 Berlin */
#define DAY S(86400)

static void good(const char *s, int64_t now, int64_t want) {
        int64_t got = -1;
        int r = report_time_parse(s, now, &got);

        is_int(r, 0, "\"%s\" parses", s);
        is_int(got, want, "\"%s\" value", s);
}

static void bad(const char *s, int want_error) {
        int64_t got = 12345;

        is_int(report_time_parse(s, NOW, &got), want_error, "\"%s\" is refused", s);
        is_int(got, 12345, "\"%s\" leaves the result alone", s);
}

int main(void) {
        char buf[32];

        setenv("TZ", "Europe/Berlin", 1);
        tzset();

        good("now", NOW, NOW);
        good("today", NOW, MIDNIGHT);
        good("yesterday", NOW, MIDNIGHT - DAY);
        good("tomorrow", NOW, MIDNIGHT + DAY);
        good("today", MIDNIGHT, MIDNIGHT); /* boundary: exactly midnight is that day */
        good("today", MIDNIGHT - 1, MIDNIGHT - DAY);

        good("-1h", NOW, NOW - S(3600));
        good("-30min", NOW, NOW - S(1800));
        good("-30m", NOW, NOW - S(1800));
        good("-2d", NOW, NOW - 2 * DAY);
        good("+1w", NOW, NOW + 7 * DAY);
        good("-90s", NOW, NOW - S(90));
        good("-90sec", NOW, NOW - S(90));
        good("-500ms", NOW, NOW - 500000);
        good("-7us", NOW, NOW - 7);
        good("-1h30min", NOW, NOW - S(5400));
        good("-1h 30min", NOW, NOW - S(5400));
        good("-2 hours", NOW, NOW - S(7200));
        good("+0s", NOW, NOW);
        good("5min ago", NOW, NOW - S(300));
        good("1 day ago", NOW, NOW - DAY);

        good("2026-11-27", NOW, MIDNIGHT);
        good("2026-11-27 10:00", NOW, S(1795770000));
        good("2026-11-27 10:00:00", NOW, S(1795770000));
        good("2026-11-27T10:00:00", NOW, S(1795770000));
        good("2026-11-27 10:00:00.25", NOW, S(1795770000) + 250000);
        good("2026-11-27 10:00:00.000001", NOW, S(1795770000) + 1);
        good("2026-11-27 09:00:00 UTC", NOW, S(1795770000));
        good("2026-11-27T09:00:00Z", NOW, S(1795770000));
        good("10:00", NOW, S(1795770000));
        good("10:00:00", NOW, S(1795770000));
        good("@1795770000", NOW, S(1795770000));
        good("@1795770000.5", NOW, S(1795770000) + 500000);
        good("@0", NOW, 0);
        good("1970-01-01 01:00:00", NOW, 0); /* the epoch, in Berlin */
        good("2028-02-29", NOW, S(1835391600));
        good("2026-11-27 23:59:59", NOW, MIDNIGHT + DAY - S(1));

        diag("daylight saving time");
        good("2026-03-29", NOW, S(1774738800));          /* midnight still UTC+1 */
        good("2026-03-29 12:00", NOW, S(1774778400));    /* noon is UTC+2 */
        good("today", S(1774778400), S(1774738800));     /* on the DST day: midnight UTC+1 */
        good("tomorrow", S(1774778400), S(1774821600));  /* the next day's midnight is UTC+2: 23 h later */
        good("yesterday", S(1774778400), S(1774652400)); /* 24 h earlier */

        diag("bad input");
        bad("", -EINVAL);
        bad("foo", -EINVAL);
        bad("Today", -EINVAL);
        bad("today ", -EINVAL);
        bad(" now", -EINVAL);
        bad("-", -EINVAL);
        bad("-1", -EINVAL);
        bad("-1x", -EINVAL);
        bad("-1hx", -EINVAL);
        bad("-h", -EINVAL);
        bad("+-1h", -EINVAL);
        bad("-1h30", -EINVAL);
        bad("1h", -EINVAL);
        bad("ago", -EINVAL);
        bad(" ago", -EINVAL);
        bad("@", -EINVAL);
        bad("@abc", -EINVAL);
        bad("@12x", -EINVAL);
        bad("@1.", -EINVAL);
        bad("@-5", -EINVAL);
        bad("@1.1234567", -EINVAL);
        bad("2026-1-27", -EINVAL);
        bad("2026-11-27 10", -EINVAL);
        bad("2026-11-27 10:0", -EINVAL);
        bad("2026-11-27  10:00", -EINVAL);
        bad("2026-11-27 10:00:00.", -EINVAL);
        bad("2026-11-27 10:00:00.1234567", -EINVAL);
        bad("2026-11-27 10:00 CET", -EINVAL);
        bad("2026-02-29", -EINVAL);
        bad("2026-04-31", -EINVAL);
        bad("2026-13-01", -EINVAL);
        bad("2026-00-10", -EINVAL);
        bad("2026-11-00", -EINVAL);
        bad("2026-11-27 24:00", -EINVAL);
        bad("2026-11-27 23:60", -EINVAL);
        bad("2026-11-27 23:59:60", -EINVAL);
        bad("25:00", -EINVAL);
        bad("10000-01-01", -EINVAL);
        bad("1969-12-31", -ERANGE);
        bad("@99999999999999999999", -ERANGE);
        bad("-99999999999999999999w", -ERANGE);
        bad("-999999w", -ERANGE);
        bad("+999999w", -ERANGE);
        ok(report_time_parse(NULL, NOW, &(int64_t){0}) == -EINVAL, "NULL is refused");

        report_time_format(NOW, buf);
        is_str(buf, "2026-11-27 10:30:15.500", "formatted in local time");
        report_time_format(S(1774778400) + 1999, buf);
        is_str(buf, "2026-03-29 12:00:00.001", "summer time, milliseconds truncated");

        /* the minute cache against localtime_r() and strftime() each time: across the switch to summer time,
         * in time order and back and forth, and in a zone whose offset had seconds (Monrovia, -0:44:30 until
         * 1972) */
        static const struct {
                const char *tz;
                int64_t from;
        } zones[] = {
                {"Europe/Berlin", 1774746000 - 3600}, /* 2026-03-29 01:00 UTC */
                {"Africa/Monrovia", 63072000 - 3600}, /* 1972-01-01 */
                {"Asia/Kathmandu", 1774746000},       /* +5:45 */
        };
        unsigned wrong = 0, n = 0;
        FOREACH_ARRAY(z, zones, ELEMENTSOF(zones)) {
                setenv("TZ", z->tz, 1);
                tzset();
                for (int64_t k = 0; k < 3 * 7200; k++, n++) {
                        /* two hours second by second, then back and forth between their ends */
                        int64_t sec = z->from +
                                (k < 7200        ? k
                                         : k % 2 ? 7200 - (k - 7200) / 2
                                                 : (k - 7200) / 2);
                        time_t tt = (time_t) sec;
                        struct tm tm;
                        char want[64];

                        localtime_r(&tt, &tm);
                        strftime(want, sizeof want, "%Y-%m-%d %H:%M:%S.042", &tm);
                        report_time_format(sec * 1000000 + 42999, buf);
                        if (!streq(buf, want) && wrong++ < 3)
                                diag("%s %" PRId64 ": %s, want %s", z->tz, sec, buf, want);
                }
        }
        is_int(wrong, 0, "%u times formatted as localtime_r() and strftime() do", n);
        return tap_done();
}

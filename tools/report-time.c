/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>
#include <time.h>

#include "macro.h"
#include "report-time.h"

#define YEAR_MAX 9999
#define EPOCH_SEC_MAX INT64_C(253402300799) /* 9999-12-31 23:59:59 UTC */

static const struct {
        const char *name;
        int64_t usec;
} time_units[] = {
        {"usec", 1},
        {"us", 1},
        {"msec", USEC_PER_MSEC},
        {"ms", USEC_PER_MSEC},
        {"seconds", USEC_PER_SEC},
        {"second", USEC_PER_SEC},
        {"sec", USEC_PER_SEC},
        {"s", USEC_PER_SEC},
        {"minutes", 60 * USEC_PER_SEC},
        {"minute", 60 * USEC_PER_SEC},
        {"min", 60 * USEC_PER_SEC},
        {"m", 60 * USEC_PER_SEC},
        {"hours", 3600 * USEC_PER_SEC},
        {"hour", 3600 * USEC_PER_SEC},
        {"hr", 3600 * USEC_PER_SEC},
        {"h", 3600 * USEC_PER_SEC},
        {"days", 86400 * USEC_PER_SEC},
        {"day", 86400 * USEC_PER_SEC},
        {"d", 86400 * USEC_PER_SEC},
        {"weeks", 604800 * USEC_PER_SEC},
        {"week", 604800 * USEC_PER_SEC},
        {"w", 604800 * USEC_PER_SEC},
};

/* Reads exactly n digits. */
static int parse_digits(const char **p, unsigned n, int *ret) {
        int v = 0;

        for (unsigned i = 0; i < n; i++) {
                if (!isdigit((unsigned char) (*p)[i]))
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

/* ".ffffff": 1 to 6 digits of a second. */
static int parse_fraction(const char **p, int64_t *ret_us) {
        int64_t us = 0, scale = 100000;
        const char *s = *p;

        *ret_us = 0;
        if (*s != '.')
                return 0;
        s++;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        for (; isdigit((unsigned char) *s); s++) {
                if (scale == 0)
                        return -EINVAL;
                us += (*s - '0') * scale;
                scale /= 10;
        }
        *p = s;
        *ret_us = us;
        return 0;
}

/* A span: one or more "N unit", optionally separated by spaces ("1h 30min", "1h30min"). */
static int parse_span(const char *s, int64_t *ret_us) {
        int64_t total = 0;
        bool any = false;

        for (;;) {
                int64_t n = 0, unit = 0;
                size_t best = 0;

                while (*s == ' ')
                        s++;
                if (*s == '\0')
                        break;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                for (; isdigit((unsigned char) *s); s++) {
                        if (n > (INT64_MAX - 9) / 10)
                                return -ERANGE;
                        n = n * 10 + (*s - '0');
                }
                while (*s == ' ')
                        s++;
                /* the longest unit name that matches and is not followed by a letter */
                FOREACH_ARRAY(u, time_units, ELEMENTSOF(time_units)) {
                        size_t l = strlen(u->name);

                        if (strncmp(s, u->name, l) == 0 && !isalpha((unsigned char) s[l]) && l > best) {
                                best = l;
                                unit = u->usec;
                        }
                }
                if (best == 0)
                        return -EINVAL;
                s += best;
                if (n > INT64_MAX / unit || total > INT64_MAX - n * unit)
                        return -ERANGE;
                total += n * unit;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret_us = total;
        return 0;
}

static int days_in_month(int year, int month) {
        static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

        return month == 2 && leap ? 29 : days[month - 1];
}

/* Local (or UTC) broken-down time to µs. tm_isdst is left to mktime(). */
static int tm_to_us(struct tm *tm, bool utc, int64_t frac_us, int64_t *ret_us) {
        time_t t;

        tm->tm_isdst = -1;
        t = utc ? timegm(tm) : mktime(tm);
        if (t == (time_t) -1 && !(tm->tm_year == 69 && tm->tm_mon == 11 && tm->tm_mday == 31))
                return -ERANGE;
        if (t < 0 || (int64_t) t > EPOCH_SEC_MAX)
                return -ERANGE;
        *ret_us = (int64_t) t * USEC_PER_SEC + frac_us;
        return 0;
}

static int parse_clock(const char **p, struct tm *tm, int64_t *ret_frac) {
        int h, m, sec = 0;

        if (parse_digits(p, 2, &h) < 0 || **p != ':')
                return -EINVAL;
        (*p)++;
        if (parse_digits(p, 2, &m) < 0)
                return -EINVAL;
        *ret_frac = 0;
        if (**p == ':') {
                (*p)++;
                if (parse_digits(p, 2, &sec) < 0 || parse_fraction(p, ret_frac) < 0)
                        return -EINVAL;
        }
        if (h > 23 || m > 59 || sec > 59)
                return -EINVAL;
        tm->tm_hour = h;
        tm->tm_min = m;
        tm->tm_sec = sec;
        return 0;
}

/* " UTC" or "Z" at the end, or nothing. */
static int parse_zone(const char *p, bool *ret_utc) {
        if (*p == '\0')
                *ret_utc = false;
        else if (streq(p, " UTC") || streq(p, "Z"))
                *ret_utc = true;
        else
                return -EINVAL;
        return 0;
}

static int parse_absolute(const char *s, int64_t now_us, int64_t *ret_us) {
        struct tm tm = {};
        int64_t frac = 0;
        const char *p = s;
        bool utc;
        int y, mo, d;

        if (isdigit((unsigned char) s[0]) && isdigit((unsigned char) s[1]) && s[2] == ':') {
                /* HH:MM[:SS]: today */
                time_t now = (time_t) (now_us / USEC_PER_SEC);

                if (parse_clock(&p, &tm, &frac) < 0 || parse_zone(p, &utc) < 0)
                        return -EINVAL;
                struct tm today;
                if (!(utc ? gmtime_r(&now, &today) : localtime_r(&now, &today)))
                        return -ERANGE;
                tm.tm_year = today.tm_year;
                tm.tm_mon = today.tm_mon;
                tm.tm_mday = today.tm_mday;
                return tm_to_us(&tm, utc, frac, ret_us);
        }

        if (parse_digits(&p, 4, &y) < 0 || *p++ != '-' || parse_digits(&p, 2, &mo) < 0 || *p++ != '-' ||
            parse_digits(&p, 2, &d) < 0)
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
                return -EINVAL;
        if (y < 1970 || y > YEAR_MAX)
                return -ERANGE;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        if (*p == ' ' || *p == 'T') {
                if (isdigit((unsigned char) p[1])) {
                        p++;
                        if (parse_clock(&p, &tm, &frac) < 0)
                                return -EINVAL;
                }
        }
        if (parse_zone(p, &utc) < 0)
                return -EINVAL;
        return tm_to_us(&tm, utc, frac, ret_us);
}

static int parse_day(int offset, int64_t now_us, int64_t *ret_us) {
        time_t now = (time_t) (now_us / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&now, &tm))
                return -ERANGE;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += offset;
        return tm_to_us(&tm, false, 0, ret_us);
}

int report_time_parse(const char *s, int64_t now_us, int64_t *ret_us) {
        int64_t span;
        size_t l;
        int r;

        if (!s || !ret_us)
                return -EINVAL;
        if (streq(s, "now")) {
                *ret_us = now_us;
                return 0;
        }
        if (streq(s, "today"))
                return parse_day(0, now_us, ret_us);
        if (streq(s, "yesterday"))
                return parse_day(-1, now_us, ret_us);
        if (streq(s, "tomorrow"))
                return parse_day(1, now_us, ret_us);

        if (s[0] == '@') {
                int64_t sec = 0, frac;
                const char *p = s + 1;

                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                for (; isdigit((unsigned char) *p); p++) {
                        sec = sec * 10 + (*p - '0');
                        if (sec > EPOCH_SEC_MAX)
                                return -ERANGE;
                }
                if (parse_fraction(&p, &frac) < 0 || *p != '\0')
                        return -EINVAL;
                *ret_us = sec * USEC_PER_SEC + frac;
                return 0;
        }

        if (s[0] == '+' || s[0] == '-') {
                r = parse_span(s + 1, &span);
                if (r < 0)
                        return r;
                if (s[0] == '-' ? now_us - span < 0 : span > EPOCH_SEC_MAX * USEC_PER_SEC - now_us)
                        return -ERANGE;
                *ret_us = s[0] == '-' ? now_us - span : now_us + span;
                return 0;
        }

        l = strlen(s);
        if (l > 4 && streq(s + l - 4, " ago")) {
                char buf[64];

                if (l - 4 >= sizeof buf)
                        return -EINVAL;
                memcpy(buf, s, l - 4);
                buf[l - 4] = '\0';
                r = parse_span(buf, &span);
                if (r < 0)
                        return r;
                if (now_us - span < 0)
                        return -ERANGE;
                *ret_us = now_us - span;
                return 0;
        }

        return parse_absolute(s, now_us, ret_us);
}

void report_time_format(int64_t us, char ret[static 32]) {
        /* The last minute formatted: a report prints many lines per minute, and localtime_r() and strftime()
         * were a few percent of a large one (tlsreport is single-threaded). Within one minute of the epoch
         * the local time's seconds are the epoch's when the zone's offset is whole minutes (it changes only
         * at whole minutes then); a zone with seconds in its offset (before 1972) is formatted each time. */
        static time_t last_minute = -1;
        static char last[24]; /* "YYYY-MM-DD HH:MM:" */
        time_t t = (time_t) (us / USEC_PER_SEC);
        unsigned ms = (unsigned) ((us % USEC_PER_SEC) / USEC_PER_MSEC), sec;
        struct tm tm;
        size_t n;

        if (us < 0) {
                (void) snprintf(ret, 32, "@%" PRId64, us);
                return;
        }
        if (t / 60 != last_minute) {
                if (!localtime_r(&t, &tm) || strftime(last, sizeof last, "%Y-%m-%d %H:%M:", &tm) == 0) {
                        last_minute = -1;
                        (void) snprintf(ret, 32, "@%" PRId64, us);
                        return;
                }
                last_minute = tm.tm_gmtoff % 60 == 0 ? t / 60 : -1;
                sec = (unsigned) tm.tm_sec;
        } else
                sec = (unsigned) (t % 60);
        n = strlen(last);
        memcpy(ret, last, n);
        ret[n] = (char) ('0' + sec / 10);
        ret[n + 1] = (char) ('0' + sec % 10);
        ret[n + 2] = '.';
        ret[n + 3] = (char) ('0' + ms / 100);
        ret[n + 4] = (char) ('0' + ms / 10 % 10);
        ret[n + 5] = (char) ('0' + ms % 10);
        ret[n + 6] = '\0';
}

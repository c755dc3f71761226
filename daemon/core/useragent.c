/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "useragent.h"

static bool token_char(char c) {
        return isalnum((unsigned char) c) || c == '.' || c == '_' || c == '-';
}

/* Copies the token chars at p (at most max) into out; returns the count. */
static size_t token_span(const char *p, const char *end, size_t max) {
        size_t n = 0;

        while (p + n < end && n < max && token_char(p[n]))
                n++;
        return n;
}

static const char *find(const char *ua, size_t len, const char *needle) {
        return memmem(ua, len, needle, strlen(needle));
}

void user_agent_summary(const char *ua, size_t len, char ret[static USER_AGENT_SUMMARY_MAX]) {
        static const struct {
                const char *token, *name;
        } browsers[] = {
                /* order matters: Edge and Opera also say Chrome, Chrome also says Safari */
                {"Edg/", "Edge"},
                {"OPR/", "Opera"},
                {"SamsungBrowser/", "SamsungBrowser"},
                {"Firefox/", "Firefox"},
                {"Chromium/", "Chromium"},
                {"Chrome/", "Chrome"},
                {"CriOS/", "Chrome"},
                {"FxiOS/", "Firefox"},
        };
        static const struct {
                const char *token, *name;
        } systems[] = {
                {"Android", "Android"},
                {"iPhone", "iOS"},
                {"iPad", "iOS"},
                {"CrOS", "ChromeOS"},
                {"Windows", "Windows"},
                {"Mac OS X", "macOS"},
                {"Linux", "Linux"},
        };
        const char *end = ua + len, *os = NULL, *p;
        size_t n;

        ret[0] = '\0';
        if (!ua || len == 0)
                return;
        FOREACH_ARRAY(s, systems, ELEMENTSOF(systems))
                if (find(ua, len, s->token)) {
                        os = s->name;
                        break;
                }
        FOREACH_ARRAY(b, browsers, ELEMENTSOF(browsers)) {
                p = find(ua, len, b->token);
                if (!p)
                        continue;
                p += strlen(b->token);
                n = 0;
                while (p + n < end && n < 6 && isdigit((unsigned char) p[n]))
                        n++;
                (void) snprintf(
                        ret,
                        USER_AGENT_SUMMARY_MAX,
                        "%s/%.*s%s%s%s",
                        b->name,
                        (int) n,
                        p,
                        os ? " (" : "",
                        strempty(os),
                        os ? ")" : "");
                return;
        }
        if (find(ua, len, "Safari/") && (p = find(ua, len, "Version/"))) {
                p += strlen("Version/");
                n = 0;
                while (p + n < end && n < 6 && isdigit((unsigned char) p[n]))
                        n++;
                (void) snprintf(
                        ret,
                        USER_AGENT_SUMMARY_MAX,
                        "Safari/%.*s%s%s%s",
                        (int) n,
                        p,
                        os ? " (" : "",
                        strempty(os),
                        os ? ")" : "");
                return;
        }
        /* anything else: its first product token, e.g. "curl/7.88.1" */
        n = token_span(ua, end, 24);
        if (n == 0) {
                (void) snprintf(ret, USER_AGENT_SUMMARY_MAX, "?");
                return;
        }
        p = ua + n;
        if (p < end && *p == '/') {
                size_t v = token_span(p + 1, end, 16);

                (void) snprintf(ret, USER_AGENT_SUMMARY_MAX, "%.*s/%.*s", (int) n, ua, (int) v, p + 1);
        } else
                (void) snprintf(ret, USER_AGENT_SUMMARY_MAX, "%.*s", (int) n, ua);
}

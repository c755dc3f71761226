/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"

static const char *program = "tlswatch";
static atomic_int max_level = LOG_INFO;
static _Atomic LogTarget target = LOG_TARGET_AUTO;
static atomic_int use_journal = -1; /* resolved lazily from JOURNAL_STREAM, by whichever thread logs first */

void log_setup(const char *program_name) {
        const char *e;

        if (program_name)
                program = program_name;
        e = getenv("TLSWATCH_LOG_LEVEL");
        if (e && log_level_from_string(e) >= 0)
                max_level = log_level_from_string(e);
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_target(LogTarget t) {
        target = t;
        use_journal = -1;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

LogTarget log_target_from_string(const char *s) {
        if (streq_ptr(s, "auto"))
                return LOG_TARGET_AUTO;
        if (streq_ptr(s, "console"))
                return LOG_TARGET_CONSOLE;
        if (streq_ptr(s, "journal"))
                return LOG_TARGET_JOURNAL;
        return _LOG_TARGET_INVALID;
}

/* systemd sets JOURNAL_STREAM=dev:inode when stderr is connected to the journal. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static bool log_to_journal(void) {
        int j = atomic_load(&use_journal);

        if (j < 0) { /* two threads may both resolve it: they find the same answer */
                LogTarget t = atomic_load(&target);

                j = t == LOG_TARGET_JOURNAL || (t == LOG_TARGET_AUTO && stderr_is_journal());
                atomic_store(&use_journal, j);
        }
        return j;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error < 0)
                error = -error;
        errno = error; /* so that %m names this error */
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (log_to_journal()) {
                char code_file[256], code_line[32];

                (void) snprintf(code_file, sizeof code_file, "CODE_FILE=%s", strempty(file));
                (void) snprintf(code_line, sizeof code_line, "CODE_LINE=%d", line);
                if (sd_journal_send_with_location(
                            code_file,
                            code_line,
                            strempty(func),
                            "MESSAGE=%s",
                            buf,
                            "PRIORITY=%i",
                            level,
                            "SYSLOG_IDENTIFIER=%s",
                            program,
                            error > 0 ? "ERRNO=%i" : NULL,
                            error,
                            NULL) >= 0)
                        goto done;
        }
        (void) fprintf(stderr, "%s: %s\n", program, buf);
done:
        errno = saved;
        return -error;
}

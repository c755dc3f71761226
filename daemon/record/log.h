/* SPDX-License-Identifier: MIT */
#pragma once

/* One logging family for the whole project. Under systemd (JOURNAL_STREAM matches stderr, or
 * log_set_target(LOG_TARGET_JOURNAL)) messages go to journald with PRIORITY, CODE_FILE/CODE_LINE/CODE_FUNC;
 * otherwise to stderr, prefixed with the program name. The level comes from --log-level or
 * TLSWATCH_LOG_LEVEL. Library modules log at debug level only. Any thread may log: the settings are
 * atomic. */

#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_CONSOLE,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

void log_setup(const char *program_name);
void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_target(LogTarget target);
int log_level_from_string(const char *s);
LogTarget log_target_from_string(const char *s);

/* Logs and returns -abs(error); with error == 0 it returns 0. %m is the strerror of error. */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                   \
        ({                                                                                  \
                int _l_ = (level), _e_ = (error);                                           \
                (log_get_max_level() >= _l_)                                                \
                        ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__) \
                        : -abs(_e_);                                                        \
        })

#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)

/* For out-of-memory: the one message we use everywhere. */
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

/* SPDX-License-Identifier: MIT */
#pragma once

/* Who a client says it is: the short summary of a User-Agent that tlsreport's labels and the daemon's page
 * both use, so that they name a client alike. */

#include <stddef.h>

#define USER_AGENT_SUMMARY_MAX 48

/* A short, ASCII-only summary of a User-Agent: "Chrome/156 (Linux)", "Firefox/153 (Windows)",
 * "curl/7.88.1". Never longer than USER_AGENT_SUMMARY_MAX - 1; bytes it does not understand are dropped. */
void user_agent_summary(const char *ua, size_t len, char ret[static USER_AGENT_SUMMARY_MAX]);

/* SPDX-License-Identifier: MIT */
#include "report-output.h"

static const char *const output_mode_table[_OUTPUT_MAX] = {
        [OUTPUT_TABLE] = "table",
        [OUTPUT_JSON] = "json",
        [OUTPUT_JSON_PRETTY] = "json-pretty",
        [OUTPUT_CSV] = "csv",
        [OUTPUT_HTML] = "html",
};

const char *output_mode_to_string(OutputMode m) {
        return m >= 0 && m < _OUTPUT_MAX ? output_mode_table[m] : NULL;
}

OutputMode output_mode_from_string(const char *s) {
        for (int i = 0; s && i < _OUTPUT_MAX; i++)
                if (streq(s, output_mode_table[i]))
                        return (OutputMode) i;
        return _OUTPUT_INVALID;
}

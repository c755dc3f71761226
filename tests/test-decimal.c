/* SPDX-License-Identifier: MIT */
/* The integer formatter against printf, at the edges and across the range. */
#include <inttypes.h>

#include "decimal.h"
#include "macro.h"
#include "tap.h"

static bool same_as_printf(int64_t v) {
        char got[DECIMAL_MAX], put[DECIMAL_MAX + 1], want[32], *mem = NULL;
        size_t n = decimal_from_int64(v, got), mem_len = 0;
        char *end = decimal_put_int64(put, v);
        FILE *f = open_memstream(&mem, &mem_len);
        bool good;

        (void) snprintf(want, sizeof want, "%" PRId64, v);
        if (!f)
                return false;
        decimal_fput(f, v);
        fclose(f);
        *end = '\0';
        good = n == strlen(want) && streq(got, want) && mem && streq(mem, want) && streq(put, want);
        free(mem);
        if (!good)
                diag("%s: got %s and %s", want, got, strna(mem));
        return good;
}

int main(void) {
        static const int64_t edges[] = {
                0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1, 1795771815000000};
        char buf[DECIMAL_MAX];
        unsigned bad = 0;
        uint64_t x = 88172645463325252u;

        FOREACH_ARRAY(e, edges, ELEMENTSOF(edges))
                ok(same_as_printf(*e), "%" PRId64, *e);
        for (int i = 0; i < 100000; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bad += !same_as_printf((int64_t) (x >> (i % 64)));
        }
        is_int(bad, 0, "100000 values of every magnitude as printf writes them");
        is_int(decimal_from_uint64(UINT64_MAX, buf), 20, "UINT64_MAX: 20 digits");
        is_str(buf, "18446744073709551615", "UINT64_MAX");
        is_int(decimal_from_uint64(0, buf), 1, "0: one digit");
        is_str(buf, "0", "0");
        *decimal_put_uint64(buf, UINT64_MAX) = '\0';
        is_str(buf, "18446744073709551615", "UINT64_MAX at p");
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/* Replays fuzzer inputs without libFuzzer: each argument is a file or a directory of files. TAP output. */

#include <dirent.h>
#include <sys/stat.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_files, n_failed;

static void replay_file(const char *path) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;

        f = fopen(path, "re");
        if (!f) {
                printf("not ok %u - %s: %m\n", ++n_files, path);
                n_failed++;
                return;
        }
        for (;;) {
                if (len == cap) {
                        uint8_t *p = realloc(buf, (cap = cap ? 2 * cap : 4096));
                        if (!p)
                                abort();
                        buf = p;
                }
                n = fread(buf + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        LLVMFuzzerTestOneInput(buf, len);
        printf("ok %u - %s (%zu bytes)\n", ++n_files, path, len);
}

int main(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *d;

                if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        replay_file(argv[i]);
                        continue;
                }
                d = opendir(argv[i]);
                if (!d) {
                        printf("not ok %u - %s: %m\n", ++n_files, argv[i]);
                        n_failed++;
                        continue;
                }
                for (struct dirent *de; (de = readdir(d));) {
                        char path[4096];

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        replay_file(path);
                }
                closedir(d);
        }
        if (n_files == 0) {
                printf("not ok 1 - no inputs\n");
                n_files = n_failed = 1;
        }
        printf("1..%u\n", n_files);
        return n_failed > 0;
}

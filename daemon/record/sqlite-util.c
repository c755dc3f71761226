/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "sqlite-util.h"

int sqlite_to_errno(sqlite3 *db, int rc) {
        int sys = db ? sqlite3_system_errno(db) : 0;

        if (rc == SQLITE_IOERR_NOMEM)
                return -ENOMEM;
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE: return 0;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_FULL: return -ENOSPC;
        case SQLITE_READONLY: return -EROFS;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_PERM:
        case SQLITE_AUTH: return -EPERM;
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN: return sys > 0 ? -sys : -EIO;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return -EBADMSG;
        case SQLITE_TOOBIG: return -E2BIG;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE: return -EINVAL;
        case SQLITE_INTERRUPT:
        case SQLITE_ABORT: return -ECANCELED;
        default: return -EIO;
        }
}

const char *sqlite_message(sqlite3 *db, int rc) {
        return db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

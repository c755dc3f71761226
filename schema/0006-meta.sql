-- tlswatch schema, migration 6: facts about the database itself, one row per key.

-- 'host': the host name of the machine whose tlswatchd writes the database (gethostname(), as journald's
-- _HOSTNAME field has it), written each time the daemon opens it, so that tlsreport can tell the
-- attempts of several servers' databases apart and name the server in every key.
CREATE TABLE meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT
) STRICT;

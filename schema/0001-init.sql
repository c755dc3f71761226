-- tlswatch schema, migration 1: the attempts table.
-- One row per accepted TCP connection. Times are microseconds since the Unix epoch (UTC).
-- Column names are a contract (../DESIGN.md): add columns in later migrations, never rename.
CREATE TABLE attempts (
        id               INTEGER PRIMARY KEY,
        started_us       INTEGER NOT NULL,
        ended_us         INTEGER NOT NULL,
        peer_addr        TEXT NOT NULL,
        peer_port        INTEGER NOT NULL,
        local_addr       TEXT NOT NULL,
        local_port       INTEGER NOT NULL,
        -- The closed sets are spelled as OR chains, not IN lists: SQLite evaluates a CHECK's IN list of
        -- more than two constants through a temporary b-tree built for every row inserted, which cost
        -- about a third of the writer's CPU.
        outcome          TEXT NOT NULL CHECK (outcome = 'ok' OR outcome = 'peer_alert' OR outcome = 'peer_reset' OR
                                              outcome = 'peer_closed' OR outcome = 'no_data' OR
                                              outcome = 'timeout' OR outcome = 'not_tls' OR
                                              outcome = 'tls_error' OR outcome = 'server_error'),
        state_reached    TEXT NOT NULL CHECK (state_reached = 'connected' OR state_reached = 'client_hello' OR
                                              state_reached = 'server_flight' OR
                                              state_reached = 'client_flight' OR state_reached = 'done'),
        alert_received   INTEGER,
        alert_sent       INTEGER,
        tls_error        INTEGER,
        error_text       TEXT,
        offered_versions TEXT,
        version          TEXT,
        cipher           TEXT,
        sni              TEXT,
        alpn_offered     TEXT,
        alpn             TEXT,
        ja3              TEXT,
        ja3_full         TEXT,
        ja4              TEXT,
        ja4_r            TEXT,
        ja4_o            TEXT,
        ja4_ro           TEXT,
        ja4_stable       TEXT,
        hello_retry      INTEGER NOT NULL DEFAULT 0,
        resumed          INTEGER NOT NULL DEFAULT 0,
        bytes_in         INTEGER NOT NULL DEFAULT 0,
        bytes_out        INTEGER NOT NULL DEFAULT 0,
        http_requests    INTEGER NOT NULL DEFAULT 0,
        user_agent       TEXT
) STRICT;

CREATE INDEX attempts_started ON attempts (started_us);
CREATE INDEX attempts_peer_started ON attempts (peer_addr, started_us);

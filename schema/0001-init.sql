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
        outcome          TEXT NOT NULL CHECK (outcome IN ('ok', 'peer_alert', 'peer_reset', 'peer_closed',
                                                          'no_data', 'timeout', 'not_tls', 'tls_error',
                                                          'server_error')),
        state_reached    TEXT NOT NULL CHECK (state_reached IN ('connected', 'client_hello',
                                                                'server_flight', 'client_flight', 'done')),
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

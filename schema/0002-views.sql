-- tlswatch schema, migration 2: names for the numbers, an index for per-fingerprint queries, and views
-- that make `sqlite3 tlswatch.db` pleasant to read. See README.md in this directory.

-- TLS alert descriptions (IANA TLS Alert registry), joined by the views to alert_received/alert_sent.
CREATE TABLE tls_alerts (
        code INTEGER PRIMARY KEY,
        name TEXT NOT NULL
) STRICT;

INSERT INTO tls_alerts (code, name) VALUES
        (0, 'close_notify'),
        (10, 'unexpected_message'),
        (20, 'bad_record_mac'),
        (21, 'decryption_failed'),
        (22, 'record_overflow'),
        (30, 'decompression_failure'),
        (40, 'handshake_failure'),
        (41, 'no_certificate'),
        (42, 'bad_certificate'),
        (43, 'unsupported_certificate'),
        (44, 'certificate_revoked'),
        (45, 'certificate_expired'),
        (46, 'certificate_unknown'),
        (47, 'illegal_parameter'),
        (48, 'unknown_ca'),
        (49, 'access_denied'),
        (50, 'decode_error'),
        (51, 'decrypt_error'),
        (60, 'export_restriction'),
        (70, 'protocol_version'),
        (71, 'insufficient_security'),
        (80, 'internal_error'),
        (86, 'inappropriate_fallback'),
        (90, 'user_canceled'),
        (100, 'no_renegotiation'),
        (109, 'missing_extension'),
        (110, 'unsupported_extension'),
        (111, 'certificate_unobtainable'),
        (112, 'unrecognized_name'),
        (113, 'bad_certificate_status_response'),
        (114, 'bad_certificate_hash_value'),
        (115, 'unknown_psk_identity'),
        (116, 'certificate_required'),
        (120, 'no_application_protocol'),
        (121, 'ech_required');

-- The closed set of attempts.outcome values (schema/README.md, tlswatchd(8)), each with one line of explanation.
CREATE TABLE outcomes (
        name        TEXT PRIMARY KEY,
        description TEXT NOT NULL
) STRICT;

INSERT INTO outcomes (name, description) VALUES
        ('ok', 'handshake completed'),
        ('peer_alert', 'the client sent a fatal alert'),
        ('peer_reset', 'the client reset the TCP connection'),
        ('peer_closed', 'the client closed the connection before the handshake completed'),
        ('no_data', 'the client closed the connection without sending a byte'),
        ('timeout', 'the handshake did not complete in time'),
        ('not_tls', 'the first bytes were not a TLS handshake'),
        ('tls_error', 'we aborted the handshake (see alert_sent)'),
        ('server_error', 'our side failed: limits, memory or shutdown');

-- The closed set of attempts.state_reached values, in handshake order.
CREATE TABLE handshake_states (
        name        TEXT PRIMARY KEY,
        step        INTEGER NOT NULL UNIQUE,
        description TEXT NOT NULL
) STRICT;

INSERT INTO handshake_states (name, step, description) VALUES
        ('connected', 0, 'TCP connection accepted'),
        ('client_hello', 1, 'a complete ClientHello was received'),
        ('server_flight', 2, 'our flight (certificate, or Finished when resuming) was sent'),
        ('client_flight', 3, 'the client answered our flight'),
        ('done', 4, 'handshake complete');

-- tlsreport labels a fingerprint with the User-Agents seen on its successful attempts.
CREATE INDEX attempts_ja4_stable_started ON attempts (ja4_stable, started_us);

-- Client-chosen strings (sni, alpn_offered, alpn, user_agent) are stored raw. The views show them as
-- they are when they are printable ASCII, and otherwise as an SQL blob literal x'...' of their bytes,
-- so that a terminal running sqlite3 never receives a control byte from a client.
CREATE VIEW attempts_local AS
SELECT
        a.id,
        strftime('%Y-%m-%d %H:%M:%f', a.started_us / 1000000.0, 'unixepoch', 'localtime') AS started,
        round((a.ended_us - a.started_us) / 1000.0, 1) AS duration_ms,
        CASE WHEN instr(a.peer_addr, ':') THEN '[' || a.peer_addr || ']' ELSE a.peer_addr END
                || ':' || a.peer_port AS peer,
        a.outcome,
        a.state_reached,
        a.alert_received,
        ar.name AS alert_received_name,
        a.alert_sent,
        sa.name AS alert_sent_name,
        a.tls_error,
        CASE WHEN a.tls_error < 0 THEN printf('-0x%04X', -a.tls_error)
             WHEN a.tls_error >= 0 THEN printf('0x%04X', a.tls_error) END AS tls_error_hex,
        a.error_text,
        a.offered_versions,
        a.version,
        a.cipher,
        CASE WHEN a.sni NOT GLOB '*[^ -~]*' AND length(a.sni) = length(CAST(a.sni AS BLOB)) THEN a.sni
             WHEN a.sni IS NOT NULL THEN 'x''' || hex(a.sni) || '''' END AS sni,
        CASE WHEN a.alpn_offered NOT GLOB '*[^ -~]*' AND length(a.alpn_offered) = length(CAST(a.alpn_offered AS BLOB))
                     THEN a.alpn_offered
             WHEN a.alpn_offered IS NOT NULL THEN 'x''' || hex(a.alpn_offered) || '''' END AS alpn_offered,
        CASE WHEN a.alpn NOT GLOB '*[^ -~]*' AND length(a.alpn) = length(CAST(a.alpn AS BLOB)) THEN a.alpn
             WHEN a.alpn IS NOT NULL THEN 'x''' || hex(a.alpn) || '''' END AS alpn,
        a.ja3,
        a.ja4,
        a.ja4_stable,
        a.hello_retry,
        a.resumed,
        a.bytes_in,
        a.bytes_out,
        a.http_requests,
        CASE WHEN a.user_agent NOT GLOB '*[^ -~]*' AND length(a.user_agent) = length(CAST(a.user_agent AS BLOB))
                     THEN a.user_agent
             WHEN a.user_agent IS NOT NULL THEN 'x''' || hex(a.user_agent) || '''' END AS user_agent,
        a.started_us,
        a.ended_us
FROM attempts AS a
LEFT JOIN tls_alerts AS ar ON ar.code = a.alert_received
LEFT JOIN tls_alerts AS sa ON sa.code = a.alert_sent;

-- Every attempt that did not complete a handshake, with the outcome explained.
CREATE VIEW failures AS
SELECT
        l.id,
        l.started,
        l.peer,
        l.outcome,
        o.description AS outcome_description,
        l.state_reached,
        l.alert_received,
        l.alert_received_name,
        l.alert_sent,
        l.alert_sent_name,
        l.tls_error,
        l.tls_error_hex,
        l.error_text,
        l.offered_versions,
        l.sni,
        l.alpn_offered,
        l.ja4,
        l.started_us
FROM attempts_local AS l
JOIN outcomes AS o ON o.name = l.outcome
WHERE l.outcome <> 'ok';

-- One row per client address: how often it came, how often it failed, first and last seen (local time).
CREATE VIEW clients AS
SELECT
        peer_addr,
        count(*) AS attempts,
        sum(outcome = 'ok') AS ok,
        sum(outcome <> 'ok') AS failures,
        strftime('%Y-%m-%d %H:%M:%S', min(started_us) / 1000000.0, 'unixepoch', 'localtime') AS first_seen,
        strftime('%Y-%m-%d %H:%M:%S', max(started_us) / 1000000.0, 'unixepoch', 'localtime') AS last_seen
FROM attempts
GROUP BY peer_addr;

-- Attempts per local day and outcome.
CREATE VIEW daily_outcomes AS
SELECT
        date(a.started_us / 1000000.0, 'unixepoch', 'localtime') AS day,
        a.outcome,
        count(*) AS attempts,
        o.description
FROM attempts AS a
JOIN outcomes AS o ON o.name = a.outcome
GROUP BY day, a.outcome;

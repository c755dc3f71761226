-- tlswatch schema, migration 7: backend_error in tlsreport's covering index, so that the retry sequences
-- and the summary, which read the index alone, tell a connection whose forwarding failed (the backend
-- down, a request refused) from a clean one. The column is NULL in nearly every row: one byte each.
DROP INDEX attempts_started_grouping;
CREATE INDEX attempts_started_grouping ON attempts (
        started_us, id, peer_addr, sni, ja4_stable, outcome, state_reached, alert_received, alert_sent, resumed,
        tls_error, ended_us, closed_us, close_kind, bytes_in, bytes_out, backend_error);

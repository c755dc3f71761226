-- tlswatch schema, migration 4: how and when each connection ended, and the columns tlsreport's
-- diagnosis reads, in its covering index.

-- When the connection ended (the record is written then); NULL in rows written before this migration.
ALTER TABLE attempts ADD COLUMN closed_us INTEGER;
-- How it ended: the client's close_notify, fin (FIN without close_notify), reset (RST) or alert (a fatal
-- alert), or our side: server (after our answer, our alert or an error of ours), idle_timeout (idle after
-- the handshake), handshake_timeout, shutdown (the daemon stopped). NULL in older rows.
ALTER TABLE attempts ADD COLUMN close_kind TEXT CHECK (close_kind = 'close_notify' OR close_kind = 'fin' OR
                                                       close_kind = 'reset' OR close_kind = 'alert' OR
                                                       close_kind = 'server' OR close_kind = 'idle_timeout' OR
                                                       close_kind = 'handshake_timeout' OR
                                                       close_kind = 'shutdown');

-- The grouping index of 0003, plus what the per-attempt evidence of a diagnosis needs (tlsreport reads
-- a time range from the index alone).
DROP INDEX attempts_started_grouping;
CREATE INDEX attempts_started_grouping ON attempts (
        started_us, id, peer_addr, sni, ja4_stable, outcome, state_reached, alert_received, alert_sent, resumed,
        tls_error, ended_us, closed_us, close_kind, bytes_in, bytes_out);

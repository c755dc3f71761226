-- tlswatch schema, migration 3: indexes that let tlsreport read a time range without reading the table's
-- rows (a row is ~400 bytes; what grouping and the client labels need is a fraction of it).

-- Grouping and statistics (tlsreport sequences, summary, clients): the columns they need, in time order,
-- with id second so that "ORDER BY started_us, id" is the index order and needs no sort.
CREATE INDEX attempts_started_grouping ON attempts (
        started_us, id, peer_addr, sni, ja4_stable, outcome, state_reached, alert_received, alert_sent, resumed);

-- Client labels (the User-Agents of each stable JA4's successful attempts in a time range). Partial: only
-- the successful attempts that carry both values, so it costs one entry per successful HTTP connection.
-- outcome is a column too (always 'ok') because SQLite 3.40 reads the table for a column that only the
-- index's WHERE clause names.
CREATE INDEX attempts_ok_started_labels ON attempts (started_us, ja4_stable, user_agent, outcome)
        WHERE outcome = 'ok' AND ja4_stable IS NOT NULL AND user_agent IS NOT NULL;

-- attempts_started_grouping leads with started_us, so the plain time index of 0001 is redundant; every
-- index costs each insert.
DROP INDEX attempts_started;

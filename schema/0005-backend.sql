-- tlswatch schema, migration 5: the backend's fate of a connection that tlswatchd forwards (--backend).

-- Why the connection could not be forwarded after its handshake ("connect to 127.0.0.1:8080: Connection
-- refused", "... timed out"); NULL when it was forwarded, and without --backend.
ALTER TABLE attempts ADD COLUMN backend_error TEXT;

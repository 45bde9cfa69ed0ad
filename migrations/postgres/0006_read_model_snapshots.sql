-- Read-model snapshots: the projected state of every key and alias as of one event sequence,
-- sealed under the root key by the service. Start-up opens the newest one it can and applies
-- only the events after it. Snapshots are a cache of the event log, not a record: the log stays
-- the truth, and old snapshots are pruned.
CREATE TABLE read_model_snapshots (
    sequence  BIGINT PRIMARY KEY,
    taken_at  TIMESTAMPTZ NOT NULL,
    body      BYTEA NOT NULL
);

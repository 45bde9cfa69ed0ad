-- Trent embedded store (SQLite), schema version 1.
-- Times are RFC 3339 UTC text with microseconds ("2024-01-02T03:04:05.123456Z"): fixed width, so text
-- order is time order. Sequences are assigned by the store (max + 1 inside the write transaction).

CREATE TABLE events (
    sequence    INTEGER PRIMARY KEY,
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    event_type  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    UNIQUE (stream, version)
);

CREATE TABLE audit_records (
    sequence   INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    event_time TEXT NOT NULL,
    record     TEXT NOT NULL,
    -- UNIQUE: two records can never name the same predecessor, so the chain cannot fork.
    prev_hash  TEXT NOT NULL UNIQUE,
    hash       TEXT NOT NULL UNIQUE
);

CREATE INDEX audit_records_event_time ON audit_records (event_time);

-- Sealed key material. Deletable on purpose: deleting a row is crypto-shredding.
CREATE TABLE key_materials (
    key_id     TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (key_id, version)
);

-- Events and audit records are append-only, enforced by the database itself.
-- (SQLite has no TRUNCATE; its DELETE-without-WHERE shortcut is disabled when a DELETE trigger exists.)
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE refused');
END;

CREATE TRIGGER audit_records_refuse_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused');
END;

CREATE TRIGGER audit_records_refuse_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused');
END;

-- Trent shared store (PostgreSQL), schema version 1.
-- Sequences are assigned by the store (max + 1) while it holds a transaction-scoped advisory lock that
-- serializes all writers, so they are gap-free and in commit order; there is deliberately no SERIAL.

CREATE TABLE events (
    sequence    BIGINT      PRIMARY KEY,
    stream      TEXT        NOT NULL,
    version     BIGINT      NOT NULL CHECK (version >= 1),
    event_type  TEXT        NOT NULL,
    payload     JSONB       NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    UNIQUE (stream, version)
);

CREATE TABLE audit_records (
    sequence   BIGINT      PRIMARY KEY,
    event_id   TEXT        NOT NULL UNIQUE,
    event_time TIMESTAMPTZ NOT NULL,
    record     TEXT        NOT NULL,
    -- UNIQUE: two records can never name the same predecessor, so the chain cannot fork.
    prev_hash  TEXT        NOT NULL UNIQUE,
    hash       TEXT        NOT NULL UNIQUE
);

CREATE INDEX audit_records_event_time ON audit_records (event_time);

-- Sealed key material. Deletable on purpose: deleting a row is crypto-shredding.
CREATE TABLE key_materials (
    key_id     TEXT        NOT NULL,
    version    INTEGER     NOT NULL,
    sealed     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, version)
);

-- Events and audit records are append-only, enforced by the database itself. Statement-level
-- triggers refuse the statement whether or not it matches any row.
CREATE FUNCTION trent_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% are append-only: % refused', TG_ARGV[0], TG_OP;
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION trent_refuse_change('events');

CREATE TRIGGER audit_records_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION trent_refuse_change('audit records');

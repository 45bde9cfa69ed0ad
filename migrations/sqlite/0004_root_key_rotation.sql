-- Root key rotation (`trent root-key rotate`): while several root keys are in use, each is kept
-- sealed under each other one, so a process holding any of them can open material sealed under
-- any; retiring a key marks it and destroys every wrap that involves it.
ALTER TABLE root_keys ADD COLUMN retired_at TEXT;

CREATE TABLE root_key_wraps (
    key_id        TEXT NOT NULL,
    wrapped_under TEXT NOT NULL,
    sealed        BLOB NOT NULL,
    PRIMARY KEY (key_id, wrapped_under)
);
